"""Benchmark + quality check of LLM synopses on the first N MovieLens-100K titles.

    KGCL_DATA_DIR=../shared/data .venv/bin/python bench/generate_speed.py --n 50 --threads 1

Runs the offline SmolLM2 GGUF (or ``--model``) with a fresh temporary cache, and prints JSON:
items/s, tokens/s, counts by status, example outputs, the share of continuations that start
with a digit with and without the paper's trailing prompt space, and the similarity of the
generated synopses to the human ones (``synopsis_similarity`` with the packaged
all-MiniLM-L6-v2 encoder).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from kgcl_lib import storage
from kgcl_lib.text import generate as gen


def _ml100k_items(data_dir: Path, n: int) -> tuple[pd.DataFrame, pd.Series]:
    """First ``n`` items (title, year) and the human synopses aligned to them."""
    item = pd.read_csv(data_dir / "ml-100k" / "ml-100k.item", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    item.columns = [c.split(":")[0] for c in item.columns]
    item = item.head(n).reset_index(drop=True)
    items = pd.DataFrame(
        {
            "raw_id": item["item_id"],
            "title": item["movie_title"],
            "year": pd.to_numeric(item["release_year"], errors="coerce").astype("Int64"),
        }
    )
    syn = pd.read_csv(data_dir / "ml-100k" / "synopses.tsv", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    human = items["raw_id"].map(dict(zip(syn["item_id"], syn["synopsis"])))
    return items, human


def _starts_with_digit(raw: pd.Series) -> float:
    s = raw.dropna().astype(str).str.lstrip()
    return float(s.str[:1].str.isdigit().mean()) if len(s) else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--encoder", default="all-MiniLM-L6-v2", help="encoder for the similarity check ('' to skip)")
    ap.add_argument("--skip-trailing-space", action="store_true", help="skip the trailing-space comparison run")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    data_dir = storage.data_dir()
    if data_dir is None or not (data_dir / "ml-100k" / "ml-100k.item").exists():
        print(json.dumps({"skipped": "set KGCL_DATA_DIR to a folder with ml-100k/ml-100k.item"}))
        return 0
    items, human = _ml100k_items(data_dir, args.n)
    out: dict = {"n_items": len(items), "threads": args.threads, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", gen.GeneratorWarning)
        kw = dict(domain="movie", batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, cache=Path(tmp))
        res = gen.generate_synopses(items, args.model, **kw)
        p = res.provenance
        out.update(
            model=res.model,
            load_seconds=p["load_seconds"],
            seconds=p["seconds"],
            items_per_s=p["items_per_s"],
            tokens_per_s=p["tokens_per_s"],
            new_tokens=p["new_tokens"],
            counts=p["counts"],
            starts_with_digit=_starts_with_digit(res.table["raw"]),
        )
        ok = res.table[res.table["status"] == "ok"]
        # Generic filler ("the life and career of a young woman ...") repeats across films.
        out["distinct_synopsis_frac"] = float(ok["synopsis"].nunique() / len(ok)) if len(ok) else float("nan")
        out["examples"] = [
            {"title": r.title, "generated": r.synopsis, "human": human.loc[i] or None} for i, r in ok.head(3).iterrows()
        ]
        dropped = res.table[res.table["status"].isin(["empty", "degenerate"])]
        out["dropped_examples"] = [{"title": r.title, "status": r.status, "raw": r.raw} for _, r in dropped.head(3).iterrows()]
        if not args.skip_trailing_space:
            trail = gen.generate_synopses(items, args.model, trailing_space=True, **kw)
            out["trailing_space"] = {
                "starts_with_digit": _starts_with_digit(trail.table["raw"]),
                "counts": trail.provenance["counts"],
                "examples": trail.table["raw"].head(3).tolist(),
            }
    if args.encoder:
        try:
            rep = gen.synopsis_similarity(res.table["synopsis"], human.replace("", pd.NA), args.encoder)
            out["similarity"] = rep.as_dict()
        except (ImportError, ValueError) as e:  # encoder API missing or too few pairs
            out["similarity"] = {"error": str(e)}
    print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
