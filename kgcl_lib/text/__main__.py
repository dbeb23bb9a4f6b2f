"""Command line for the text stage.

``python -m kgcl_lib.text generate --dataset ml-100k --model smollm2 --json``
generates LLM synopses for a dataset's items (cached, resumable) and writes
``llm_synopses.tsv`` (``item_id<TAB>synopsis``, same layout as the human ``synopses.tsv``)
plus ``llm_synopses.json`` (provenance) into ``--out`` (default: ``<cache>/llm/<dataset>``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from .. import storage
from ..cli import CliParser, run_main
from ..data import load_dataset
from .generate import generate_synopses, write_synopses_tsv


def _parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m kgcl_lib.text", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="LLM synopses from the paper's prompt (Section 4.4)")
    g.add_argument("--dataset", required=True, help="dataset name for kgcl_lib.data.load_dataset (e.g. ml-100k)")
    g.add_argument("--data-dir", default=None, help="raw data folder (default: $KGCL_DATA_DIR)")
    g.add_argument(
        "--model",
        default="auto",
        help="'auto' (Llama-3.2-1B-Instruct with hub access, else SmolLM2 offline), 'smollm2', "
        "a hub id, a local folder or a .gguf file (default: auto)",
    )
    g.add_argument("--gguf-file", default=None, help="GGUF file name inside --model (default: none)")
    g.add_argument("--domain", choices=["movie", "book"], default=None, help="prompt wording (default: from the dataset name)")
    g.add_argument("--limit", type=int, default=None, help="only the first N items by item index (default: all)")
    g.add_argument("--batch-size", type=int, default=64, help="prompts per generation batch (default: 64)")
    g.add_argument("--max-new-tokens", type=int, default=64, help="maximum generated tokens per synopsis (default: 64)")
    g.add_argument("--sample", action="store_true", help="sample instead of greedy decoding (default: off, greedy)")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature, with --sample (default: 1.0)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus-sampling probability mass in (0, 1], with --sample (default: 1.0)")
    g.add_argument("--repetition-penalty", type=float, default=1.2, help="logit divisor for already generated tokens; 1 = off (default: 1.2)")
    g.add_argument("--no-repeat-ngram-size", type=int, default=3, help="never repeat an n-gram of this many tokens; 0 = off (default: 3)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    g.add_argument("--trailing-space", action="store_true", help="keep the paper's trailing prompt space (default: off)")
    g.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:N (default: cuda when available, else cpu)")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the generation cache (default: off)")
    g.add_argument("--out", default=None, help="output folder (default: <cache>/llm/<dataset>)")
    g.add_argument("--json", action="store_true", help="print a JSON summary on stdout (default: one line)")
    return p


def _generate(args) -> dict:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_dir)
    items = ds.items if args.limit is None else ds.items.iloc[: args.limit]
    domain = args.domain or ("book" if "book" in args.dataset.lower() else "movie")
    res = generate_synopses(
        items,
        args.model,
        domain=domain,
        gguf_file=args.gguf_file,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        do_sample=args.sample,
        temperature=args.temperature,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        seed=args.seed,
        cache=not args.no_cache,
        device=args.device,
        trailing_space=args.trailing_space,
    )
    out = Path(args.out) if args.out else storage.cache_dir("llm") / args.dataset
    tsv = write_synopses_tsv(res, items["raw_id"].to_numpy(), out / "llm_synopses.tsv")
    prov = res.provenance
    counts = prov["counts"]
    summary = {
        "dataset": args.dataset,
        "items": prov["items"],
        "generated": counts["ok"],
        "dropped": {k: v for k, v in counts.items() if k != "ok"},
        "new": prov["new"],
        "cache_hits": prov["cache_hits"],
        "seconds": prov["seconds"],
        "load_seconds": prov["load_seconds"],
        "items_per_s": prov["items_per_s"],
        "tokens_per_s": prov["tokens_per_s"],
        "model": res.model,
        "output": str(tsv),
    }
    storage.write_json(out / "llm_synopses.json", {**summary, "provenance": prov})
    return summary


def main(argv: list[str] | None = None) -> int:
    return run_main(_main, argv, prog="python -m kgcl_lib.text")


def _main(argv) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        summary = _generate(args)
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
        else:
            dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items())
            print(
                f"{summary['generated']}/{summary['items']} synopses from {summary['model']} "
                f"(dropped: {dropped}; {summary['new']} new, {summary['cache_hits']} cached) -> {summary['output']}",
                file=sys.stdout,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
