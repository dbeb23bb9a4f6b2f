"""Full-catalogue KGCN top-K scoring: this checkout vs a git ref, side by side, same model.

Usage (from the repo root; prints one JSON object)::

    KGCL_DATA_DIR=../shared/data python bench/topk_speed.py --dataset book-crossing --ref main
    KGCL_DATA_DIR=../shared/data python bench/topk_speed.py --dataset ml-100k --ref main

Builds the dataset's paper-settings model (``train.paper_settings``; random initial weights,
``--train-epochs`` epochs of training first when > 0), takes the test users of seed 0's split
and their train+valid exclusion mask, and times ``model.topk`` of this checkout and KGCN's
scorer at ``--ref`` (:func:`load_ref_scoring`, loaded from git as a sibling module) alternately,
``--repeats`` times each, in CPU seconds (``time.process_time``: robust to other jobs on the
cores; meaningful at 1 thread).  It reports the share of identical top-K rows and the largest
score difference of the two implementations on the first ``--check-users`` users.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def load_ref_scoring(ref: str):
    """``(topk(model, users, k, exclude), score_all(model, users))`` of KGCN's full-catalogue scorer
    as of git ``ref``: ``kgcl_lib/model/scoring.py`` (ranked by this checkout's
    ``Backbone.topk``) or, before the model package, ``kgcl_lib/scoring.py``; loaded as a sibling
    module of this checkout's."""
    for path, pkg in (("kgcl_lib/model/scoring.py", "kgcl_lib.model"), ("kgcl_lib/scoring.py", "kgcl_lib")):
        got = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:{path}"], capture_output=True, text=True)
        if got.returncode == 0:
            break
    else:
        raise SystemExit(f"no KGCN scorer at {ref}")
    name = f"{pkg}._scoring_at_ref"
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__file__ = str(REPO / path.replace("scoring.py", "_scoring_at_ref.py"))
    mod.__package__ = pkg
    sys.modules[name] = mod
    exec(compile(got.stdout, f"{ref}:{path}", "exec"), mod.__dict__)
    if hasattr(mod, "topk"):
        return (lambda m, users, k, exclude: mod.topk(m, users, k, exclude, mode="kgcn")), mod.score_all

    def with_ref_chunks(model, call):
        model.score_chunks = lambda users, chunk=32, mode="kgcn", progress=False: mod.kgcn_score_chunks(model, users, chunk)
        try:
            return call()
        finally:
            del model.score_chunks

    return ((lambda m, users, k, exclude: with_ref_chunks(m, lambda: m.topk(users, k, exclude))),
            (lambda m, users: with_ref_chunks(m, lambda: m.score_all(users))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="book-crossing", help="dataset name (default: book-crossing)")
    ap.add_argument("--ref", default="main", help="git ref to compare with (default: main)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    ap.add_argument("--repeats", type=int, default=2, help="timed calls per implementation (default: 2)")
    ap.add_argument("--users", type=int, default=0, help="score only the first N test users (0: all)")
    ap.add_argument("--train-epochs", type=int, default=1, help="train this many epochs first (default: 1)")
    ap.add_argument("--check-users", type=int, default=64, help="users whose scores are compared (default: 64)")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from kgcl_lib import experiments as X
    from kgcl_lib.model import build_backbone
    from kgcl_lib.train import train

    torch.set_num_threads(args.threads)
    ref_topk, ref_score_all = load_ref_scoring(args.ref)
    ds = X.open_dataset(args.dataset)
    split = X.make_split(ds, 0)
    cfg = X.train_config(X.RunSpec(args.dataset, "base", "without", 0, overrides=(("epochs", max(args.train_epochs, 1)),)),
                         ds.name)
    model = train(ds, split, cfg, progress=False).model if args.train_epochs > 0 else build_backbone(cfg.backbone, ds, cfg)
    model.eval()
    users, _truth, exclude = X.test_users_and_truth(split, ds.n_users, ds.n_items)
    if args.users:
        users = users[: args.users]
    times = {"new": [], "ref": []}
    tops = {}
    for _ in range(args.repeats):
        for name, fn in (("ref", ref_topk), ("new", lambda m, u, k, ex: m.topk(u, k, ex, mode="kgcn"))):
            c0 = time.process_time()
            tops[name] = fn(model, users, 100, exclude).numpy()
            times[name].append(time.process_time() - c0)
    u = torch.as_tensor(users[: args.check_users])
    s_new, s_ref = model.score_all(u), ref_score_all(model, u)
    same_rows = float((tops["new"] == tops["ref"]).all(1).mean())
    out = {"dataset": args.dataset, "ref": args.ref, "threads": args.threads, "n_users": int(len(users)),
           "n_items": int(ds.n_items), "cfg": {"n_iter": cfg.n_iter, "dim": cfg.dim, "n_neighbors": cfg.n_neighbors},
           "cpu_s_ref": [round(t, 2) for t in times["ref"]], "cpu_s_new": [round(t, 2) for t in times["new"]],
           "speedup": round(min(times["ref"]) / min(times["new"]), 2),
           "identical_topk_rows": same_rows,
           "same_top100_sets": float(np.mean([len(set(a) & set(b)) == len(a) for a, b in zip(tops["new"], tops["ref"])])),
           "max_abs_score_diff": float((s_new - s_ref).abs().max())}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
