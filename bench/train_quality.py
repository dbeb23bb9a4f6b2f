"""CTR quality runs (AUC / F1, mean ± sd over seeds) through the trainer CLI.

Usage (from the repo root; prints one JSON object, one line per run on stderr)::

    python bench/train_quality.py book-crossing --seeds 0 1 2 3 4
    python bench/train_quality.py ml-100k --variants base cl_genre cl_title_genre --texts none synopsis

Every run is ``python -m kgcl_lib.train --dataset D --seed S --variant V --text T
--json`` (the paper's Table 1 settings, see ``kgcl_lib.train.paper_settings``); extra
``--set key=value`` pairs override them (e.g. ``--set aggregator=sum --set n_neighbors=8``).
Results are appended to ``--out`` (JSON lines, default ``runs/train_quality.jsonl``) so an
interrupted sweep can be resumed with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_one(dataset, seed, variant, text, data_dir, sets, threads):
    cmd = [sys.executable, "-m", "kgcl_lib.train", "--dataset", dataset, "--seed", str(seed), "--variant", variant,
           "--text", text, "--threads", str(threads), "--json", "--no-progress"]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    for kv in sets:
        k, v = kv.split("=", 1)
        cmd += ["--" + k.replace("_", "-"), v]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        return {"error": p.stderr[-3000:], "cmd": " ".join(cmd)}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", nargs="+", default=["base"])
    ap.add_argument("--texts", nargs="+", default=["none"])
    ap.add_argument("--data-dir", default=os.environ.get("KGCL_DATA_DIR"))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override: key=value (TrainConfig field)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/train_quality.jsonl")
    ap.add_argument("--resume", action="store_true", help="skip (variant, text, seed, sets) already in --out")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if args.resume and out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done[(r["dataset"], r["variant"], r["text"], r["seed"], tuple(r.get("sets", [])))] = r
    rows = []
    for text in args.texts:
        for variant in args.variants:
            for seed in args.seeds:
                key = (args.dataset, variant, text, seed, tuple(args.sets))
                if key in done:
                    rows.append(done[key])
                    continue
                r = run_one(args.dataset, seed, variant, text, args.data_dir, args.sets, args.threads)
                if "error" in r:
                    print(json.dumps({"variant": variant, "text": text, "seed": seed, **r}), file=sys.stderr)
                    continue
                r = {**r, "dataset": args.dataset, "variant": variant, "text": text, "seed": seed, "sets": list(args.sets)}
                r.pop("config", None)
                with out.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                print(json.dumps({k: r.get(k) for k in ("variant", "text", "seed", "test_auc", "test_f1", "valid_auc", "best_epoch", "seconds")}),
                      file=sys.stderr, flush=True)
                rows.append(r)
    summary = {}
    for text in args.texts:
        for variant in args.variants:
            rs = [r for r in rows if r["variant"] == variant and r["text"] == text]
            if not rs:
                continue
            cell = {"n": len(rs), "pairs_source": rs[0].get("pairs_source"), "text_model": rs[0].get("text_model")}
            for m in ("test_auc", "test_f1", "valid_auc"):
                vals = [r[m] for r in rs]
                cell[m] = {"mean": round(statistics.fmean(vals), 4), "sd": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0}
            summary[f"{variant}/{text}"] = cell
    print(json.dumps({"dataset": args.dataset, "sets": args.sets, "seeds": args.seeds, "summary": summary}))


if __name__ == "__main__":
    main()
