"""Wall time of a grid with the local executor vs a pool of N worker processes and/or Ray with
N workers, on one machine.

Runs the same specs twice into fresh results folders (text/pairs caches prepared once, untimed,
and copied into both), checks that both stores hold the same numbers (test AUC to 1e-12, equal
top-K lists), and reports per executor: wall time, the summed in-task time (train + evaluation,
from each run's ``config.json``), and the overhead per run:

* local: ``(wall − Σ in-task) / runs`` (dataset opening, store writes);
* processes / Ray: ``(wall × workers − Σ in-task) / runs`` — what each run costs beyond its
  own work when ``workers`` run at once (scheduling, worker start-up and imports, argument
  transfer), Ray start-up excluded (reported separately).

Usage::

    python bench/executor_speed.py --dataset ml-100k --seeds 0 1 --workers 2 --executors local processes --json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kgcl_lib import experiments as X  # noqa: E402
from kgcl_lib.experiments.executors import ProcessExecutor  # noqa: E402


def _in_task_seconds(store, specs) -> float:
    total = 0.0
    for s in specs:
        cfg = json.loads((X.run_dir(store, s) / "config.json").read_text())
        total += cfg["train_seconds"] + cfg["eval_seconds"]
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-100k", help="dataset name (default: ml-100k)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the grid (default: 0)")
    ap.add_argument("--workers", type=int, default=2,
                    help="worker processes / Ray CPUs = concurrent 1-thread runs (default: 2)")
    ap.add_argument("--executors", nargs="+", default=["local", "processes"], choices=["local", "processes", "ray"],
                    help="executors to time, in this order; the first is the reference (default: local processes)")
    ap.add_argument("--variants", nargs="+", default=None, help="variants of the grid (default: all of the paper's)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)

    specs = X.grid_specs([args.dataset], *( [args.variants] if args.variants else []), seeds=args.seeds)
    inputs = X.RunInputs(threads=1)
    root = Path(tempfile.mkdtemp(prefix="kgcl-executor-bench-"))
    try:
        t0 = time.perf_counter()
        X.prepare_inputs(specs, root / "prep", inputs)
        prep = time.perf_counter() - t0
        stores, out = {}, {"dataset": args.dataset, "runs": len(specs), "workers": args.workers,
                           "prepare_inputs_s": round(prep, 1)}
        n = len(specs)
        for name in args.executors:
            stores[name] = root / name
            for sub in ("text", "pairs"):
                shutil.copytree(root / "prep" / sub, stores[name] / sub)
            X.forget_opened()  # every executor opens the dataset itself, inside the timing
            row = {}
            if name == "ray":
                from kgcl_lib.experiments.executors import RayExecutor, init_ray

                t0 = time.perf_counter()
                init_ray(None, num_cpus=args.workers, include_dashboard=False)
                row["init_s"] = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            if name == "local":
                X.run_grid(specs, stores[name], threads=1, progress=False)
            elif name == "processes":
                ProcessExecutor(workers=args.workers).run(specs, stores[name], inputs, progress=False, out=sys.stderr)
            else:
                RayExecutor().run(specs, stores[name], inputs, progress=False)
            wall = time.perf_counter() - t0
            task = _in_task_seconds(stores[name], specs)
            par = 1 if name == "local" else args.workers
            row.update(wall_s=round(wall, 1), in_task_s=round(task, 1),
                       overhead_per_run_s=round((wall * par - task) / n, 2))
            out[name] = row
        ref = args.executors[0]
        for name in args.executors[1:]:
            for s in specs:
                a, b = X.load_run(stores[ref], s.run_id), X.load_run(stores[name], s.run_id)
                assert abs(a["metrics"]["test_auc"] - b["metrics"]["test_auc"]) <= 1e-12, (name, s.run_id)
                assert np.array_equal(a["topk"], b["topk"]), (name, s.run_id)
            out[name]["speedup_vs_" + ref] = round(out[ref]["wall_s"] / out[name]["wall_s"], 2)
        out["identical"] = True
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=2) if args.json else out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
