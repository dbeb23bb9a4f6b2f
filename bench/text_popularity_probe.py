"""How much of an item's popularity its synopsis embedding carries (docs/ripplenet.md, "The
model-agnostic claim").

With semantic text, RippleNet scores a candidate item through ``v = MLP_α(E(x))`` alone: the item
has no free vector of its own (KGCN's item representation also aggregates its KG neighbours' free
entity vectors). Whatever ``v`` encodes must be a linear function of the frozen synopsis vector
``E(x)``. This probe asks how much of the clearest collaborative signal -- popularity,
``log(1 + training positives)`` of each item -- a linear map of ``E(x)`` can reproduce: 5-fold
cross-validated R² of a ridge regression, for a few ridge strengths.

    python bench/text_popularity_probe.py RESULTS_DIR [--dataset ml-100k] [--seed 0]

``RESULTS_DIR`` is a profile's results folder that holds ``text/<dataset>__with.npz`` (notebook 02's
cache, e.g. ``runs/default``); the split is the grid's split of ``--seed``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kgcl_lib.experiments import make_split, open_dataset


def cv_r2(features: np.ndarray, target: np.ndarray, ridge: float, folds: list[np.ndarray]) -> float:
    """Out-of-fold R² of ridge regression (with intercept) of ``target`` on ``features``."""
    pred = np.empty_like(target)
    for fold in folds:
        keep = np.ones(len(target), dtype=bool)
        keep[fold] = False
        a = np.c_[features[keep], np.ones(keep.sum())]
        w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ target[keep])
        pred[fold] = np.c_[features[fold], np.ones(len(fold))] @ w
    return float(1 - ((target - pred) ** 2).sum() / ((target - target.mean()) ** 2).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results_dir", type=Path)
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ds = open_dataset(args.dataset)
    cache = np.load(args.results_dir / "text" / f"{args.dataset}__with.npz")
    vectors, has_text = cache["vectors"], cache["has_text"].astype(bool)
    rows = np.asarray(make_split(ds, args.seed).train)
    positives = rows[rows[:, 2] == 1]
    popularity = np.log1p(np.bincount(positives[:, 1], minlength=ds.n_items).astype(float))
    items = np.flatnonzero(has_text)
    folds = np.array_split(np.random.default_rng(0).permutation(len(items)), 5)
    print(f"{args.dataset}: {len(items):,} items with text of {ds.n_items:,}; encoder dim {vectors.shape[1]}; "
          f"target log(1 + training positives), split of seed {args.seed}")
    for ridge in (0.1, 1.0, 10.0, 100.0):
        print(f"ridge {ridge:>6g}: 5-fold CV R² = {cv_r2(vectors[items], popularity[items], ridge, folds):+.3f}")


if __name__ == "__main__":
    main()
