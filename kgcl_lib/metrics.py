"""The paper's evaluation (Section 4.2, Eq. 6-7; Tables 2-4; Figures 1, 5, 6), vectorised.

Everything here takes plain numpy arrays, ``scipy.sparse`` matrices or DataFrames and imports no
torch, so the metrics run in any notebook kernel and are tested against jurity 2.1.0 (the
library the paper used) and against naive per-user loops.

Families
--------
* **CTR** (Table 2): :func:`auc`, :func:`f1` on labelled test rows.
* **Top-K** (Table 3) over the full catalogue, training items masked by
  :func:`topk_from_scores`: :func:`recall_at_k`, :func:`ndcg_at_k`, :func:`ranking_metrics`
  (all K at once), per-user arrays :func:`ranking_per_user` / :func:`ndcg_per_user`.
* **Cold start** (Figures 1, 5): :func:`cold_start_buckets`, :func:`cold_start_ndcg`.
* **Diversity** (Table 4): :func:`inter_list_diversity` (Eq. 6), :func:`intra_list_diversity`
  (Eq. 7), both exact via closed forms.
* **Embedding quality** (Figure 6): :func:`alignment`, :func:`uniformity` (Wang & Isola 2020).
* **Significance** (Table 2 p-values): :func:`ttest_vs_baseline`.

Conventions shared by the ranking metrics
-----------------------------------------
``topk`` is ``int64[n_users, K]``: the recommended item indices of each evaluated user, best
first, distinct within a row.  ``truth`` is a ``scipy.sparse`` matrix ``[n_users, n_items]``
whose stored non-zeros are the users' test positives, row ``u`` aligned with ``topk[u]``
(build it with :func:`truth_matrix`).  Relevance is binary.

* Recall@K = |top-K ∩ P_u| / |P_u| (jurity's definition; the denominator is *all* positives).
* NDCG@K = DCG@K / IDCG with DCG@K = Σ_{r≤K} hit_r / log2(r + 1).  Two IDCG conventions:
  ``"jurity"`` (default, the paper's library): IDCG over **all** |P_u| positives, so a user with
  more than K positives cannot reach 1; ``"standard"``: IDCG over min(K, |P_u|) positives, so a
  perfect ranking scores 1.  Name the convention in every caption (``ndcg_convention`` field).
* Users with no test positive are **skipped** (as jurity does): their per-user values are NaN,
  means are over the remaining users, and the summary dicts report ``n_users`` (evaluated) and
  ``n_skipped``.  If *no* user has a positive, a :class:`MetricsError` is raised.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.stats
from tqdm.auto import tqdm

__all__ = [
    "MetricsError",
    "DEFAULT_KS",
    "NDCG_CONVENTIONS",
    "COLD_START_PERCENTILES",
    "T_TESTS",
    "auc",
    "f1",
    "truth_matrix",
    "topk_from_scores",
    "ranking_per_user",
    "ranking_metrics",
    "recall_at_k",
    "ndcg_at_k",
    "ndcg_per_user",
    "cold_start_buckets",
    "cold_start_ndcg",
    "inter_list_diversity",
    "intra_list_diversity",
    "intra_list_diversity_per_user",
    "alignment",
    "uniformity",
    "ttest_vs_baseline",
]

#: Cut-offs of Table 3.
DEFAULT_KS = (5, 10, 20, 50, 100)
#: IDCG conventions accepted by the NDCG functions (see module docstring).
NDCG_CONVENTIONS = ("jurity", "standard")
#: Figure 5's x-axis: cumulative buckets of the least active test users, in percent.
COLD_START_PERCENTILES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
#: Tests accepted by :func:`ttest_vs_baseline`.
T_TESTS = ("welch", "student", "paired")

# Working-set sizes (elements) of the chunked loops.  Blocks of a few MiB keep the peak memory
# small at MovieLens-20M scale and the per-block temporaries in cache, while each numpy call
# still covers enough elements to amortise its overhead (measured on the 2-core dev machine).
_RANK_CHUNK_ELEMS = 1 << 21  # [users, K] cumsum blocks (float64: 16 MiB)
_HIT_BUFFER_CELLS = 1 << 23  # [users, n_items] scratch bitmap for hit lookup (bool: 8 MiB)
_SCORE_CHUNK_ELEMS = 1 << 22  # [users, n_items] score blocks in topk_from_scores (float64: 32 MiB)
_GRAM_CHUNK_ELEMS = 1 << 20  # [rows, n] Gram blocks in uniformity (float64: 8 MiB)


class MetricsError(ValueError):
    """Unusable metric input; the message names the argument, the offending position and value."""


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def _as_1d(name: str, x, dtype=None) -> np.ndarray:
    arr = np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
    if arr.ndim != 1:
        raise MetricsError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _check_finite(name: str, x: np.ndarray) -> None:
    if x.dtype.kind in "fc" and not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        where = tuple(int(i) for i in bad)
        raise MetricsError(f"{name} must be finite; {name}[{', '.join(map(str, where))}] = {x[where]}")


def _check_binary_labels(labels) -> np.ndarray:
    y = _as_1d("labels", labels)
    if y.dtype.kind == "f":
        _check_finite("labels", y)
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MetricsError(f"labels must be 0/1; labels[{i}] = {y[i]}")
    return y.astype(bool)


def _check_k(k, name: str = "k") -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise MetricsError(f"{name} must be an integer, got {k!r}")
    if k <= 0:
        raise MetricsError(f"{name} must be >= 1, got {k}")
    return int(k)


def _check_topk(topk, n_items: int | None = None, k: int | None = None) -> np.ndarray:
    """Validate ``topk`` (2-D integer, in range, distinct per row) and cut it to ``k`` columns."""
    arr = np.asarray(topk)
    if arr.ndim != 2:
        raise MetricsError(f"topk must be 2-D [n_users, K], got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise MetricsError(f"topk must hold integer item indices, got dtype {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MetricsError(f"topk is empty (shape {arr.shape})")
    if k is not None:
        k = _check_k(k)
        if k > arr.shape[1]:
            raise MetricsError(f"k={k} but topk has only {arr.shape[1]} columns")
        arr = arr[:, :k]
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or (n_items is not None and hi >= n_items):
        bad = np.argwhere((arr < 0) | (arr >= (n_items if n_items is not None else np.inf)))[0]
        raise MetricsError(
            f"topk[{bad[0]}, {bad[1]}] = {arr[bad[0], bad[1]]} is not an item index in [0, {n_items})"
        )
    # A repeated item would count twice in recall and break the binary-vector algebra of
    # the diversity closed forms, so reject it (sorting 138k x 100 rows costs ~0.05-0.1 s).
    if arr.shape[1] > 1:
        # int32 sorts ~2.5x faster than int64 (SIMD sort); item indices fit whenever hi < 2**31
        srt = np.sort(arr.astype(np.int32) if hi < 2**31 else arr, axis=1)
        dup = srt[:, 1:] == srt[:, :-1]
        if dup.any():
            u, j = np.argwhere(dup)[0]
            raise MetricsError(f"topk row {u} repeats item {srt[u, j]}; recommended items must be distinct")
    return arr


def _check_truth(truth, n_users: int) -> sp.csr_matrix:
    """Binary CSR copy of ``truth``, duplicates merged and explicit zeros dropped, so that
    ``diff(indptr)`` counts each user's distinct positives."""
    if not sp.issparse(truth):
        raise MetricsError(
            f"truth must be a scipy.sparse matrix [n_users, n_items] (see truth_matrix), got {type(truth).__name__}"
        )
    t = sp.csr_matrix(truth, copy=True)
    if t.shape[0] != n_users:
        raise MetricsError(f"truth has {t.shape[0]} rows but topk has {n_users} users (rows must align)")
    t.sum_duplicates()  # also sorts the column indices within each row
    t.eliminate_zeros()
    t.data = np.ones_like(t.data, dtype=np.float64)
    return t


def _check_convention(ndcg: str) -> str:
    if ndcg not in NDCG_CONVENTIONS:
        raise MetricsError(f"ndcg convention must be one of {NDCG_CONVENTIONS}, got {ndcg!r}")
    return ndcg


# ---------------------------------------------------------------------------------------------
# CTR (Table 2)
# ---------------------------------------------------------------------------------------------
def auc(labels, scores) -> float:
    """ROC AUC of ``scores`` for binary ``labels`` (Table 2), as the Mann-Whitney U statistic.

    ``AUC = (#{(p, n): s_p > s_n} + ½ #{(p, n): s_p = s_n}) / (P·N)`` over positive/negative
    pairs, which is the trapezoidal ROC area (ties count ½) that sklearn and jurity compute.
    Pair counts are exact integers from sorting (O(n log n)); float32 scores (the model's
    sigmoid output) take a faster single-sort path, see :func:`_auc_u_float32`.

    Args:
        labels: ``{0,1}[n]`` (bool or numbers).
        scores: ``float[n]``, any real scale (probabilities, logits): AUC depends on order
            only.  Unlike jurity's ``AUC`` no [0, 1] check is made.
    Returns:
        AUC in [0, 1].
    Raises:
        MetricsError: mismatched lengths, non-binary labels, NaN/inf scores, or only one class.
    """
    y = _check_binary_labels(labels)
    s = _as_1d("scores", scores)
    if s.dtype.kind != "f":
        s = s.astype(np.float64)
    if len(y) != len(s):
        raise MetricsError(f"labels and scores differ in length: {len(y)} vs {len(s)}")
    _check_finite("scores", s)
    n_pos = int(np.count_nonzero(y))
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise MetricsError(f"AUC needs both classes; got {n_pos} positives and {n_neg} negatives")
    if s.dtype.itemsize <= 4:
        u2 = _auc_u_float32(y, s.astype(np.float32, copy=False), n_pos)
    else:
        u2 = _auc_u_sorted_search(y, s)
    return float(u2 / 2.0 / (n_pos * n_neg))


def _auc_u_sorted_search(y: np.ndarray, s: np.ndarray) -> int:
    """``2·U`` (an exact integer) by a ``searchsorted`` of the sorted positives into the
    sorted negatives; any float dtype."""
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    below = np.searchsorted(neg, pos, side="left")  # negatives strictly below each positive
    # Ties: only positives whose value occurs among the negatives need the right-side search
    # (continuous scores have few, which saves a second full search).
    tied = below < len(neg)
    tied[tied] = neg[below[tied]] == pos[tied]
    n_ties = 0
    if tied.any():
        n_ties = int((np.searchsorted(neg, pos[tied], side="right") - below[tied]).sum())
    return 2 * int(below.sum()) + n_ties


def _auc_u_float32(y: np.ndarray, s: np.ndarray, n_pos: int) -> int:
    """``2·U`` for float32 scores with one sort of 64-bit keys ``(order-preserving score bits,
    label)``: on equal scores negatives sort first, so the positive at sorted position ``i``
    has ``i - (#positives before it)`` negatives ``<=`` it.  Ties are then counted only over
    the runs of equal scores.  ~2x faster than the search path (no boolean splits, no search).
    """
    b = (s + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into +0.0 (they compare equal)
    # IEEE order as unsigned order: flip all bits of negatives, only the sign bit of the rest
    key = (b ^ ((b >> 31) | np.int32(-(2**31)))).view(np.uint32).astype(np.uint64)
    key <<= np.uint64(1)
    key |= y.astype(np.uint64)
    key.sort()
    lab = (key & np.uint64(1)).astype(bool)
    le = int(np.flatnonzero(lab).sum()) - n_pos * (n_pos - 1) // 2  # Σ_pos #neg <= s_pos
    key >>= np.uint64(1)
    same = key[1:] == key[:-1]
    n_ties = 0
    if same.any():
        at = np.flatnonzero(same)
        in_run = np.zeros(len(key), dtype=bool)
        in_run[at] = True
        in_run[at + 1] = True
        k, lab_r = key[in_run], lab[in_run]
        starts = np.flatnonzero(np.concatenate([[True], k[1:] != k[:-1]]))
        run_pos = np.add.reduceat(lab_r, starts, dtype=np.int64)
        run_len = np.diff(np.append(starts, len(k)))
        n_ties = int(np.dot(run_pos, run_len - run_pos))
    return 2 * le - n_ties


def f1(labels, scores, threshold: float = 0.5) -> float:
    """F1 of the positive class after thresholding: ``pred = scores >= threshold`` (Table 2).

    ``scores`` are probabilities (the KGCN sigmoid output) for the default ``threshold=0.5``;
    pass logits with ``threshold=0``.  ``>=`` follows the KGCN reference code.

    Returns:
        ``2·TP / (2·TP + FP + FN)``.
    Raises:
        MetricsError: mismatched lengths, non-binary labels, NaN scores, or no positive label
        (F1 of the positive class is undefined then; sklearn would silently return 0).
    """
    y = _check_binary_labels(labels)
    s = _as_1d("scores", scores, dtype=np.float64)
    if len(y) != len(s):
        raise MetricsError(f"labels and scores differ in length: {len(y)} vs {len(s)}")
    if np.isnan(s).any():
        raise MetricsError(f"scores must not be NaN; scores[{int(np.flatnonzero(np.isnan(s))[0])}] is NaN")
    if not y.any():
        raise MetricsError("F1 needs at least one positive label")
    pred = s >= threshold
    tp = int(np.count_nonzero(pred & y))
    fp = int(np.count_nonzero(pred & ~y))
    fn = int(np.count_nonzero(~pred & y))
    return 2.0 * tp / (2.0 * tp + fp + fn)


# ---------------------------------------------------------------------------------------------
# top-K lists
# ---------------------------------------------------------------------------------------------
def truth_matrix(user_idx, item_idx, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary ``csr_matrix [n_users, n_items]`` with a 1 at every ``(user_idx[i], item_idx[i])``.

    Repeated pairs collapse to one positive.  Row ``u`` must correspond to row ``u`` of the
    ``topk`` it is evaluated with (e.g. build both over the same evaluated-user index).
    """
    u = _as_1d("user_idx", user_idx)
    i = _as_1d("item_idx", item_idx)
    if len(u) != len(i):
        raise MetricsError(f"user_idx and item_idx differ in length: {len(u)} vs {len(i)}")
    for name, x, n in (("user_idx", u, n_users), ("item_idx", i, n_items)):
        if len(x) and x.dtype.kind not in "iu":
            raise MetricsError(f"{name} must be integers, got dtype {x.dtype}")
        bad = (x < 0) | (x >= n)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise MetricsError(f"{name}[{j}] = {x[j]} is outside [0, {n})")
    m = sp.csr_matrix(
        (np.ones(len(u)), (u.astype(np.int64), i.astype(np.int64))), shape=(int(n_users), int(n_items))
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def topk_from_scores(scores, k: int, exclude=None, chunk_users: int | None = None) -> np.ndarray:
    """Top-``k`` item indices per user, best first, with the ``exclude`` items masked.

    Works on blocks of users (about 4M scores each, so memory stays bounded whatever
    ``n_users``) with ``np.partition``: O(n_items) per user instead of a full sort.
    Ties are broken deterministically by the lower item index, everywhere in the list.

    Args:
        scores: ``float[n_users, n_items]``, finite (NaN/inf raise).
        k: list length, ``1 <= k <= n_items - (items excluded for that user)``.
        exclude: optional ``scipy.sparse [n_users, n_items]``; stored entries (e.g. each user's
            training positives) never appear in the output.
        chunk_users: users per block (default: ``~4M / n_items``).
    Returns:
        ``int64[n_users, k]``.
    Raises:
        MetricsError: bad shapes, non-finite scores, or a user with fewer than ``k`` items left
        after masking (message names the first such user).
    """
    s = np.asarray(scores)
    if s.ndim != 2:
        raise MetricsError(f"scores must be 2-D [n_users, n_items], got shape {s.shape}")
    if s.dtype.kind != "f":
        s = s.astype(np.float64)
    n_users, n_items = s.shape
    k = _check_k(k)
    if k > n_items:
        raise MetricsError(f"k={k} exceeds the catalogue size n_items={n_items}")
    if exclude is not None:
        if not sp.issparse(exclude):
            raise MetricsError(f"exclude must be a scipy.sparse matrix, got {type(exclude).__name__}")
        exclude = sp.csr_matrix(exclude, copy=True)
        if exclude.shape != s.shape:
            raise MetricsError(f"exclude has shape {exclude.shape}, scores {s.shape}")
        exclude.sum_duplicates()
        exclude.eliminate_zeros()
        left = n_items - np.diff(exclude.indptr)
        if (left < k).any():
            u = int(np.flatnonzero(left < k)[0])
            raise MetricsError(f"user row {u} has only {left[u]} items left after excluding, fewer than k={k}")
    step = chunk_users or max(1, _SCORE_CHUNK_ELEMS // n_items)
    out = np.empty((n_users, k), dtype=np.int64)
    starts = range(0, n_users, step)
    for a in tqdm(starts, desc="top-k", unit="block", disable=len(starts) < 16, leave=False):
        b = min(a + step, n_users)
        block = np.array(s[a:b], copy=True)
        _check_finite_block(block, a)
        if exclude is not None:
            sub = exclude[a:b]
            block[np.repeat(np.arange(b - a), np.diff(sub.indptr)), sub.indices] = -np.inf
        out[a:b] = _topk_block(block, k)
    return out


def _check_finite_block(block: np.ndarray, row0: int) -> None:
    if not np.isfinite(block).all():
        r, c = np.argwhere(~np.isfinite(block))[0]
        raise MetricsError(f"scores must be finite; scores[{row0 + r}, {c}] = {block[r, c]}")


def _topk_block(block: np.ndarray, k: int) -> np.ndarray:
    """Top-k columns of each row of ``block``, ordered by (score desc, column asc)."""
    m, n = block.shape
    kth = -np.partition(-block, k - 1, axis=1)[:, k - 1 : k]  # k-th largest score per row
    above = block > kth
    # Items tied with the k-th score fill the remaining slots lowest index first, so the result
    # does not depend on argpartition's arbitrary order among ties.
    tied = block == kth
    need = k - above.sum(axis=1, keepdims=True)
    take = above | (tied & (np.cumsum(tied, axis=1) <= need))
    cols = np.nonzero(take)[1].reshape(m, k)  # row-major: ascending column within each row
    vals = np.take_along_axis(block, cols, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")  # stable keeps lower index first on ties
    return np.take_along_axis(cols, order, axis=1)


# ---------------------------------------------------------------------------------------------
# Recall / NDCG (Table 3)
# ---------------------------------------------------------------------------------------------
def _discounts(n: int) -> np.ndarray:
    """``1 / log2(r + 1)`` for ranks ``r = 1..n``."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _hits(topk: np.ndarray, truth: sp.csr_matrix, row0: int, buf: np.ndarray) -> np.ndarray:
    """``bool[len(topk), K]``: is ``topk[u, r]`` a positive of truth row ``row0 + u``?

    Scatters the block's positives into ``buf`` (a zeroed ``bool[>= len(topk) * n_items]``
    scratch bitmap), gathers the recommended cells, then clears only the cells it set, so no
    per-block memset.  About 5x faster than a ``searchsorted`` over (user, item) keys.
    """
    m = topk.shape[0]
    n_items = truth.shape[1]
    ptr = truth.indptr[row0 : row0 + m + 1]
    cells = np.repeat(np.arange(m, dtype=np.int64) * n_items, np.diff(ptr)) + truth.indices[ptr[0] : ptr[-1]]
    buf[cells] = True
    hits = buf[np.arange(m, dtype=np.int64)[:, None] * n_items + topk]
    buf[cells] = False
    return hits


def ranking_per_user(topk, truth, ks: Iterable[int] = DEFAULT_KS, ndcg: str = "jurity") -> dict:
    """Per-user Recall@K and NDCG@K for every ``K`` in ``ks`` in one pass.

    Args:
        topk: ``int[n_users, K_max]`` best first, ``K_max >= max(ks)``.
        truth: ``scipy.sparse [n_users, n_items]`` test positives (rows aligned with ``topk``).
        ks: cut-offs.
        ndcg: ``"jurity"`` (IDCG over all positives) or ``"standard"`` (over min(K, |P|)).
    Returns:
        ``{"recall@K": float64[n_users], "ndcg@K": float64[n_users], ..., "n_positives":
        int64[n_users]}``; users with no positive hold NaN.
    """
    ks = sorted({_check_k(k, "ks entry") for k in ks})
    if not ks:
        raise MetricsError("ks is empty")
    _check_convention(ndcg)
    n_items = truth.shape[1] if sp.issparse(truth) else None
    arr = _check_topk(topk, n_items)
    kmax = ks[-1]
    if kmax > arr.shape[1]:
        raise MetricsError(f"ks contains {kmax} but topk has only {arr.shape[1]} columns")
    arr = arr[:, :kmax]
    t = _check_truth(truth, arr.shape[0])
    n_users = arr.shape[0]
    n_pos = np.diff(t.indptr).astype(np.int64)
    disc = _discounts(kmax)
    # cumulative ideal DCG: idcg_table[j] = Σ_{r<=j} 1/log2(r+1), idcg_table[0] = 0
    idcg_table = np.concatenate([[0.0], np.cumsum(_discounts(max(int(n_pos.max()), kmax)))])
    seg = np.array([0] + ks[:-1], dtype=np.intp)  # segment starts for reduceat
    hits_at = np.empty((n_users, len(ks)), dtype=np.float64)
    dcg_at = np.empty((n_users, len(ks)), dtype=np.float64)
    # Blocks of users: the scratch bitmap [block, n_items] stays ~8 MiB (cache-friendly).
    step = max(1, min(_HIT_BUFFER_CELLS // t.shape[1], _RANK_CHUNK_ELEMS // kmax))
    buf = np.zeros(step * t.shape[1], dtype=bool)
    for a in range(0, n_users, step):
        b = min(a + step, n_users)
        h = _hits(arr[a:b], t, a, buf)
        # sums over the rank segments [0, k1), [k1, k2), ... then a cumsum over the few ks
        hits_at[a:b] = np.cumsum(np.add.reduceat(h, seg, axis=1, dtype=np.float64), axis=1)
        dcg_at[a:b] = np.cumsum(np.add.reduceat(h * disc, seg, axis=1), axis=1)
    has = n_pos > 0
    out: dict = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, k in enumerate(ks):
            recall = np.where(has, hits_at[:, j] / np.maximum(n_pos, 1), np.nan)
            ideal_n = n_pos if ndcg == "jurity" else np.minimum(n_pos, k)
            nd = np.where(has, dcg_at[:, j] / np.where(has, idcg_table[ideal_n], 1.0), np.nan)
            out[f"recall@{k}"] = recall
            out[f"ndcg@{k}"] = nd
    out["n_positives"] = n_pos
    return out


def ranking_metrics(topk, truth, ks: Iterable[int] = DEFAULT_KS, ndcg: str = "jurity") -> dict:
    """Mean Recall@K and NDCG@K over users with at least one test positive (Table 3).

    Returns:
        ``{"recall@5": .., "ndcg@5": .., ..., "n_users": evaluated users, "n_skipped": users
        without a test positive, "ndcg_convention": ndcg}``.
    Raises:
        MetricsError: bad inputs, or no user has a test positive.
    """
    per = ranking_per_user(topk, truth, ks, ndcg)
    has = per.pop("n_positives") > 0
    n_eval = int(has.sum())
    if n_eval == 0:
        raise MetricsError("no user in truth has a test positive; ranking metrics are undefined")
    out = {key: float(np.mean(v[has])) for key, v in per.items()}
    out.update(n_users=n_eval, n_skipped=int((~has).sum()), ndcg_convention=ndcg)
    return out


def recall_at_k(topk, truth, k: int) -> float:
    """Mean Recall@k = |top-k ∩ P_u| / |P_u| over users with a positive (jurity's definition)."""
    return ranking_metrics(topk, truth, ks=(k,))[f"recall@{k}"]


def ndcg_at_k(topk, truth, k: int, ndcg: str = "jurity") -> float:
    """Mean NDCG@k over users with a positive; ``ndcg`` picks the IDCG convention."""
    return ranking_metrics(topk, truth, ks=(k,), ndcg=ndcg)[f"ndcg@{k}"]


def ndcg_per_user(topk, truth, k: int = 100, ndcg: str = "jurity") -> np.ndarray:
    """``float64[n_users]`` NDCG@k per user; NaN for users without a test positive."""
    return ranking_per_user(topk, truth, ks=(k,), ndcg=ndcg)[f"ndcg@{k}"]


# ---------------------------------------------------------------------------------------------
# Cold start (Figures 1, 5)
# ---------------------------------------------------------------------------------------------
def cold_start_buckets(
    train_counts, percentiles: Sequence[float] = COLD_START_PERCENTILES, ties: str = "include"
) -> list[np.ndarray]:
    """Cumulative buckets of the least active users (Figure 5's x-axis).

    For percentile ``p`` let ``m = ceil(p·n/100)`` and ``c`` the train count of the ``m``-th
    least active user.

    * ``ties="include"`` (default): the bucket is every user with ``train_counts <= c``, so
      users with the same activity are never split; a bucket can then exceed ``p`` % (e.g.
      when many users share the smallest count, the 1 % and 5 % buckets may coincide).
    * ``ties="split"``: exactly the first ``m`` users in the order (count, user index).

    Args:
        train_counts: ``int[n]`` training interactions per user (rows of the evaluated users).
        percentiles: increasing values in (0, 100].
    Returns:
        One sorted ``int64`` index array (into ``train_counts``) per percentile.
    """
    counts = _as_1d("train_counts", train_counts)
    if counts.dtype.kind not in "iu":
        if counts.dtype.kind == "f" and np.isfinite(counts).all() and (counts == np.round(counts)).all():
            counts = counts.astype(np.int64)
        else:
            raise MetricsError(f"train_counts must be integer counts, got dtype {counts.dtype}")
    if len(counts) == 0:
        raise MetricsError("train_counts is empty")
    if (counts < 0).any():
        i = int(np.flatnonzero(counts < 0)[0])
        raise MetricsError(f"train_counts[{i}] = {counts[i]} is negative")
    if ties not in ("include", "split"):
        raise MetricsError(f"ties must be 'include' or 'split', got {ties!r}")
    ps = [float(p) for p in percentiles]
    if not ps or any(not (0 < p <= 100) for p in ps):
        raise MetricsError(f"percentiles must be in (0, 100], got {tuple(percentiles)}")
    n = len(counts)
    order = np.argsort(counts, kind="stable")  # by count, then user index
    buckets = []
    for p in ps:  # a dozen percentiles, not users
        m = max(1, math.ceil(Fraction(str(p)) * n / 100))
        if ties == "split":
            buckets.append(np.sort(order[:m]).astype(np.int64))
        else:
            buckets.append(np.flatnonzero(counts <= counts[order[m - 1]]).astype(np.int64))
    return buckets


def cold_start_ndcg(
    topk,
    truth,
    train_counts,
    k: int = 100,
    percentiles: Sequence[float] = COLD_START_PERCENTILES,
    ndcg: str = "jurity",
    ties: str = "include",
) -> pd.DataFrame:
    """NDCG@k of the cumulative least-active-user buckets (Figures 1, 5).

    Only users with at least one test positive (the test users) are bucketed; the percentiles
    refer to them.

    Args:
        topk, truth: as :func:`ranking_per_user`.
        train_counts: ``int[n_users]`` training interactions of each ``topk`` row's user (e.g.
            ``kgcl_lib.data.user_train_counts(train, n_users)[users]``).
        k: NDCG cut-off (Figure 5 uses 100).
        percentiles, ties: see :func:`cold_start_buckets`.
    Returns:
        DataFrame with columns ``percentile``, ``n_users``, ``max_train_count`` (the bucket's
        largest activity) and ``ndcg@{k}``; ``df.attrs["ndcg_convention"]`` names the convention.
    """
    counts = _as_1d("train_counts", train_counts)
    arr = np.asarray(topk)
    if arr.ndim == 2 and len(counts) != arr.shape[0]:
        raise MetricsError(f"train_counts has {len(counts)} entries but topk has {arr.shape[0]} users")
    per = ndcg_per_user(topk, truth, k=k, ndcg=ndcg)
    has = ~np.isnan(per)
    if not has.any():
        raise MetricsError("no user in truth has a test positive; cold-start NDCG is undefined")
    per, counts = per[has], counts[has]
    buckets = cold_start_buckets(counts, percentiles, ties=ties)
    df = pd.DataFrame(
        {
            "percentile": [float(p) for p in percentiles],
            "n_users": [len(b) for b in buckets],
            "max_train_count": [int(counts[b].max()) for b in buckets],
            f"ndcg@{k}": [float(per[b].mean()) for b in buckets],
        }
    )
    df.attrs["ndcg_convention"] = ndcg
    return df


# ---------------------------------------------------------------------------------------------
# Diversity (Table 4, Eq. 6-7)
# ---------------------------------------------------------------------------------------------
def inter_list_diversity(topk, n_items: int, k: int | None = None) -> float:
    """Inter-list diversity@k, Eq. 6, exactly over **all** unique user pairs.

    With ``r_u`` the binary K-hot recommendation vector of user ``u`` and ``r̂_u = r_u / √K``,
    cos(r_u, r_v) = r̂_u·r̂_v, hence

    ``mean_{u<v} (1 - r̂_u·r̂_v) = 1 - (‖Σ_u r̂_u‖² - n) / (n(n-1))
    = 1 - (Σ_i c_i² - nK) / (K n (n-1))``

    where ``c_i`` is how many lists contain item ``i``.  Evaluated in exact integer arithmetic
    (O(nK), no n×n matrix), it equals jurity's ``user_sample_size=None`` value to float rounding.

    Args:
        topk: ``int[n_users, K']`` distinct items per row; every row is a user of Eq. 6.
        n_items: catalogue size (bounds check).
        k: use the first ``k`` columns (default: all).
    Returns:
        Diversity in [0, 1]; 0 when all lists are identical.
    Raises:
        MetricsError: fewer than 2 users (Eq. 6 has no pair; jurity returns NaN), bad topk.
    """
    arr = _check_topk(topk, n_items, k)
    n, kk = arr.shape
    if n < 2:
        raise MetricsError(f"inter-list diversity needs at least 2 users, got {n}")
    c = np.bincount(arr.ravel(), minlength=n_items).astype(np.int64)
    sum_c2 = int(c @ c)
    # Python ints: exact numerator and denominator, one rounding at the division.
    return 1.0 - (sum_c2 - n * kk) / (kk * n * (n - 1))


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (as sklearn.preprocessing.normalize)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    return x / np.where(norms > 0, norms, 1.0)[:, None]


def intra_list_diversity_per_user(topk, item_emb, k: int | None = None) -> np.ndarray:
    """``float64[n_users]``: Eq. 7's inner term, each user's mean pairwise cosine distance.

    With normalised embeddings ``ê`` and ``S_u = Σ_{p in list} ê_p``,
    ``Σ_{p<q} ê_p·ê_q = (‖S_u‖² - Σ_p ‖ê_p‖²) / 2``, so the mean distance is
    ``1 - that / (K(K-1)/2)``.  ``S`` is one sparse (K-hot) × dense product: O(n·K·D) time and
    O(n·D) memory, no items×items matrix.  An all-zero embedding (e.g. an item without text)
    has cosine distance 1 to everything, as in sklearn/jurity.
    """
    emb = np.asarray(item_emb, dtype=np.float64)
    if emb.ndim != 2:
        raise MetricsError(f"item_emb must be 2-D [n_items, D], got shape {emb.shape}")
    _check_finite("item_emb", emb)
    arr = _check_topk(topk, emb.shape[0], k)
    n, kk = arr.shape
    if kk < 2:
        raise MetricsError("intra-list diversity needs lists of at least 2 items (k >= 2)")
    e = _normalise_rows(emb)
    sq = np.einsum("ij,ij->i", e, e)  # 1, or 0 for all-zero rows
    r = sp.csr_matrix(
        (np.ones(n * kk), arr.ravel(), np.arange(0, n * kk + 1, kk, dtype=np.int64)),
        shape=(n, emb.shape[0]),
    )
    s = r @ e  # [n, D] sum of each list's normalised embeddings
    pair_sim = (np.einsum("ij,ij->i", s, s) - r @ sq) / 2.0
    return 1.0 - pair_sim / (kk * (kk - 1) / 2.0)


def intra_list_diversity(topk, item_emb, k: int | None = None) -> float:
    """Intra-list diversity@k, Eq. 7: per user the mean pairwise cosine distance of the ``k``
    recommended items' content embeddings, averaged over all ``topk`` rows (exact).

    Args:
        topk: ``int[n_users, K']`` distinct items per row.
        item_emb: ``float[n_items, D]`` content embeddings (computed in float64).
        k: use the first ``k`` columns (default all); must be >= 2.
    """
    return float(np.mean(intra_list_diversity_per_user(topk, item_emb, k)))


# ---------------------------------------------------------------------------------------------
# Embedding quality (Figure 6; Wang & Isola 2020)
# ---------------------------------------------------------------------------------------------
def _unit_rows(name: str, x) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise MetricsError(f"{name} must be 2-D [n, D], got shape {arr.shape}")
    _check_finite(name, arr)
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))
    if (norms == 0).any():
        raise MetricsError(f"{name} row {int(np.flatnonzero(norms == 0)[0])} is all zeros; cannot L2-normalise it")
    return arr / norms[:, None]


def alignment(x, y, alpha: float = 2) -> float:
    """ℓ_align = mean_i ‖x̂_i - ŷ_i‖₂^α over positive pairs (Wang & Isola 2020), lower is better.

    Args:
        x, y: ``float[n_pairs, D]``, row ``i`` of each is one positive pair (e.g. the content
            embeddings of ``ContentPairs`` anchor/other with label 1); L2-normalised here.
        alpha: exponent (default 2, as in the paper).
    """
    a, b = _unit_rows("x", x), _unit_rows("y", y)
    if a.shape != b.shape:
        raise MetricsError(f"x and y must have the same shape, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise MetricsError("alignment needs at least one pair")
    d = np.sqrt(np.maximum(np.einsum("ij,ij->i", a - b, a - b), 0.0))
    return float(np.mean(d**alpha))


def uniformity(
    x,
    t: float = 2,
    sample_pairs: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> float:
    """ℓ_uniform = log mean_{i<j} exp(-t ‖x̂_i - x̂_j‖²) (Wang & Isola 2020), lower is better.

    Exact by default: all n(n-1)/2 pairs, in row blocks of the Gram matrix (≈8 MiB each, so
    memory stays O(n); 17k items = 1.4e8 pairs take about a second).  For very large ``n`` pass
    ``sample_pairs`` to average over that many pairs drawn uniformly (with replacement) from the
    distinct pairs with ``rng`` (a Generator or an int seed; required then).

    Args:
        x: ``float[n, D]``, L2-normalised here (zero rows raise).
        t: temperature (default 2, as in the paper).
    """
    e = _unit_rows("x", x)
    n = len(e)
    if n < 2:
        raise MetricsError(f"uniformity needs at least 2 vectors, got {n}")
    if sample_pairs is not None:
        m = _check_k(sample_pairs, "sample_pairs")
        if rng is None:
            raise MetricsError("uniformity(sample_pairs=...) needs rng (a numpy Generator or int seed)")
        g = np.random.default_rng(rng)
        i = g.integers(0, n, m)
        j = g.integers(0, n - 1, m)
        j = j + (j >= i)  # uniform over the other n-1 rows: (i, j) is a uniform distinct pair
        sq = np.maximum(2.0 - 2.0 * np.einsum("ij,ij->i", e[i], e[j]), 0.0)
        return float(np.log(np.mean(np.exp(-t * sq))))
    # exp(-t‖x̂-ŷ‖²) = exp(-2t) · exp(2t x̂·ŷ) for unit vectors: one scale and one exp per pair.
    c = 2.0 * float(t)
    step = max(1, _GRAM_CHUNK_ELEMS // n)
    total = 0.0
    starts = range(0, n, step)
    for a in tqdm(starts, desc="uniformity", unit="block", disable=len(starts) < 64, leave=False):
        b = min(a + step, n)
        g = e[a:b] @ e[a:].T  # rows a..b against columns a..n: the upper triangle only
        np.multiply(g, c, out=g)
        np.exp(g, out=g)
        # The leading [b-a, b-a] block is symmetric: its pairs j > i sum to (sum - trace) / 2.
        diag = g[:, : b - a]
        total += float(g[:, b - a :].sum()) + (float(diag.sum()) - float(np.trace(diag))) / 2.0
    return float(-c + np.log(total / (n * (n - 1) / 2.0)))


# ---------------------------------------------------------------------------------------------
# Significance (Table 2)
# ---------------------------------------------------------------------------------------------
def ttest_vs_baseline(
    results: pd.DataFrame,
    baseline: str,
    metrics: Sequence[str] | None = None,
    test: str = "welch",
) -> pd.DataFrame:
    """Mean ± sd per variant and metric, and a two-sided t-test of each variant's seeds against
    the baseline's seeds (Table 2's p-values).

    The paper says only "t-test" over ten trials per model.  The default is **Welch's unequal-
    variance independent two-sample t-test**: models are trained independently per seed, and a
    contrastive variant need not have the baseline's seed-to-seed variance; with equal group
    sizes Welch's t equals Student's t and only its degrees of freedom shrink when the variances
    differ, so little power is lost when they are equal.  ``test="student"`` (pooled variance)
    and ``test="paired"`` (seeds matched by ``seed``; use it when a seed fixes the data split
    for every variant) are available.  t and df are computed here, vectorised over all variant ×
    metric cells; p = 2·P(T_df > |t|) uses ``scipy.stats.t``.

    Args:
        results: one row per run, columns ``variant``, ``seed`` and the metric columns.
        baseline: the ``variant`` value to compare against.
        metrics: metric columns (default: every numeric column except ``seed``).
        test: ``"welch"`` (default), ``"student"`` or ``"paired"``.
    Returns:
        DataFrame, one row per (variant, metric), baseline first: ``variant, metric, n, mean,
        sd`` (sample sd, ddof=1), ``baseline_mean, baseline_sd, diff`` (mean - baseline_mean),
        ``t, df, p, test``.  t/df/p are NaN for the baseline itself, for groups with fewer than
        2 runs, and when both groups have zero variance and equal means.
    Raises:
        MetricsError: missing columns/baseline, NaN metric values, a seed repeated within a
        variant, or (paired) variants whose seed sets differ.
    """
    if test not in T_TESTS:
        raise MetricsError(f"test must be one of {T_TESTS}, got {test!r}")
    if not isinstance(results, pd.DataFrame):
        raise MetricsError(f"results must be a DataFrame, got {type(results).__name__}")
    for col in ("variant", "seed"):
        if col not in results.columns:
            raise MetricsError(f"results lacks the column {col!r} (columns: {list(results.columns)})")
    if metrics is None:
        metrics = [
            c for c in results.columns if c not in ("variant", "seed") and pd.api.types.is_numeric_dtype(results[c])
        ]
    metrics = list(metrics)
    if not metrics:
        raise MetricsError("no metric columns to test")
    missing = [m for m in metrics if m not in results.columns]
    if missing:
        raise MetricsError(f"metric columns not in results: {missing}")
    variants = list(pd.unique(results["variant"]))
    if baseline not in variants:
        raise MetricsError(f"baseline {baseline!r} is not a variant; variants are {variants}")
    values = results[metrics].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any():
        r, c = np.argwhere(values.isna().to_numpy())[0]
        raise MetricsError(
            f"metric {metrics[c]!r} is NaN/non-numeric in results row {results.index[r]} "
            f"(variant {results['variant'].iloc[r]!r}, seed {results['seed'].iloc[r]})"
        )
    dup = results.duplicated(["variant", "seed"])
    if dup.any():
        r = int(np.flatnonzero(dup.to_numpy())[0])
        raise MetricsError(
            f"variant {results['variant'].iloc[r]!r} has seed {results['seed'].iloc[r]} more than once"
        )
    order = [baseline] + [v for v in variants if v != baseline]
    frame = pd.concat([results[["variant", "seed"]], values], axis=1)
    grouped = frame.groupby("variant", sort=False)[metrics]
    mean = grouped.mean().reindex(order)  # [n_variants, n_metrics]
    var = grouped.var(ddof=1).reindex(order)
    n = grouped.count().reindex(order).astype(float)
    m0, v0, n0 = mean.loc[baseline], var.loc[baseline], n.loc[baseline]

    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "paired":
            base = frame[frame["variant"] == baseline].set_index("seed")[metrics]
            seeds0 = set(base.index)
            diff_mean = pd.DataFrame(index=order, columns=metrics, dtype=float)
            diff_var = pd.DataFrame(index=order, columns=metrics, dtype=float)
            for v in order:  # a handful of variants, each fully vectorised over seeds x metrics
                cur = frame[frame["variant"] == v].set_index("seed")[metrics]
                if set(cur.index) != seeds0:
                    raise MetricsError(
                        f"paired t-test needs the same seeds; variant {v!r} has {sorted(cur.index.tolist())}, "
                        f"baseline {baseline!r} has {sorted(base.index.tolist())}"
                    )
                d = cur - base.loc[cur.index]
                diff_mean.loc[v] = d.mean()
                diff_var.loc[v] = d.var(ddof=1)
            se = np.sqrt(diff_var / n)
            tstat = diff_mean / se
            dof = n - 1
        elif test == "welch":
            a, b = var / n, v0 / n0
            se = np.sqrt(a + b)
            tstat = (mean - m0) / se
            dof = (a + b) ** 2 / (a**2 / (n - 1) + b**2 / (n0 - 1))
        else:  # student
            pooled = ((n - 1) * var + (n0 - 1) * v0) / (n + n0 - 2)
            tstat = (mean - m0) / np.sqrt(pooled * (1.0 / n + 1.0 / n0))
            dof = n + n0 - 2
        tstat = tstat.astype(float)
        dof = dof.astype(float)
        # Fewer than two runs on either side: no variance estimate, no test.
        invalid = (n < 2) | (n0 < 2)
        tstat = tstat.mask(invalid)
        dof = dof.mask(invalid | tstat.isna())
        p = 2.0 * scipy.stats.t.sf(np.abs(tstat.to_numpy()), dof.to_numpy())
    p = pd.DataFrame(p, index=order, columns=metrics)
    tstat.loc[baseline] = np.nan
    dof.loc[baseline] = np.nan
    p.loc[baseline] = np.nan

    def long(df: pd.DataFrame, name: str) -> pd.Series:
        return df.stack(future_stack=True).rename(name)

    out = pd.concat(
        [
            long(n.astype(int), "n"),
            long(mean, "mean"),
            long(np.sqrt(var), "sd"),
            long(pd.DataFrame([m0] * len(order), index=order), "baseline_mean"),
            long(pd.DataFrame([np.sqrt(v0)] * len(order), index=order), "baseline_sd"),
            long(mean - m0, "diff"),
            long(tstat, "t"),
            long(dof, "df"),
            long(p, "p"),
        ],
        axis=1,
    )
    out.index.names = ["variant", "metric"]
    out = out.reset_index()
    out["test"] = test
    return out
