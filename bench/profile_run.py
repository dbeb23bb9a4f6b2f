"""Where one grid run's time goes: cProfile of ``experiments.run_grid`` split into phases.

Usage (from the repo root; prints one JSON object per run)::

    KGCL_DATA_DIR=../shared/data python bench/profile_run.py --dataset ml-100k --threads 1
    KGCL_DATA_DIR=../shared/data python bench/profile_run.py --dataset book-crossing --threads 1

The text embeddings and content pairs are built first (as notebooks 02/03 do, timed separately
as ``prepare_text_s`` / ``prepare_pairs_s``) into ``--results-dir``; then each ``--variant`` /
``--text`` run is executed by :func:`kgcl_lib.experiments.run_grid` under cProfile and its
cumulative times are attributed to phases:

* ``load``: ``open_dataset`` + cached text/pairs reads (``text_embeddings``, ``content_pairs``)
  + ``make_split``;
* ``train_epochs``: ``train.train`` minus its validation/test ``ctr_metrics`` calls;
* ``validation``: ``train.ctr_metrics`` (per-epoch valid AUC/F1 and the final test AUC/F1);
* ``topk`` / ``ranking`` / ``cold_start`` / ``diversity`` / ``embedding``: the pieces of
  ``experiments.evaluate``;
* ``write``: ``config.json``, the ``.npy`` arrays and ``metrics.json``;
* ``other``: the rest of ``run_grid`` (bookkeeping, ``load_results``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: phase -> (module file suffix, function name) whose cumulative time it is.
PHASES = {
    "open_dataset": ("kgcl_lib/experiments/inputs.py", "open_dataset"),
    "text_load": ("kgcl_lib/experiments/inputs.py", "text_embeddings"),
    "pairs_load": ("kgcl_lib/experiments/inputs.py", "content_pairs"),
    "split": ("kgcl_lib/experiments/inputs.py", "make_split"),
    "train": ("kgcl_lib/train/loop.py", "train"),
    "validation": ("kgcl_lib/train/loop.py", "ctr_metrics"),
    "evaluate": ("kgcl_lib/experiments/evaluation.py", "evaluate"),
    "topk": ("kgcl_lib/model/backbone.py", "topk"),
    "ranking": ("kgcl_lib/metrics/ranking.py", "ranking_metrics"),
    "cold_start": ("kgcl_lib/metrics/ranking.py", "cold_start_ndcg"),
    "inter": ("kgcl_lib/metrics/diversity.py", "inter_list_diversity"),
    "intra": ("kgcl_lib/metrics/diversity.py", "intra_list_diversity"),
    "uniformity": ("kgcl_lib/metrics/diversity.py", "uniformity"),
    "write_json": ("kgcl_lib/storage.py", "write_json"),
    "save_npy": ("kgcl_lib/storage.py", "save_npy"),
    "load_results": ("kgcl_lib/experiments/store.py", "load_results"),
    "run_grid": ("kgcl_lib/experiments/grid.py", "run_grid"),
}


def cumulative(stats: pstats.Stats) -> dict[str, float]:
    out = {k: 0.0 for k in PHASES}
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        for phase, (suffix, name) in PHASES.items():
            if func == name and file.replace("\\", "/").endswith(suffix):
                out[phase] += ct
    return out


def phases(c: dict[str, float]) -> dict[str, float]:
    ev_parts = ("topk", "ranking", "cold_start", "inter", "intra", "uniformity")
    p = {
        "load": c["open_dataset"] + c["text_load"] + c["pairs_load"] + c["split"],
        "train_epochs": c["train"] - c["validation"],
        "validation": c["validation"],
        **{k: c[k] for k in ev_parts},
        "evaluate_rest": c["evaluate"] - sum(c[k] for k in ev_parts),
        "write": c["write_json"] + c["save_npy"],
    }
    p["other"] = c["run_grid"] - sum(p.values())
    p["total"] = c["run_grid"]
    return {k: round(v, 3) for k, v in p.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ml-100k", help="dataset name (default: ml-100k)")
    ap.add_argument("--variant", nargs="+", default=["cl_title_genre"], help="variants to profile")
    ap.add_argument("--text", nargs="+", default=["with"], help="text kinds to profile (without/with)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the profiled runs (default: 0)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    ap.add_argument("--results-dir", default=None,
                    help="results folder (default: a temporary one; reuse one to skip building text/pairs)")
    ap.add_argument("--timer", choices=("cpu", "wall"), default="cpu",
                    help="cpu: process CPU time (robust to other jobs on the cores; right at 1 thread), wall")
    ap.add_argument("--top", type=int, default=0, help="also print the N functions with the most own time")
    args = ap.parse_args(argv)

    import torch

    from kgcl_lib import experiments as X

    torch.set_num_threads(args.threads)
    tmp = None
    if args.results_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="kgcl-profile-")
        results_dir = Path(tmp.name)
    else:
        results_dir = Path(args.results_dir)
    ds = X.open_dataset(args.dataset)
    t0 = time.perf_counter()
    if "with" in args.text:
        X.text_embeddings(results_dir, ds, "with")
    t1 = time.perf_counter()
    for template in ("genre", "title_genre"):
        X.content_pairs(results_dir, ds, template, 10)
    t2 = time.perf_counter()
    out = {"dataset": args.dataset, "threads": args.threads, "prepare_text_s": round(t1 - t0, 2),
           "prepare_pairs_s": round(t2 - t1, 2), "runs": []}
    for text in args.text:
        for variant in args.variant:
            spec = X.RunSpec(args.dataset, variant, text, args.seed)
            prof = cProfile.Profile(time.process_time) if args.timer == "cpu" else cProfile.Profile()
            w0, c0 = time.perf_counter(), time.process_time()
            prof.enable()
            X.run_grid([spec], results_dir, threads=args.threads, progress=False, force=True)
            prof.disable()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            stats = pstats.Stats(prof)
            cfg = json.loads((X.run_dir(results_dir, spec) / "config.json").read_text())
            met = json.loads((X.run_dir(results_dir, spec) / "metrics.json").read_text())
            out["runs"].append({"run": spec.run_id, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                "timer": args.timer, "phases_s": phases(cumulative(stats)),
                                "epochs": cfg["train_config"]["epochs"], "test_auc": met["test_auc"],
                                "ndcg@20": met["ndcg@20"]})
            if args.top:
                stats.sort_stats("tottime").print_stats(args.top)
    print(json.dumps(out, indent=1))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
