"""Compare two results stores run for run: every ``metrics.json`` value and the stored arrays.

    python scripts/compare_results.py BEFORE_DIR AFTER_DIR [--atol 1e-12]

``BEFORE_DIR``/``AFTER_DIR`` are results folders (``<runs>/<profile>``, holding ``runs/<run_id>/``).
Prints one line per run (largest absolute metric difference, whether ``topk.npy`` /
``test_users.npy`` are equal and the largest ``content_emb.npy`` difference) and exits 1 when a
run is missing on one side (``--allow-new``: only a run missing in BEFORE is allowed), a metric key differs, or a difference exceeds ``--atol``.  Used to
show that a refactor leaves the numbers unchanged (same seeds -> same AUC to 1e-12).

Run each checkout's profile with ``PYTHONPATH=<that checkout>``: the notebooks' kernels start in
``notebooks/``, where ``import kgcl_lib`` would otherwise find the environment's editable
install (the main checkout), not the checkout under test.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def _max_diff(a: dict, b: dict) -> tuple[float, list[str]]:
    """Largest |a[k] − b[k]| over numeric keys (NaN == NaN) and the keys that differ otherwise."""
    worst, bad = 0.0, sorted(set(a) ^ set(b))
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            if math.isnan(x) and math.isnan(y):
                continue
            worst = max(worst, abs(x - y)) if not (math.isnan(x) or math.isnan(y)) else math.inf
        elif x != y:
            bad.append(k)
    return worst, bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/compare_results.py", description=__doc__.split("\n\n")[0])
    p.add_argument("before", type=Path, help="results folder of the reference run (holds runs/<run_id>/)")
    p.add_argument("after", type=Path, help="results folder to compare with it")
    p.add_argument("--atol", type=float, default=1e-12, help="largest allowed absolute difference (default: 1e-12)")
    p.add_argument("--allow-new", action="store_true",
                   help="runs finished only in AFTER (e.g. a backbone added since BEFORE) are listed, not a failure")
    args = p.parse_args(argv)
    runs = {}
    for side in (args.before, args.after):
        if not (side / "runs").is_dir():
            print(f"compare_results: {side / 'runs'} is not a folder", file=sys.stderr)
            return 2
        runs[side] = {d.name for d in (side / "runs").iterdir() if (d / "metrics.json").is_file()}
    ok = True
    for name in sorted(runs[args.before] - runs[args.after]):
        print(f"{name}: finished in BEFORE only")
        ok = False
    for name in sorted(runs[args.after] - runs[args.before]):
        print(f"{name}: finished in AFTER only" + (" (new)" if args.allow_new else ""))
        ok &= args.allow_new
    for name in sorted(runs[args.before] & runs[args.after]):
        a, b = (json.loads((side / "runs" / name / "metrics.json").read_text()) for side in (args.before, args.after))
        worst, bad = _max_diff(a, b)
        arrays = {}
        for key in ("topk", "test_users", "content_emb"):
            fa, fb = (side / "runs" / name / f"{key}.npy" for side in (args.before, args.after))
            if fa.is_file() and fb.is_file():
                xa, xb = np.load(fa), np.load(fb)
                arrays[key] = float(np.abs(xa - xb).max()) if xa.shape == xb.shape and xa.size else (0.0 if xa.shape == xb.shape else math.inf)
        run_ok = not bad and worst <= args.atol and all(v <= args.atol for v in arrays.values())
        ok &= run_ok
        print(f"{name}: {len(a)} metrics, max |diff| {worst:.3g}; arrays max |diff| "
              + ", ".join(f"{k} {v:.3g}" for k, v in arrays.items())
              + ("" if not bad else f"; keys differ: {bad}") + ("" if run_ok else "  <-- DIFFERS"))
    print(f"{len(runs[args.before] & runs[args.after])} runs compared: {'identical within' if ok else 'NOT identical within'} {args.atol:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
