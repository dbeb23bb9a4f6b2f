"""KG-attribute pair sampler (beyond the paper): pairs for items that have no text metadata.

An item's *attributes* are its neighbour entities in the knowledge graph (either edge
direction, itself excluded; an item linked to another item counts that item as an attribute).
For anchor ``a`` and item ``b`` with attribute sets ``A``, ``B``::

    jaccard(a, b) = |A ∩ B| / |A ∪ B|

Positives are the ``n`` items with the largest Jaccard (> 0 only); negatives are ``n`` items drawn
uniformly from those sharing no attribute (Jaccard 0).  Items without attributes get no pairs.
Ties and the negative draw use seeded per-pair random keys.  Work is done in anchor chunks with sparse products.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .select import pair_keys, top_k


def item_attributes(ds) -> sp.csr_matrix:
    """``csr bool[n_items, n_entities]``: entry ``(i, e)`` when item ``i`` and entity ``e`` share
    a KG edge (either direction) and ``e != i``."""
    kg = np.asarray(ds.kg, dtype=np.int64)
    src = np.concatenate([kg[:, 0], kg[:, 2]])
    dst = np.concatenate([kg[:, 2], kg[:, 0]])
    keep = (src < ds.n_items) & (src != dst)
    a = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (src[keep], dst[keep])), shape=(ds.n_items, ds.n_entities))
    a.sum_duplicates()
    a.data[:] = 1.0  # a set, not a multiset: duplicate triples count once
    return a


def kg_chunk_pairs(attrs: sp.csr_matrix, eligible: np.ndarray, anchor_rows: np.ndarray, n: int, entropy: int):
    """Pairs for one chunk of anchors.

    Args:
        attrs: :func:`item_attributes` restricted to the ``eligible`` items (``m`` rows).
        eligible: ``int64[m]`` item index of each row of ``attrs``.
        anchor_rows: ``int64[r]`` rows of ``attrs`` to use as anchors.
        entropy: seed of the tie-break keys (positives) and of the negative draw.

    Returns:
        ``(anchor, other, label, score)`` arrays (item indices, 1/0, Jaccard).
    """
    m = attrs.shape[0]
    deg = np.asarray(attrs.sum(axis=1)).ravel()
    inter = (attrs[anchor_rows] @ attrs.T).toarray()  # [r, m] shared attributes
    union = deg[anchor_rows, None] + deg[None, :] - inter
    jac = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    self_mask = np.zeros_like(jac, dtype=bool)
    self_mask[np.arange(len(anchor_rows)), anchor_rows] = True
    k = min(n, m - 1)
    if k < 1:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty.astype(np.int8), empty.astype(np.float32)
    a_items, b_items = eligible[anchor_rows, None], eligible[None, :]
    pos = top_k(jac, k, pair_keys(a_items, b_items, entropy), exclude=self_mask)
    pos_ok = np.take_along_axis(jac, pos, axis=1) > 0
    zero = (inter == 0) & ~self_mask
    # n uniform draws without replacement among the zero-overlap items = the n smallest keys
    # of an independent key stream.
    neg = top_k(zero.astype(np.float64), k, pair_keys(a_items, b_items, entropy ^ 0x5DEECE66D), exclude=self_mask)
    neg_ok = np.take_along_axis(zero, neg, axis=1)
    anchors = np.repeat(anchor_rows[:, None], k, axis=1)
    a = np.concatenate([anchors[pos_ok], anchors[neg_ok]])
    b = np.concatenate([pos[pos_ok], neg[neg_ok]])
    label = np.concatenate([np.ones(int(pos_ok.sum()), np.int8), np.zeros(int(neg_ok.sum()), np.int8)])
    score = np.concatenate([jac[np.nonzero(pos_ok)[0], pos[pos_ok]], np.zeros(int(neg_ok.sum()))]).astype(np.float32)
    return eligible[a], eligible[b], label, score
