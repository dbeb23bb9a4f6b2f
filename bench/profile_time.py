"""Where a profile's time goes: notebook wall times and the stored runs' train/eval seconds.

Usage (from the repo root, after ``./run_all.sh [--profile P]``)::

    python bench/profile_time.py runs/default            # a Markdown table on stdout
    python bench/profile_time.py runs/default --json     # the same as JSON

Reads ``timings.json`` (the runner's wall time per notebook) and every finished run's
``config.json`` (``train_seconds`` and ``eval_seconds``: wall seconds inside the worker that ran
it, one torch thread each with ``executor: processes``) and sums them per backbone, dataset and
text arm.  With ``W`` workers running at once, a group's share of notebook wall time is about its
summed seconds / ``W``.  Tuning trials (simple baselines) are not runs: their CPU-seconds are in the
tuning ledgers (``params/tuned/<profile>/*.json``, docs/baselines.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def run_seconds(results_dir: Path) -> dict[tuple[str, str, str], dict[str, float]]:
    """``{(backbone, dataset, text): {"runs", "train_s", "eval_s"}}`` over the finished runs
    (a ``complete.json`` beside the ``config.json``) of ``results_dir/runs``; ``text`` gets `` γ``
    appended for notebook 09's γ-sweep runs (their spec sets ``gamma``)."""
    groups: dict[tuple[str, str, str], dict[str, float]] = defaultdict(lambda: {"runs": 0, "train_s": 0.0, "eval_s": 0.0})
    for cfg_path in sorted((results_dir / "runs").glob("*/config.json")):
        if not (cfg_path.parent / "complete.json").exists():
            continue
        cfg = json.loads(cfg_path.read_text())
        spec = cfg.get("spec", {})
        text = spec.get("text", "?") + (" γ" if spec.get("gamma") is not None else "")
        key = (spec.get("backbone") or "kgcn", spec.get("dataset", "?"), text)
        g = groups[key]
        g["runs"] += 1
        g["train_s"] += float(cfg.get("train_seconds") or 0.0)
        g["eval_s"] += float(cfg.get("eval_seconds") or 0.0)
    return dict(groups)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results_dir", type=Path, help="a profile's results folder, e.g. runs/default")
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = ap.parse_args(argv)
    if not (args.results_dir / "runs").is_dir():
        print(f"error: {args.results_dir}/runs is not a folder (run ./run_all.sh first)", file=sys.stderr)
        return 2
    timings_path = args.results_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    groups = run_seconds(args.results_dir)
    if args.json:
        print(json.dumps({"notebooks": timings.get("notebooks", {}), "total_s": timings.get("total_s"),
                          "runs": [dict(backbone=b, dataset=d, text=t, **v) for (b, d, t), v in sorted(groups.items())]},
                         indent=2))
        return 0
    print("| notebook | wall s |\n|---|---:|")
    for name, s in timings.get("notebooks", {}).items():
        print(f"| {name} | {s:,.1f} |")
    if timings.get("total_s") is not None:
        print(f"| **all** | **{timings['total_s']:,.1f}** |")
    print("\n| backbone | dataset | text | runs | train s | eval s | s per run |\n|---|---|---|---:|---:|---:|---:|")
    tot = {"runs": 0, "train_s": 0.0, "eval_s": 0.0}
    for (b, d, t), v in sorted(groups.items()):
        per = (v["train_s"] + v["eval_s"]) / max(v["runs"], 1)
        print(f"| {b} | {d} | {t} | {v['runs']} | {v['train_s']:,.0f} | {v['eval_s']:,.0f} | {per:,.1f} |")
        for k in tot:
            tot[k] += v[k]
    print(f"| **all** | | | **{tot['runs']}** | **{tot['train_s']:,.0f}** | **{tot['eval_s']:,.0f}** | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
