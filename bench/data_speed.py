"""Speed of the raw MovieLens-20M reader + KGCN conversion on an ML-20M-shaped synthetic file set.

Generates (untimed) ``ratings.csv`` (20,000,263 ratings by 138,493 users on 26,744 movies by
default), ``movies.csv``, ``links.csv`` and KGCN's ``item_index2entity_id.txt`` / ``kg.txt``
(16,954 linked movies, 102,569 entities, 32 relations, 499,474 triples) in a temporary folder,
then times :func:`kgcl_lib.data.read_ml20m_raw` in a fresh child process so that its peak RSS
(``VmHWM``, imports included) is the reader's own.  The child also times writing and re-reading the processed
cache entry.  Prints one JSON object.

Usage (from the repo root)::

    .venv/bin/python bench/data_speed.py                 # full size (needs ~1 GB of free temp space)
    .venv/bin/python bench/data_speed.py --ratings 2000000
    .venv/bin/python bench/data_speed.py --keep DIR      # generate into / reuse DIR

Targets (issue 2): read + convert the full file in under 2 minutes and 4 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FULL = {"ratings": 20_000_263, "users": 138_493, "movies": 26_744}


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux ``VmHWM`` (reset by ``execve``) when available: ``ru_maxrss`` survives ``execve``, so
    a child started by a big parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(folder: Path, seed: int) -> dict:
    """Runs in the child process: time the reader, then the cache round trip."""
    import numpy as np  # noqa: F401  (import cost is not part of the timing)

    from kgcl_lib.data.cache import load_saved, save_dataset
    from kgcl_lib.data.readers import read_ml20m_raw

    base_rss = peak_rss_mb()
    t0 = time.perf_counter()
    ds = read_ml20m_raw(folder, seed=seed)
    read_s = time.perf_counter() - t0
    peak_rss = peak_rss_mb()
    tmp = Path(tempfile.mkdtemp(prefix="kgcl-bench-cache-"))
    try:
        t0 = time.perf_counter()
        save_dataset(ds, tmp / "entry")
        save_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = load_saved(tmp / "entry")
        load_s = time.perf_counter() - t0
        assert back.stats() == ds.stats()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "read_convert_s": round(read_s, 2),
        "peak_rss_mb": round(peak_rss, 1),
        "baseline_rss_mb": round(base_rss, 1),
        "cache_save_s": round(save_s, 2),
        "cache_load_s": round(load_s, 2),
        "stats": ds.stats(),
        "conversion": {k: ds.provenance[k] for k in ("positives", "negatives", "negatives_short", "dropped_unlinked")},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ratings", type=int, default=FULL["ratings"], help="ratings to generate (default: ML-20M's 20,000,263)")
    p.add_argument("--users", type=int, help="users (default: 138,493 scaled with --ratings)")
    p.add_argument("--movies", type=int, default=FULL["movies"], help="movies (default 26,744)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", help="generate into this folder and keep it (reused when it already has ratings.csv)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child), args.seed)))
        return 0

    from kgcl_lib.data.synthetic import make_ml20m_raw

    users = args.users or max(1_000, round(FULL["users"] * args.ratings / FULL["ratings"]))
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kgcl-bench-ml20m-"))
    try:
        gen_s = None
        if not (folder / "ratings.csv").is_file():
            t0 = time.perf_counter()
            make_ml20m_raw(folder, args.seed, n_ratings=args.ratings, n_users=users, n_movies=args.movies)
            gen_s = round(time.perf_counter() - t0, 2)
        size_mb = round((folder / "ratings.csv").stat().st_size / 2**20, 1)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(folder), "--seed", str(args.seed)],
            capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    out = {
        "benchmark": "ml20m_raw_read_convert",
        "ratings": args.ratings,
        "users": users,
        "movies": args.movies,
        "ratings_csv_mb": size_mb,
        "generate_s": gen_s,
        **result,
        "targets": {"read_convert_s": 120, "peak_rss_mb": 4096},
        "cpus": os.cpu_count(),
    }
    out["within_targets"] = out["read_convert_s"] < 120 and out["peak_rss_mb"] < 4096
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
