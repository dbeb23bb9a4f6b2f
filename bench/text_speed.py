"""Text-model throughput: bi-encoder items/s, cross-encoder pairs/s, extrapolated to MovieLens-20M.

Measured models (all local, no downloads):

* ``minilm-l6`` — the packaged, real all-MiniLM-L6-v2 (the offline bi-encoder fallback);
* ``bert-base-random`` — a randomly initialised BERT-base (768-d, 12 layers, 12 heads, the
  ``bert-base-uncased`` vocabulary): the size of the paper's synopsis encoder E and, to within
  a few percent, of ``multi-qa-mpnet-base-dot-v1``; run on synopses and on template sentences;
* ``cross-minilm-l12-random`` — a randomly initialised one-label BERT with the shape of
  ``cross-encoder/ms-marco-MiniLM-L-12-v2`` (384-d, 12 layers, 12 heads), scoring
  (title_genre sentence, title_genre sentence) pairs.

Speed does not depend on the weights, so random weights of the right shape time the same
computation.  Texts come from ml-100k (``kgcl_lib.data.load_dataset``) when available, else from
a synthetic generator of the same shape.  Extrapolations for MovieLens-20M's 16,954 items:
bi-encoder time for all items, and cross-encoder time for the exhaustive 16,954 x 16,953 pairs and
for retrieve-then-rerank (16,954 x (M + n) pairs, n = 10).

Usage::

    python bench/text_speed.py [--threads 1 2] [--device cpu|cuda] [--bi-texts 256] [--cross-pairs 512]

prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from kgcl_lib.text.models import load_encoder, packaged_model_path, random_bert, resolve_cross_encoder  # noqa: E402

ML20M_ITEMS = 16_954
N_PAIRS = 10


def _texts(n_bi: int, n_cross: int, data_dir: str | None, seed: int = 0) -> tuple[list[str], list[str], str]:
    """(template sentences, synopses, source) — ml-100k when loadable, else synthetic."""
    rng = np.random.default_rng(seed)
    try:
        from kgcl_lib.data import load_dataset
        from kgcl_lib.pairs import verbalize

        ds = load_dataset("ml-100k", data_dir=data_dir)
        sent = verbalize(ds, "title_genre").dropna().tolist()
        syn = ds.items["synopsis"].dropna().astype(str).tolist()
        if sent and syn:
            pick = lambda xs, k: [xs[i] for i in rng.integers(0, len(xs), size=k)]  # noqa: E731
            return pick(sent, max(n_bi, 2 * n_cross)), pick(syn, n_bi), "ml-100k"
    except Exception as exc:  # noqa: BLE001 - any failure -> synthetic texts
        print(f"ml-100k not available ({type(exc).__name__}: {exc}); using synthetic texts", file=sys.stderr)
    words = (packaged_model_path() / "vocab.txt").read_text().split()[2000:12000]
    genres = ["Action", "Comedy", "Drama", "Thriller", "Romance", "Adventure", "Children's", "Crime", "Sci-Fi", "Horror"]

    def sentence():
        title = " ".join(rng.choice(words, size=rng.integers(1, 5))).title()
        g = list(rng.choice(genres, size=rng.integers(1, 4), replace=False))
        return f"A movie title is {title} ({rng.integers(1930, 2015)}). The genre(s) of the film {'is' if len(g) == 1 else 'are'} {', '.join(g)}."

    sent = [sentence() for _ in range(max(n_bi, 2 * n_cross))]
    syn = [" ".join(rng.choice(words, size=rng.integers(15, 45))).capitalize() + "." for _ in range(n_bi)]
    return sent, syn, "synthetic"


def _rate(fn, n: int, repeats: int) -> float:
    """Items per second of ``fn()`` (which processes ``n`` items): best of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="bi-/cross-encoder throughput and MovieLens-20M extrapolation")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch intra-op threads to measure (default: 1 2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bi-texts", type=int, default=256, help="texts per bi-encoder measurement")
    p.add_argument("--cross-pairs", type=int, default=512, help="pairs per cross-encoder measurement")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=1, help="best of this many timed runs (after one warm-up batch)")
    p.add_argument("--candidates", nargs="+", type=int, default=[50, 100, 200], help="M values for the rerank extrapolation")
    p.add_argument("--models", nargs="+", default=["minilm-l6", "bert-base-random", "cross-minilm-l12-random"])
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    import torch

    sentences, synopses, source = _texts(args.bi_texts, args.cross_pairs, args.data_dir)
    vocab = packaged_model_path() / "vocab.txt"  # bert-base-uncased's WordPiece vocabulary
    results = []
    with tempfile.TemporaryDirectory(prefix="kgcl-bench-") as tmp:
        encoders, cross = {}, None
        if "minilm-l6" in args.models:
            encoders["minilm-l6"] = load_encoder(packaged_model_path(), name="all-MiniLM-L6-v2 (packaged)", device=args.device)
        if "bert-base-random" in args.models:
            path = random_bert(Path(tmp) / "bert-base", vocab=vocab, hidden=768, layers=12, heads=12, head="none")
            encoders["bert-base-random"] = load_encoder(path, name="BERT-base shape, random weights", device=args.device)
        if "cross-minilm-l12-random" in args.models:
            path = random_bert(Path(tmp) / "cross", vocab=vocab, hidden=384, layers=12, heads=12, intermediate=1536, head="cross")
            cross = resolve_cross_encoder(str(path), device=args.device)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for key, enc in encoders.items():
                for kind, texts in (("template sentence", sentences[: args.bi_texts]), ("synopsis", synopses[: args.bi_texts])):
                    if key == "minilm-l6" and kind == "synopsis":
                        continue  # the pair bi-encoder only sees template sentences
                    enc.encode(texts[: args.batch_size], batch_size=args.batch_size)  # warm-up
                    rate = _rate(lambda: enc.encode(texts, batch_size=args.batch_size), len(texts), args.repeats)
                    results.append({"model": key, "role": "bi-encoder", "texts": kind, "threads": threads, "items_per_s": round(rate, 2),
                                    "ml20m_all_items_s": round(ML20M_ITEMS / rate, 1)})
                    print(json.dumps(results[-1]), file=sys.stderr)
            if cross is not None:
                q, d = sentences[: args.cross_pairs], sentences[args.cross_pairs : 2 * args.cross_pairs]
                cross.score(q[: args.batch_size], d[: args.batch_size], batch_size=args.batch_size)  # warm-up
                rate = _rate(lambda: cross.score(q, d, batch_size=args.batch_size), len(q), args.repeats)
                row = {"model": "cross-minilm-l12-random", "role": "cross-encoder", "texts": "title_genre pairs", "threads": threads,
                       "pairs_per_s": round(rate, 2), "ml20m_exhaustive_h": round(ML20M_ITEMS * (ML20M_ITEMS - 1) / rate / 3600, 1)}
                for m in args.candidates:
                    row[f"ml20m_rerank_M{m}_h"] = round(ML20M_ITEMS * (m + N_PAIRS) / rate / 3600, 2)
                results.append(row)
                print(json.dumps(row), file=sys.stderr)
    out = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "texts": source,
        "batch_size": args.batch_size,
        "ml20m_items": ML20M_ITEMS,
        "results": results,
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
