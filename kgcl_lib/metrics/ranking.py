"""Top-K ranking metrics of Table 3 and the cold-start curves of Figures 1 and 5 (see the package
docstring for the conventions)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from .checks import MetricsError, _as_1d, _check_k, _check_topk, _check_truth

#: Cut-offs of Table 3.
DEFAULT_KS = (5, 10, 20, 50, 100)
#: IDCG conventions accepted by the NDCG functions (see module docstring).
NDCG_CONVENTIONS = ("jurity", "standard")
#: Figure 5's x-axis: cumulative buckets of the least active test users, in percent.
COLD_START_PERCENTILES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)

# Working-set sizes (elements) of the chunked loops.  Blocks of a few MiB keep the peak memory
# small at MovieLens-20M scale and the per-block temporaries in cache, while each numpy call
# still covers enough elements to amortise its overhead (measured on the 2-core dev machine).
_RANK_CHUNK_ELEMS = 1 << 21  # [users, K] cumsum blocks (float64: 16 MiB)
_HIT_BUFFER_CELLS = 1 << 23  # [users, n_items] scratch bitmap for hit lookup (bool: 8 MiB)
_SCORE_CHUNK_ELEMS = 1 << 22  # [users, n_items] score blocks in topk_from_scores (float64: 32 MiB)


def _check_convention(ndcg: str) -> str:
    if ndcg not in NDCG_CONVENTIONS:
        raise MetricsError(f"ndcg convention must be one of {NDCG_CONVENTIONS}, got {ndcg!r}")
    return ndcg


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
