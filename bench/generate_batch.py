"""LLM synopses: CPU time and greedy text per generation batch size, one model load.

Usage (from the repo root; prints one JSON line per batch size, then the comparison)::

    KGCL_DATA_DIR=../shared/data python bench/generate_batch.py --n 160 --batch-sizes 16,32,64 --threads 1

Loads the generator once (default: the offline SmolLM2 GGUF), builds the paper's prompts for the
first ``--n`` ML-100K titles exactly as :func:`kgcl_lib.text.generate.generate_synopses` does
(sorted by token length, default decoding parameters, no cache), and generates them at every
batch size in turn.  Times are CPU seconds (``time.process_time``: robust to other jobs on
the cores; meaningful at 1 thread).  The last lines count the items whose raw continuation is
identical to that of the first batch size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64, help="first N ML-100K items (default: 64)")
    ap.add_argument("--batch-sizes", default="16,64", help="comma-separated batch sizes; the first is the reference")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    ap.add_argument("--model", default="smollm2", help="generator (default: smollm2)")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from kgcl_lib import experiments as X
    from kgcl_lib.text import decoding
    from kgcl_lib.text import prompts as P
    from kgcl_lib.text import generate as gen

    torch.set_num_threads(args.threads)
    items = X.open_dataset("ml-100k").items.iloc[: args.n]
    warnings.simplefilter("ignore", gen.GeneratorWarning)
    c0 = time.process_time()
    tok, lm = gen.load_generator(gen.resolve_generator(args.model), "cpu")
    classes = decoding._token_classes(tok, max(len(tok), lm.get_output_embeddings().weight.shape[0]))
    print(json.dumps({"load_cpu_s": round(time.process_time() - c0, 2)}), flush=True)
    titles = [P._clean_title(t) for t in items["title"]]
    prompts = [P.synopsis_prompt(P.natural_title(t), y, "movie") for t, y in zip(titles, items["year"]) if t]
    order = np.argsort([len(x) for x in tok(prompts)["input_ids"]], kind="stable")
    params = decoding.GenerationParams()
    texts_by_bs = {}
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        c0, w0 = time.process_time(), time.perf_counter()
        texts, n_tokens = [None] * len(prompts), 0
        for i in range(0, len(order), bs):
            b = order[i : i + bs]
            out, n_new = decoding._generate_batch(tok, lm, [prompts[k] for k in b], params, classes, None)
            for k, t in zip(b, out):
                texts[k] = t
            n_tokens += int(n_new.sum())
        texts_by_bs[bs] = texts
        print(json.dumps({"batch": bs, "cpu_s": round(time.process_time() - c0, 2),
                          "wall_s": round(time.perf_counter() - w0, 2), "new_tokens": n_tokens}), flush=True)
    ref = next(iter(texts_by_bs))
    for bs, texts in texts_by_bs.items():
        same = sum(a == b for a, b in zip(texts, texts_by_bs[ref]))
        print(json.dumps({"batch": bs, "identical_to_batch": ref, "identical": same, "of": len(prompts)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
