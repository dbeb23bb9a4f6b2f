"""CPU cost of the simple baselines on one dataset (issue 29): what notebook 04's baseline section
does -- tune (or reuse) pop / mf / lightgcn with the profile's budget, then train every seed with
the chosen settings -- timed per study and per run (CPU-seconds of this process and wall time).

Seeds run interleaved across backbones (seed 0 of each, then seed 1, ...), so a run cut short
leaves every backbone with the same seeds.  One-off inputs (the ℓ_align pairs) are built before
the timed runs.  The manifest ``baselines-<dataset>`` records the specs and the ledgers.

Usage::

    python bench/baselines_cost.py --dataset ml-100k --seeds 10 --trials 20 --results-dir runs/default --json
"""

from __future__ import annotations

import argparse
import json
import time

from kgcl_lib import experiments, tune

BACKBONES = ("pop", "mf", "lightgcn")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    ap.add_argument("--trials", type=int, default=20, help="TPE trials per tuned baseline (default 20)")
    ap.add_argument("--profile", default="default", help="params/tuned/<profile>/ (default: default)")
    ap.add_argument("--results-dir", default=None, help="results store (default: runs/<profile>)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results_dir, _ = experiments.resolve_dirs(args.profile, args.results_dir)
    ds = experiments.open_dataset(args.dataset)
    out: dict = {"dataset": ds.name, "studies": {}, "runs": []}
    studies = {}
    for b in BACKBONES:
        t0, c0 = time.perf_counter(), time.process_time()
        studies[b], reused = tune.ensure_tuned(ds, b, args.profile, args.trials, threads=1)
        out["studies"][b] = {"reused": reused, "trials": studies[b].n_trials,
                             "ledger_cpu_seconds": studies[b].record["cpu_seconds"],
                             "cpu_seconds": round(time.process_time() - c0, 2),
                             "wall_seconds": round(time.perf_counter() - t0, 2), "settings": studies[b].settings}
    specs = {b: [experiments.RunSpec(ds.name, "base", "without", s, overrides=tuple(st.settings.items()), backbone=b)
                 for s in range(args.seeds)] for b, st in studies.items()}
    experiments.save_manifest(results_dir, f"baselines-{ds.name}", [s for b in BACKBONES for s in specs[b]],
                              seeds=list(range(args.seeds)),
                              tuning=tune.ledger_frame(studies.values()).to_dict("records"))
    experiments.prepare_inputs(specs["pop"][:1], results_dir, experiments.RunInputs())  # untimed one-off inputs
    for i in range(args.seeds):
        for b in BACKBONES:
            t0, c0 = time.perf_counter(), time.process_time()
            experiments.run_grid([specs[b][i]], results_dir, ev=experiments.EvalConfig(), threads=1, executor="local")
            out["runs"].append({"backbone": b, "seed": i, "cpu_seconds": round(time.process_time() - c0, 2),
                                "wall_seconds": round(time.perf_counter() - t0, 2)})
            print(json.dumps(out["runs"][-1]), flush=True)
    per = {b: round(sum(r["cpu_seconds"] for r in out["runs"] if r["backbone"] == b), 1) for b in BACKBONES}
    out["runs_cpu_seconds"] = per
    print(json.dumps(out, indent=1) if args.json else f"{ds.name}: studies {out['studies']}; runs CPU-s {per}")
    return out


if __name__ == "__main__":
    main()
