"""Fixed-size ripple sets of RippleNet (Wang et al., CIKM 2018), sampled once per run.

A user's hop-0 ripple set is drawn from the KG triples ``(h, r, t)`` whose head is one of the
user's *training* positives; the hop-``k`` set from the triples whose head is a tail of the
hop-``k−1`` set.  As the reference code (hwwang55/RippleNet ``src/data_loader.py``,
``get_ripple_set``) does, per user and hop:

* the candidates are the out-edges (the KG as given, head -> tail, *not* made undirected) of
  every seed, with multiplicity (a tail drawn twice at the previous hop contributes its edges
  twice; duplicate training positives likewise);
* ``n_memory`` of them are drawn uniformly: without replacement when there are at least
  ``n_memory`` candidates, with replacement otherwise (``np.random.choice(n, n_memory,
  replace=n < n_memory)``);
* a hop with no candidates copies the previous hop's set;
* a user with no hop-0 candidate (no training positive, or none with an out-edge) has no ripple
  set.  The reference drops such users' rows from every split; the KGCN protocol keeps them, so
  here they are marked (``has_set``) and the model gives them an empty memory (see
  :mod:`kgcl_lib.model` ``ripplenet``).

Vectorised: the candidates of all users at one hop are laid out user by user; a draw without
replacement takes the ``n_memory`` smallest of i.i.d. uniform keys in each user's block (a
uniformly random subset in uniformly random order, the distribution of ``np.random.choice``
without replacement), a draw with replacement picks ``floor(u · n_candidates)`` positions.  All
randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import DatasetError


@dataclass(frozen=True, eq=False)
class RippleSets:
    """``heads / relations / tails``: ``int64[n_hop, n_users, n_memory]`` -- the triples of every
    user's ripple set per hop; ``has_set``: ``bool[n_users]`` (``False``: no ripple set, the rows
    of such a user hold zeros and must be masked)."""

    heads: np.ndarray
    relations: np.ndarray
    tails: np.ndarray
    has_set: np.ndarray

    @property
    def n_hop(self) -> int:
        return int(self.heads.shape[0])

    @property
    def n_memory(self) -> int:
        return int(self.heads.shape[2])


def _out_edges(kg: np.ndarray, n_entities: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(edges sorted by head (stable), start[e], degree[e])`` of the directed KG."""
    order = np.argsort(kg[:, 0], kind="stable")
    edges = kg[order]
    degree = np.bincount(edges[:, 0], minlength=n_entities)
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    return edges, start, degree


def _draw(seed_user: np.ndarray, seed_entity: np.ndarray, n_users: int, n_memory: int, edges: np.ndarray,
          start: np.ndarray, degree: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One hop: ``(edge index int64[n_users, n_memory], drawn bool[n_users])`` from the seeds
    ``(seed_user[j], seed_entity[j])`` (seeds sorted by user); rows of users without a candidate
    are 0 and ``drawn`` is False there."""
    counts = degree[seed_entity]  # out-edges per seed
    n_cand = np.bincount(seed_user, weights=counts, minlength=n_users).astype(np.int64)
    total = int(counts.sum())
    # candidate j of the flat layout: edge start[seed] + offset, user by user
    cand_user = np.repeat(seed_user, counts)
    seed_first = np.cumsum(counts) - counts  # flat position of each seed's first candidate
    offset = np.arange(total, dtype=np.int64) - np.repeat(seed_first, counts)
    cand_edge = np.repeat(start[seed_entity], counts) + offset
    user_first = np.concatenate([[0], np.cumsum(n_cand)[:-1]])

    out = np.zeros((n_users, n_memory), dtype=np.int64)
    keys = rng.random(total)  # one key per candidate (draws without replacement)
    u = rng.random((n_users, n_memory))
    small = (n_cand > 0) & (n_cand < n_memory)
    pos = user_first[small, None] + np.floor(u[small] * n_cand[small, None]).astype(np.int64)
    out[small] = cand_edge[pos]
    big = n_cand >= n_memory
    if big.any():
        keep = big[cand_user]
        # sort by (user, key) as one float64 key user + key (key in [0, 1), users < 2^31 are
        # exact): ~10x faster than np.lexsort
        order = np.argsort(cand_user[keep] + keys[keep])
        sorted_edge, sorted_user = cand_edge[keep][order], cand_user[keep][order]
        block_first = np.concatenate([[0], np.cumsum(n_cand[big])[:-1]])
        take = (block_first[:, None] + np.arange(n_memory)[None, :]).reshape(-1)
        out[big] = sorted_edge[take].reshape(-1, n_memory)
        assert (sorted_user[take].reshape(-1, n_memory) == np.flatnonzero(big)[:, None]).all()
    return out, n_cand > 0


def sample_ripple_sets(kg: np.ndarray, n_entities: int, n_users: int, positives: np.ndarray, n_hop: int, n_memory: int,
                       rng: np.random.Generator | int) -> RippleSets:
    """Sample every user's ripple sets (see the module docstring).

    Args:
        kg: ``int64[m, 3]`` ``(head, relation, tail)`` triples (directed, as given).
        n_entities: entity-table size (ids in ``kg`` lie in ``0..n_entities-1``).
        n_users: number of users.
        positives: ``int64[n, 2]`` ``(user, item)`` training positives (item ``i`` is entity ``i``).
        n_hop: number of hops ``H`` (>= 1).
        n_memory: ripple-set size per hop (>= 1).
        rng: a ``numpy.random.Generator`` or an int seed.
    """
    rng = np.random.default_rng(rng)
    kg = np.asarray(kg, dtype=np.int64).reshape(-1, 3)
    positives = np.asarray(positives, dtype=np.int64).reshape(-1, 2)
    if n_hop < 1 or n_memory < 1:
        raise DatasetError(f"ripple sets need n_hop >= 1 and n_memory >= 1, got n_hop={n_hop}, n_memory={n_memory}")
    for name, col, hi in (("kg head", kg[:, 0], n_entities), ("kg tail", kg[:, 2], n_entities),
                          ("positives user", positives[:, 0], n_users), ("positives item", positives[:, 1], n_entities)):
        if len(col) and (col.min() < 0 or col.max() >= hi):
            bad = int(np.flatnonzero((col < 0) | (col >= hi))[0])
            raise DatasetError(f"{name} row {bad}: id {int(col[bad])} outside 0..{hi - 1}")
    edges, start, degree = _out_edges(kg, n_entities)
    order = np.argsort(positives[:, 0], kind="stable")
    seed_user, seed_entity = positives[order, 0], positives[order, 1]
    heads = np.zeros((n_hop, n_users, n_memory), dtype=np.int64)
    rels, tails = np.zeros_like(heads), np.zeros_like(heads)
    has_set = np.zeros(n_users, dtype=bool)
    for hop in range(n_hop):
        idx, drawn = _draw(seed_user, seed_entity, n_users, n_memory, edges, start, degree, rng)
        if hop == 0:
            has_set = drawn
        heads[hop], rels[hop], tails[hop] = edges[idx, 0], edges[idx, 1], edges[idx, 2]
        copy = has_set & ~drawn  # an empty hop copies the previous one (reference)
        if hop > 0 and copy.any():
            heads[hop, copy], rels[hop, copy], tails[hop, copy] = heads[hop - 1, copy], rels[hop - 1, copy], tails[hop - 1, copy]
        heads[hop, ~has_set] = rels[hop, ~has_set] = tails[hop, ~has_set] = 0
        # next seeds: this hop's tails of the users that have a set, user by user
        users = np.flatnonzero(has_set)
        seed_user = np.repeat(users, n_memory)
        seed_entity = tails[hop, users].reshape(-1)
    return RippleSets(heads, rels, tails, has_set)
