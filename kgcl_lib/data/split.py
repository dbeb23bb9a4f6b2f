"""Random train/valid/test split of labelled rows (KGCN protocol) and per-user activity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import DatasetError


@dataclass(frozen=True, eq=False)
class Split:
    """Disjoint parts of ``KGDataset.ratings``; each is ``int64[n, 3]`` ``(user, item, label)``."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def split_ratings(ratings: np.ndarray, rng: np.random.Generator | int, ratios=(0.6, 0.2, 0.2)) -> Split:
    """Shuffle labelled rows with ``rng`` and cut them ``ratios`` (default 6:2:2, as KGCN).

    ``rng`` is a ``numpy.random.Generator`` or an int seed turned into one.

    Sizes are ``floor(n * r_valid)`` for valid, ``floor(n * r_test)`` for test and the rest for
    train, so no row is lost.  Rows keep their ``(user, item, label)`` form.
    """
    ratios = np.asarray(ratios, dtype=float)
    if ratios.shape != (3,) or (ratios < 0).any() or not np.isclose(ratios.sum(), 1.0):
        raise DatasetError(f"split ratios must be three non-negative numbers summing to 1, got {tuple(ratios)}")
    n = len(ratings)
    perm = np.random.default_rng(rng).permutation(n)
    n_valid = int(np.floor(n * ratios[1]))
    n_test = int(np.floor(n * ratios[2]))
    n_train = n - n_valid - n_test
    return Split(
        train=ratings[perm[:n_train]],
        valid=ratings[perm[n_train : n_train + n_valid]],
        test=ratings[perm[n_train + n_valid :]],
    )


def user_train_counts(train: np.ndarray, n_users: int, positives_only: bool = True) -> np.ndarray:
    """``int64[n_users]`` — each user's number of training interactions.

    With ``positives_only`` (default) only label-1 rows count: the user's observed activity,
    which the cold-start analysis (Fig. 5) buckets by percentile.
    """
    rows = train[train[:, 2] == 1] if positives_only else train
    return np.bincount(rows[:, 0], minlength=n_users).astype(np.int64)


def check_splittable(ds) -> None:
    """:class:`DatasetError` when ``ds``'s ratings cannot give a meaningful train/valid/test split:
    fewer than 2 users or 2 items (the test AUC would be NaN, every score the same user or item)."""
    r = np.asarray(ds.ratings)
    n_users, n_items = (len(np.unique(r[:, c])) if len(r) else 0 for c in (0, 1))
    if n_users < 2 or n_items < 2:
        raise DatasetError(f"{ds.name}: the ratings hold {n_users} user(s) and {n_items} item(s) ({len(r)} rows): "
                           f"too few for a train/valid/test split and its AUC (at least 2 users and 2 items)")


def warn_if_no_kg(ds) -> bool:
    """Warn (once per call) when ``ds`` has no KG triples: KGCN then degenerates to a factorisation
    model (every item aggregates only its own self-loop). Returns whether it warned."""
    if len(ds.kg):
        return False
    import warnings

    warnings.warn(f"{ds.name}: the dataset has no KG triples, so KGCN degenerates to a factorisation model "
                  f"(each item aggregates only itself); check its kg file", stacklevel=2)
    return True
