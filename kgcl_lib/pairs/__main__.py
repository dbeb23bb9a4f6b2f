"""``python -m kgcl_lib.pairs``: build (or load from cache) one dataset's content pairs.

Example::

    python -m kgcl_lib.pairs --dataset ml-100k --template genre --n 10 --candidates 100 --json

prints ``items_with_metadata, pairs, positives, negatives, bi_encoder, cross_encoder, seconds``
(plus the paper's Table 1 c-c count for the same domain/template and the output path).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from ..cli import CliParser, run_main
from ..data import DatasetError, load_dataset
from ..text.models import PAPER_BI_ENCODER, PAPER_CROSS_ENCODER
from .build import SAMPLERS, build_pairs
from .templates import TEMPLATES


def parse_args(argv=None) -> argparse.Namespace:
    p = CliParser(prog="python -m kgcl_lib.pairs", description="Content-content pairs for the contrastive loss (paper Section 3.1).")
    p.add_argument("--dataset", required=True, help="dataset name for kgcl_lib.data.load_dataset (e.g. ml-100k, book-crossing)")
    p.add_argument("--data-dir", default=None, help="folder holding the raw dataset (default: $KGCL_DATA_DIR / cache / download)")
    p.add_argument("--template", choices=TEMPLATES, default="genre", help="metadata template (default: genre)")
    p.add_argument("--sampler", choices=SAMPLERS, default="text", help="text (paper), kg (KG-attribute Jaccard, for items without genres) or text+kg (default: text)")
    p.add_argument("--n", type=int, default=10, help="positives and negatives per anchor (default: 10)")
    p.add_argument("--candidates", type=int, default=100, help="M: bi-encoder candidates reranked per anchor (default: 100)")
    p.add_argument("--negative-candidates", type=int, default=None, help="bottom bi-encoder items reranked for negatives (default: n)")
    p.add_argument("--exhaustive", action="store_true", help="cross-encode every pair (the paper's procedure; quadratic) (default: off)")
    p.add_argument("--bi-encoder", default=PAPER_BI_ENCODER, help=f"bi-encoder hub id or folder (default: {PAPER_BI_ENCODER})")
    p.add_argument("--cross-encoder", default=PAPER_CROSS_ENCODER, help=f"cross-encoder hub id or folder, or 'none' (default: {PAPER_CROSS_ENCODER})")
    p.add_argument("--domain", choices=("movie", "book"), default=None, help="template nouns (default: from the dataset name)")
    p.add_argument("--seed", type=int, default=0, help="seed for tie-breaking and KG negatives (default: 0)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per encoder forward pass (default: 64)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the pair cache (default: off)")
    p.add_argument("--no-fallback", action="store_true", help="fail instead of using the packaged offline bi-encoder (default: off)")
    p.add_argument("--json", action="store_true", help="print one JSON object (default: a summary)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return run_main(_main, argv, prog="python -m kgcl_lib.pairs")


def _main(argv) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()

    try:
        ds = load_dataset(args.dataset, data_dir=args.data_dir)
        pairs = build_pairs(ds, args.template, n=args.n, candidates=args.candidates, exhaustive=args.exhaustive,
                            negative_candidates=args.negative_candidates, bi_encoder=args.bi_encoder,
                            cross_encoder=None if args.cross_encoder.lower() == "none" else args.cross_encoder, domain=args.domain,
                            sampler=args.sampler, seed=args.seed, cache=not args.no_cache, device=args.device,
                            batch_size=args.batch_size, offline_fallback=not args.no_fallback, show_progress=not args.json)
    except (DatasetError, ValueError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"python -m kgcl_lib.pairs: error: {exc}", file=sys.stderr)
        return 2
    out = pairs.summary()
    out["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    paper = f"{out['paper_cc']:,}" if out.get("paper_cc") else "n/a"
    print(f"{out['dataset']}: {out['sampler']} sampler, template {out['template']}, mode {out['mode']}")
    print(f"  items with metadata: {out['items_with_metadata']:,}")
    print(f"  c-c pairs: {out['pairs']:,} ({out['positives']:,} positive / {out['negatives']:,} negative); paper Table 1 c-c for this domain/template: {paper}")
    print(f"  bi-encoder: {out['bi_encoder']}; cross-encoder: {out['cross_encoder'] or 'none (bi-encoder ranking)'}")
    print(f"  {out['seconds']} s; table: {out['path'] or '(not cached)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
