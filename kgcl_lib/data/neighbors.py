"""Fixed-size neighbour tables for KGCN's receptive field.

KGCN (Wang et al. 2019) samples, once, K neighbours for every entity of the KG (treated as
undirected) and keeps them fixed for training.  We do the same, vectorised and with an explicit
generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import DatasetError


@dataclass(frozen=True, eq=False)
class NeighborTable:
    """``entities[e, k]`` is the k-th sampled neighbour of entity ``e`` and ``relations[e, k]``
    the relation on that edge; both ``int64[n_entities, K]``.

    Entities with no KG edge (e.g. an item not linked to the KG) get K self-loops on the extra
    relation index ``self_relation == n_relations``: their aggregated neighbourhood is then their
    own embedding, and the model sizes its relation table ``n_relations + 1``.
    """

    entities: np.ndarray
    relations: np.ndarray
    self_relation: int
    isolated: int  # how many entities had no neighbour


def undirected_edges(kg: np.ndarray) -> np.ndarray:
    """``int64[2 * n_triples, 3]`` ``(src, relation, dst)``: each triple in both directions."""
    kg = np.asarray(kg, dtype=np.int64)
    return np.concatenate([kg, kg[:, [2, 1, 0]]], axis=0)


def sample_neighbors(kg: np.ndarray, n_entities: int, n_relations: int, k: int, rng: np.random.Generator | int) -> NeighborTable:
    """Sample ``k`` neighbours per entity from the undirected KG.

    An entity with degree ``d >= k`` gets ``k`` distinct edges drawn uniformly without
    replacement; with ``0 < d < k`` the ``k`` edges are drawn uniformly *with* replacement (as
    KGCN's ``np.random.choice(..., replace=d < k)``); with ``d == 0`` see :class:`NeighborTable`.
    Duplicate triples in the KG count as separate edges.  ``rng`` is a generator or an int seed.
    """
    rng = np.random.default_rng(rng)
    if k < 1:
        raise DatasetError(f"neighbour sample size K must be >= 1, got {k}")
    edges = undirected_edges(kg)
    src = edges[:, 0]
    if len(edges) and (src.min() < 0 or src.max() >= n_entities):
        raise DatasetError(f"KG entity id out of range 0..{n_entities - 1}")
    # Sort edges by (source, random key): the first k of each source's block are a uniform
    # sample without replacement.
    order = np.lexsort((rng.random(len(edges)), src))
    edges = edges[order]
    degree = np.bincount(edges[:, 0], minlength=n_entities)
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])

    # With replacement for everyone first (positions start + floor(u * d)), then overwrite the
    # entities with d >= k by the first k of their shuffled block.
    u = rng.random((n_entities, k))
    pos = start[:, None] + np.floor(u * degree[:, None]).astype(np.int64)
    big = degree >= k
    pos[big] = start[big, None] + np.arange(k)[None, :]

    ent = np.empty((n_entities, k), dtype=np.int64)
    rel = np.empty((n_entities, k), dtype=np.int64)
    has = degree > 0
    ent[has] = edges[pos[has], 2]
    rel[has] = edges[pos[has], 1]
    ent[~has] = np.arange(n_entities)[~has, None]
    rel[~has] = n_relations
    return NeighborTable(entities=ent, relations=rel, self_relation=n_relations, isolated=int((~has).sum()))
