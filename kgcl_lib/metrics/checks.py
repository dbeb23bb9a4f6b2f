"""Input checks shared by every metric family, and the one error they raise."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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
