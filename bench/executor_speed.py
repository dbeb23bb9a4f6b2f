"""Wall time of a grid with the local executor vs Ray with N workers, on one machine.

Runs the same specs twice into fresh results folders (text/pairs caches prepared once, untimed,
and copied into both), checks that both stores hold the same numbers (test AUC to 1e-12, equal
top-K lists), and reports per executor: wall time, the summed in-task time (train + evaluation,
from each run's ``config.json``), and the overhead per run:

* local: ``(wall − Σ in-task) / runs`` (dataset opening, store writes);
* Ray:   ``(wall × workers − Σ in-task) / runs`` — what each task costs beyond its own work
  when ``workers`` tasks run at once (scheduling, worker start-up and imports, argument
  transfer), Ray start-up excluded (reported separately).

Usage::

    python bench/executor_speed.py --dataset ml-100k --seeds 0 1 --workers 2 --json
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
from kgcl_lib.executors import RayExecutor, init_ray  # noqa: E402


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
    ap.add_argument("--workers", type=int, default=2, help="Ray CPUs = concurrent 1-CPU tasks (default: 2)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)

    specs = X.grid_specs([args.dataset], seeds=args.seeds)
    inputs = X.RunInputs(threads=1)
    root = Path(tempfile.mkdtemp(prefix="kgcl-executor-bench-"))
    try:
        t0 = time.perf_counter()
        X.prepare_inputs(specs, root / "prep", inputs)
        prep = time.perf_counter() - t0
        stores = {}
        for name in ("local", "ray"):
            stores[name] = root / name
            for sub in ("text", "pairs"):
                shutil.copytree(root / "prep" / sub, stores[name] / sub)
        X._OPENED.clear()  # the local executor opens the dataset itself, inside the timing
        t0 = time.perf_counter()
        X.run_grid(specs, stores["local"], threads=1, progress=False)
        local_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        init_ray(None, num_cpus=args.workers, include_dashboard=False)
        ray_init = time.perf_counter() - t0
        t0 = time.perf_counter()
        RayExecutor().run(specs, stores["ray"], inputs, progress=False)
        ray_wall = time.perf_counter() - t0
        for s in specs:
            a, b = X.load_run(stores["local"], s.run_id), X.load_run(stores["ray"], s.run_id)
            assert abs(a["metrics"]["test_auc"] - b["metrics"]["test_auc"]) <= 1e-12, s.run_id
            assert np.array_equal(a["topk"], b["topk"]), s.run_id
        n = len(specs)
        local_task, ray_task = _in_task_seconds(stores["local"], specs), _in_task_seconds(stores["ray"], specs)
        out = {"dataset": args.dataset, "runs": n, "workers": args.workers, "prepare_inputs_s": round(prep, 1),
               "local": {"wall_s": round(local_wall, 1), "in_task_s": round(local_task, 1),
                         "overhead_per_run_s": round((local_wall - local_task) / n, 2)},
               "ray": {"init_s": round(ray_init, 1), "wall_s": round(ray_wall, 1), "in_task_s": round(ray_task, 1),
                       "overhead_per_run_s": round((ray_wall * args.workers - ray_task) / n, 2)},
               "speedup": round(local_wall / ray_wall, 2), "identical": True}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=2) if args.json else out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
