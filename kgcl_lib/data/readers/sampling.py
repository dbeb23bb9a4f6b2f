"""Vectorised set operations and seeded negative sampling (distinct unrated items per user) for the
KGCN conversion."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Dense exact sampling is used once the rejection sampler has few users left; it allocates
# ``rows x n_items`` floats per chunk, so cap the chunk at ~16M cells (128 MB).
_DENSE_CELLS = 1 << 24


def _sorted_raw_ids(values: np.ndarray) -> np.ndarray:
    """Unique raw ids (``object`` of str) sorted numerically when all are integers, else as text."""
    uniq = pd.Series(pd.unique(pd.Series(values, dtype=object).astype(str)), dtype=object)
    if len(uniq) and uniq.str.fullmatch(r"\d+").all():
        order = np.argsort(uniq.astype(np.int64).to_numpy(), kind="stable")
    else:
        order = np.argsort(uniq.to_numpy(dtype=str), kind="stable")
    return uniq.to_numpy(dtype=object)[order]


# ---------------------------------------------------------------------------------------
# Vectorised sampling of distinct items per user
# ---------------------------------------------------------------------------------------
def sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-D array, by sorting.

    ``np.unique`` in numpy >= 2.3 hashes first; on 20M random int64 keys it takes over a
    minute here, against half a second for sort + neighbour comparison.
    """
    a = np.sort(np.asarray(a).ravel())
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def is_member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``bool[len(keys)]``: which ``keys`` occur in the sorted array ``sorted_keys``."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos[pos == len(sorted_keys)] = len(sorted_keys) - 1
    return sorted_keys[pos] == keys


def sample_distinct_items(
    users: np.ndarray,
    need: np.ndarray,
    n_items: int,
    rng: np.random.Generator,
    exclude_keys: np.ndarray | None = None,
    p: np.ndarray | None = None,
    rounds: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample, for each user, ``need[u]`` distinct items not in that user's excluded set.

    Args:
        users: ``int64[U]`` distinct user indices in ascending order.
        need: ``int64[U]`` how many items each user needs (>= 0).
        n_items: items are ``0..n_items-1``.
        rng: explicit generator (the result is a deterministic function of its state).
        exclude_keys: sorted unique ``int64`` keys ``user * n_items + item`` that must not be
            drawn (e.g. every rated pair).  ``None`` = nothing excluded.
        p: optional ``float[n_items]`` item weights for the candidate draws (popularity);
            ``None`` = uniform, which makes the result a uniform random subset of the allowed
            items (the procedure is symmetric in the allowed items).
        rounds: rejection rounds before the remaining users are finished exactly.

    Returns:
        ``(user, item)`` as two ``int64`` arrays sorted by ``(user, item)``.  A user who has
        fewer allowed items than ``need`` gets all of them (callers check the shortfall).

    Vectorised rejection sampling: draw ``need`` candidates per user, drop excluded and
    duplicate ones, repeat for what is missing.  Users still short after ``rounds`` (heavy
    users near saturation) are finished exactly on a dense ``users x items`` mask in chunks,
    drawing uniformly among what is left.
    """
    users = np.asarray(users, dtype=np.int64)
    need = np.asarray(need, dtype=np.int64).copy()
    excl = np.zeros(0, dtype=np.int64) if exclude_keys is None else np.asarray(exclude_keys, dtype=np.int64)
    if p is not None:
        cdf = np.cumsum(np.asarray(p, dtype=np.float64))
        cdf /= cdf[-1]
    chosen: list[np.ndarray] = []
    chosen_sorted = np.zeros(0, dtype=np.int64)
    pending = need > 0
    for _ in range(rounds):
        if not pending.any():
            break
        pu, pn = users[pending], need[pending]
        slot_user = np.repeat(pu, pn)
        if p is None:
            cand = rng.integers(0, n_items, size=len(slot_user), dtype=np.int64)
        else:
            cand = np.minimum(np.searchsorted(cdf, rng.random(len(slot_user)), side="right"), n_items - 1)
        keys = slot_user * n_items + cand
        keys = keys[~is_member(excl, keys)]
        keys = sorted_unique(keys)  # distinct within the round ...
        keys = keys[~is_member(chosen_sorted, keys)]  # ... and against earlier rounds
        if len(keys):
            chosen.append(keys)
            chosen_sorted = np.sort(np.concatenate([chosen_sorted, keys]), kind="stable")
            got = np.bincount(np.searchsorted(users, keys // n_items), minlength=len(users))
            need -= got
        pending = need > 0
        # Stop the rejection rounds once few slots remain: the dense pass is exact and cheap.
        if need[pending].sum() * 50 < len(slot_user) and pending.sum() * n_items < _DENSE_CELLS:
            break
    if pending.any():
        chosen.append(_dense_finish(users[pending], need[pending], n_items, rng, excl, chosen_sorted))
    keys = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return keys // n_items, keys % n_items


def _gather_user_keys(sorted_keys: np.ndarray, users: np.ndarray, n_items: int):
    """Keys of ``sorted_keys`` that belong to ``users``: ``(row in users, item)`` arrays."""
    lo = np.searchsorted(sorted_keys, users * n_items)
    hi = np.searchsorted(sorted_keys, (users + 1) * n_items)
    counts = hi - lo
    rows = np.repeat(np.arange(len(users)), counts)
    # position of each gathered key: its range start plus its offset inside the range
    idx = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
    return rows, sorted_keys[idx] % n_items


def _dense_finish(users, need, n_items, rng, excl, chosen_sorted) -> np.ndarray:
    """Exact uniform sampling of ``need[u]`` allowed items for a few users (dense masks)."""
    out = []
    step = max(1, _DENSE_CELLS // max(n_items, 1))
    for s in range(0, len(users), step):
        cu, cn = users[s : s + step], need[s : s + step]
        mask = np.zeros((len(cu), n_items), dtype=bool)
        for taken in (excl, chosen_sorted):
            rows, cols = _gather_user_keys(taken, cu, n_items)
            mask[rows, cols] = True
        keys = rng.random((len(cu), n_items))
        keys[mask] = 2.0  # taken items sort last
        k = int(cn.max())
        part = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n_items else np.argsort(keys, axis=1)
        topkey = np.take_along_axis(keys, part, axis=1)
        take = (np.argsort(np.argsort(topkey, axis=1), axis=1) < cn[:, None]) & (topkey < 2.0)
        r, c = np.nonzero(take)
        out.append(cu[r] * n_items + part[r, c])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
