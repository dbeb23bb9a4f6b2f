"""Vectorised selection primitives for the pair samplers: exact top-k with seeded tie-breaking,
per-pair random keys, order-independent (fixed-point) dot products, and a memo of cross-encoder
scores keyed by sentence pair."""

from __future__ import annotations

from typing import Callable

import numpy as np


_MASK64 = (1 << 64) - 1


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on ``uint64`` arrays (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def pair_keys(anchor: np.ndarray, other: np.ndarray, entropy: int) -> np.ndarray:
    """Seeded pseudo-random keys in ``[0, 1)`` for item pairs (broadcast shapes).

    The key depends only on ``(entropy, anchor, other)``, so a tie between two items is broken
    the same way whatever the mode (exhaustive, retrieve-then-rerank), the candidate list or the
    chunking — which keeps the modes comparable and resumed runs identical.
    """
    with np.errstate(over="ignore"):
        seed = _mix64(np.uint64(int(entropy) & _MASK64))
        z = _mix64(_mix64(np.asarray(anchor).astype(np.uint64) ^ seed) ^ np.asarray(other).astype(np.uint64))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def top_k(scores: np.ndarray, k: int, keys: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Column indices of the ``k`` largest scores of every row, best first.

    Ties are broken by the smaller ``keys`` value (pass seeded uniform randoms for a random,
    reproducible tie-break), so the result is exactly ``sorted(cols, key=(-score, key))[:k]``
    but costs O(columns) per row (two ``argpartition`` passes) instead of a full sort.

    Args:
        scores: ``float[r, c]``; NaN is not allowed.
        k: how many per row, ``1 <= k <= c`` minus the excluded count of any row.
        keys: ``float[r, c]`` tie-break keys (distinct within a row).
        exclude: optional ``bool[r, c]``; excluded cells are never returned.

    Returns:
        ``int64[r, k]``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    r, c = scores.shape
    if k < 1:
        return np.zeros((r, 0), dtype=np.int64)
    if exclude is not None:
        if k > c - int(exclude.sum(1).max(initial=0)):
            raise ValueError(f"top_k: k={k} exceeds the {c} columns minus excluded ones")
        scores = np.where(exclude, -np.inf, scores)
    elif k > c:
        raise ValueError(f"top_k: k={k} exceeds the {c} columns")
    if k == c:
        return np.lexsort((keys, -scores), axis=1)[:, :k].astype(np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # holds every column strictly above the k-th value
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)  # the k-th largest value
    above = np.take_along_axis(scores, part, axis=1) > kth
    need = k - above.sum(axis=1)  # how many of the columns equal to the k-th value get in (>= 1)
    kmax = int(need.max())
    eq_keys = np.where(scores == kth, keys, np.inf)
    eq = np.argpartition(eq_keys, kmax - 1, axis=1)[:, :kmax] if kmax < c else np.tile(np.arange(c), (r, 1))
    eq = np.take_along_axis(eq, np.argsort(np.take_along_axis(eq_keys, eq, axis=1), axis=1), axis=1)
    eq_ok = np.arange(eq.shape[1])[None, :] < need[:, None]
    cand = np.concatenate([part, eq], axis=1)
    valid = np.concatenate([above, eq_ok], axis=1)
    cs = np.take_along_axis(scores, cand, axis=1)
    ck = np.take_along_axis(keys, cand, axis=1)
    order = np.lexsort((ck, -cs, ~valid), axis=1)[:, :k]
    return np.take_along_axis(cand, order, axis=1).astype(np.int64)


def fixed_point(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """Integer-valued ``float64`` copies of ``vectors`` whose dot products are exact.

    Floating-point dot products depend on the summation order, which BLAS picks by matrix shape
    (a chunk of 7 anchors and one of 256 run different kernels), so two identical sentences could
    score ``1e-7`` apart and a "tie" would be broken by the arithmetic instead of the seeded key.
    Rounding every component to an integer of at most ``2**q`` in magnitude, with ``q`` chosen so
    that ``d * 2**(2q) <= 2**52``, makes every partial sum an exactly representable integer: the
    product ``a @ b.T`` is then exact whatever the kernel, chunking, thread count or FMA use.
    The rounding step is ``max|x| / 2**q`` (``q = 21`` for ``d = 384``, ≈ 5e-7 of the largest
    component), below float32's own resolution for typical embeddings.

    Args:
        vectors: ``float[n, d]``.

    Returns:
        ``(ints float64[n, d], scale)``: ``ints @ ints.T / scale**2`` approximates
        ``vectors @ vectors.T``.
    """
    x = np.asarray(vectors, dtype=np.float64)
    d = max(int(x.shape[-1]), 1)
    q = (52 - int(np.ceil(np.log2(d)))) // 2
    peak = float(np.abs(x).max(initial=0.0))
    scale = (2.0**q) / peak if peak > 0 and np.isfinite(peak) else 1.0
    if not np.isfinite(peak):
        raise ValueError("fixed_point: embeddings contain NaN or infinity")
    return np.rint(x * scale), scale


class PairScoreMemo:
    """Scores of (query sentence, doc sentence) pairs, keyed by sentence codes, so that each
    distinct text pair is sent to the cross-encoder once (the genre template repeats
    sentences a lot).  Keys live in a sorted ``int64`` array (``query * n_sentences + doc``).

    ``limit`` caps the number of remembered pairs (memory: 12 bytes each); past it, only the
    pairs within one call are deduplicated.
    """

    def __init__(self, n_sentences: int, limit: int = 50_000_000):
        self.n = int(n_sentences)
        self.limit = limit
        self.keys = np.zeros(0, dtype=np.int64)
        self.values = np.zeros(0, dtype=np.float32)
        self.scored = 0  # pairs actually sent to the scorer

    def __call__(self, q: np.ndarray, d: np.ndarray, scorer: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """Scores for code arrays ``q``, ``d`` (same shape); ``scorer(uq, ud)`` is called on
        the distinct, not yet known pairs and must return ``float[len(uq)]``."""
        shape = q.shape
        key = q.astype(np.int64).ravel() * self.n + d.astype(np.int64).ravel()
        uniq, inverse = np.unique(key, return_inverse=True)
        pos = np.searchsorted(self.keys, uniq)
        known = (pos < len(self.keys)) & (self.keys[np.minimum(pos, len(self.keys) - 1)] == uniq) if len(self.keys) else np.zeros(len(uniq), bool)
        vals = np.empty(len(uniq), dtype=np.float32)
        vals[known] = self.values[pos[known]]
        new = uniq[~known]
        if len(new):
            vals[~known] = np.asarray(scorer(new // self.n, new % self.n), dtype=np.float32)
            self.scored += len(new)
            if len(self.keys) + len(new) <= self.limit:
                keys = np.concatenate([self.keys, new])
                order = np.argsort(keys, kind="stable")
                self.keys, self.values = keys[order], np.concatenate([self.values, vals[~known]])[order]
        return vals[inverse].reshape(shape)
