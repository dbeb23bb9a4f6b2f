"""``python -m kgcl_lib.data {stats,synth,fetch}``.

* ``stats --dataset NAME [--data-dir DIR] [--json]``: the paper's Table 1 rows of a dataset
  (``--json``: one JSON object with keys ``users, contents, uc_rows, entities, relations,
  kg_triples``).
* ``synth --shape PRESET --format {kgcn,recbole,ml20m-raw} --out DIR [--seed N]``: write a
  synthetic dataset in a reader's format.
* ``fetch --dataset NAME ...``: download a dataset and its text (ML-100K: the RecBole wheel +
  synopses; see :func:`kgcl_lib.data.acquire.fetch_cli`).

Exit status: 0 ok, 1 data error (one line on stderr; ``--debug`` adds the traceback),
2 bad arguments (one line naming the option).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..cli import CliParser, run_main
from .acquire import fetch_cli
from .registry import load_dataset
from .synthetic import SHAPES, make_synthetic, write_kgcn, write_ml20m_raw, write_recbole

TABLE1_ROWS = (
    ("users", "# users"),
    ("contents", "# contents"),
    ("uc_rows", "u-c rows"),
    ("entities", "# entities"),
    ("relations", "# relations"),
    ("kg_triples", "# KG triples"),
)


def _stats(argv: list[str]) -> int:
    p = CliParser(prog="python -m kgcl_lib.data stats", description="Table 1 statistics of a dataset.")
    p.add_argument("--dataset", required=True, help="ml-100k, book-crossing, ml-20m, synthetic:<preset>, or a folder name under --data-dir")
    p.add_argument("--data-dir", help="folder holding NAME/ (default: $KGCL_DATA_DIR, then the cache)")
    p.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")
    p.add_argument("--threshold", type=float, default=4, help="rating (stars) at or above which a raw rating is a positive (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="negative-sampling seed (default: 0)")
    p.add_argument("--force", action="store_true", help="rebuild the processed cache (default: off)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the processed cache, e.g. when it is read-only (default: off)")
    p.add_argument("--no-acquire", action="store_true", help="never download (default: off)")
    args = p.parse_args(argv)
    ds = load_dataset(args.dataset, args.data_dir, threshold=args.threshold, seed=args.seed, force=args.force,
                      cache=not args.no_cache, acquire=not args.no_acquire)
    st = ds.stats()
    no_pos = ds.users_without_positive()
    if no_pos:
        print(f"warning: {no_pos:,} users without a positive (label-1) row in {ds.name}", file=sys.stderr)
    if args.json:
        print(json.dumps(st))
        return 0
    print(f"{'dataset':<14}{ds.name:>14}")
    for key, label in TABLE1_ROWS:
        print(f"{label:<14}{st[key]:>14,}")
    cov = ds.metadata_coverage()
    print("metadata      " + ", ".join(f"{k} {v:,}" for k, v in cov.items() if k != "items") + f" of {cov['items']:,} items")
    if "source" in ds.provenance:
        print(f"source        {ds.provenance['source']}")
    return 0


def _synth(argv: list[str]) -> int:
    import numpy as np

    p = CliParser(prog="python -m kgcl_lib.data synth", description="Write a synthetic dataset.")
    p.add_argument("--shape", default="tiny", choices=sorted(SHAPES), help=f"preset shape, one of {', '.join(sorted(SHAPES))} (default: tiny)")
    p.add_argument("--format", default="kgcn", choices=("kgcn", "recbole", "ml20m-raw"), help="output file format (default: kgcn)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    ds = make_synthetic(SHAPES[args.shape], rng)
    writer = {"kgcn": write_kgcn, "recbole": write_recbole, "ml20m-raw": write_ml20m_raw}[args.format]
    out = writer(ds, Path(args.out)) if args.format == "kgcn" else writer(ds, Path(args.out), rng=rng)
    print(json.dumps({"out": str(out), "format": args.format, **ds.stats()}))
    return 0


def _fetch(argv: list[str]) -> int:
    try:
        return int(fetch_cli(argv) or 0)
    except NotImplementedError as e:
        print(f"error: fetch is not implemented for this dataset ({e})", file=sys.stderr)
        return 1


COMMANDS = {"stats": _stats, "synth": _synth, "fetch": _fetch}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return run_main(COMMANDS[argv[0]], argv[1:], prog=f"python -m kgcl_lib.data {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())
