"""``python -m kgcl_lib.runner``: execute the notebook collection (:mod:`.notebooks`; ``./run_all.sh``)."""

from __future__ import annotations

import sys

from ..cli import CliParser, run_main
from . import notebooks


def main(argv: list[str] | None = None) -> int:
    """``python -m kgcl_lib.runner``; returns the exit status."""
    return run_main(_main, argv, prog="python -m kgcl_lib.runner")


def _main(argv) -> int:
    ap = CliParser(prog="python -m kgcl_lib.runner", description=notebooks.__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default", help="params/<profile>.yaml (default: default)")
    ap.add_argument("--only", default=None, help="comma-separated notebook prefixes, e.g. 03,04 (default: all notebooks)")
    ap.add_argument("--force", action="store_true", help="recompute the selected notebooks' cached results (default: off)")
    ap.add_argument("--runs-dir", default=None, help="base folder for results (default: $KGCL_RUNS_DIR or runs/)")
    ap.add_argument("--figures-dir", default=None, help="tables/figures folder (default: figures/<profile>/)")
    ap.add_argument("--cell-timeout", type=float, default=None,
                    help="seconds any one cell may run (default: $KGCL_CELL_TIMEOUT or 7200)")
    ap.add_argument("--retries", type=int, default=1,
                    help="re-executions of a notebook after a cell timeout or a dead kernel (default: 1)")
    ap.add_argument("--executor", choices=("local", "processes", "ray"), default=None,
                    help="where training runs execute: local (the notebook's process, one after another), "
                         "processes (a pool of CPUs // num_cpus worker processes; the default profile's) or "
                         "ray (one Ray task per run, LLM generation in shards; needs pip install '.[ray]'); "
                         "default: the profile's 'executor'")
    ap.add_argument("--ray-address", default=None,
                    help="Ray cluster to join: 'auto' or HOST:PORT (default: start a local Ray instance); "
                         "overrides the profile's 'ray_address'")
    args = ap.parse_args(argv)
    if args.ray_address is not None and args.executor is None:
        args.executor = "ray"
    try:
        return notebooks.run(args.profile, only=args.only, force=args.force, runs_dir=args.runs_dir,
                   figures_dir=args.figures_dir, cell_timeout=args.cell_timeout, retries=args.retries,
                   executor=args.executor, ray_address=args.ray_address)
    except ValueError as exc:
        if "--debug" in (argv or []):
            raise
        print(f"python -m kgcl_lib.runner: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
