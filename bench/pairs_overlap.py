"""How many of the exhaustive top-n positives does retrieve-then-rerank recover? (overlap@n)

For each template, pairs are built twice with the same reranker: exhaustively (every pair
reranked, the paper's procedure) and retrieve-then-rerank with ``M`` bi-encoder candidates;
``positive_overlap`` compares their positives.  The bi-encoder is the packaged
all-MiniLM-L6-v2.  No real cross-encoder is available offline, so the reranker is a stand-in —
both are honest about what they are:

* ``maxsim``: ColBERT-style late interaction on all-MiniLM-L6-v2's contextual token vectors
  (for each query token, the best cosine with any document token, averaged over query
  tokens) — semantic, token-level, correlated with but not equal to the pooled bi-encoder;
* ``bm25``: Okapi BM25 (k1 = 1.2, b = 0.75) over lower-cased word tokens — lexical, much less
  correlated with the bi-encoder.

A reranker unrelated to the bi-encoder would give an expected overlap of ``M / (m - 1)``.

Usage::

    python bench/pairs_overlap.py --dataset ml-100k [--data-dir DIR] [--candidates 10 50 100 200] [--json]

prints one JSON object (``results`` rows: template, reranker, M, overlap, overlap_tie_aware).
Both scorers precompute the full sentence-by-sentence score matrix once, so the timings here
say nothing about cross-encoder cost (see ``bench/text_speed.py``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from kgcl_lib.pairs import build_pairs, positive_overlap, verbalize  # noqa: E402
from kgcl_lib.storage import sha256_text  # noqa: E402
from kgcl_lib.text.models import PACKAGED_MODEL_ID, packaged_model_path  # noqa: E402


class MatrixScorer:
    """A stand-in cross-encoder whose scores come from a precomputed ``float32[U, U]`` matrix
    over a fixed list of sentences (``score(q, d) = matrix[idx[q], idx[d]]``)."""

    name = "matrix"

    def __init__(self, sentences: list[str]):
        self.sentences = list(dict.fromkeys(sentences))
        self.index = {s: i for i, s in enumerate(self.sentences)}
        self._matrix: np.ndarray | None = None

    def matrix(self) -> np.ndarray:
        raise NotImplementedError

    def score(self, queries, docs, batch_size=64, progress=None) -> np.ndarray:
        if self._matrix is None:
            self._matrix = self.matrix()
        qi = np.fromiter((self.index[q] for q in queries), dtype=np.int64, count=len(queries))
        di = np.fromiter((self.index[d] for d in docs), dtype=np.int64, count=len(docs))
        return self._matrix[qi, di]

    def describe(self) -> dict:
        return {"name": self.name, "fingerprint": sha256_text(self.name, *self.sentences)}


class MaxSimScorer(MatrixScorer):
    """Late interaction on all-MiniLM-L6-v2 token vectors ([CLS]/[SEP] dropped), mean over
    query tokens of the max cosine with any document token."""

    name = "maxsim-all-MiniLM-L6-v2"

    def __init__(self, sentences, batch_size: int = 64, query_chunk: int = 8):
        super().__init__(sentences)
        self.batch_size, self.query_chunk = batch_size, query_chunk

    def matrix(self) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm
        from transformers import AutoModel, AutoTokenizer

        path = packaged_model_path()
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path).eval()
        enc = tok(self.sentences, padding=True, truncation=True, max_length=128, return_tensors="pt", return_special_tokens_mask=True)
        mask = (enc["attention_mask"] == 1) & (enc["special_tokens_mask"] == 0)  # [U, L]
        enc.pop("special_tokens_mask")
        with torch.inference_mode():
            hidden = torch.cat([model(**{k: v[i : i + self.batch_size] for k, v in enc.items()}).last_hidden_state
                                for i in range(0, len(self.sentences), self.batch_size)])
            hidden = torch.nn.functional.normalize(hidden, dim=-1) * mask[..., None]  # padded tokens -> 0 vectors
            u, length, d = hidden.shape
            flat = hidden.reshape(u * length, d)
            fill = torch.where(mask.reshape(-1), 0.0, -2.0)  # cos >= -1, so padded doc tokens never win the max
            out = torch.zeros(u, u)
            for s in tqdm(range(0, u, self.query_chunk), desc="maxsim matrix", unit="query", unit_scale=self.query_chunk):
                q = hidden[s : s + self.query_chunk]  # [c, L, d]
                sim = (q.reshape(-1, d) @ flat.T + fill).reshape(len(q), length, u, length)  # [c, Lq, U, Ld]
                best = sim.amax(dim=-1)  # [c, Lq, U]
                qm = mask[s : s + self.query_chunk].float()[..., None]  # [c, Lq, 1]
                out[s : s + len(q)] = ((best * qm).sum(1) / qm.sum(1).clamp(min=1)).float()
        return out.numpy()


class BM25Scorer(MatrixScorer):
    """Okapi BM25 of the document sentence for the query sentence's word tokens."""

    name = "bm25"

    def __init__(self, sentences, k1: float = 1.2, b: float = 0.75):
        super().__init__(sentences)
        self.k1, self.b = k1, b

    def matrix(self) -> np.ndarray:
        import scipy.sparse as sp

        docs = [re.findall(r"[a-z0-9']+", s.lower()) for s in self.sentences]
        vocab = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
        rows = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
        cols = np.fromiter((vocab[w] for d in docs for w in d), dtype=np.int64)
        tf = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(docs), len(vocab)))
        tf.sum_duplicates()
        n_docs = len(docs)
        df = np.bincount(tf.indices, minlength=len(vocab))
        idf = np.log((n_docs - df + 0.5) / (df + 0.5) + 1.0)
        dl = np.asarray(tf.sum(axis=1)).ravel()
        norm = self.k1 * (1 - self.b + self.b * dl / dl.mean())
        w = tf.copy()
        w.data = w.data * (self.k1 + 1) / (w.data + np.repeat(norm, np.diff(w.indptr)))
        w = w @ sp.diags(idf)  # BM25 weight of term t in document d
        q = (tf > 0).astype(np.float64)  # query: its distinct terms
        return np.asarray((q @ w.T).todense(), dtype=np.float32)


def run(ds, *, templates=("genre", "title_genre"), candidates=(10, 50, 100, 200), n: int = 10, rerankers=("maxsim", "bm25"),
        seed: int = 0) -> dict:
    """Overlap@n of retrieve-then-rerank vs exhaustive reranking for every template x reranker x M."""
    rows = []
    for template in templates:
        sentences = verbalize(ds, template).dropna().tolist()
        m = len(sentences)
        for name in rerankers:
            scorer = MaxSimScorer(sentences) if name == "maxsim" else BM25Scorer(sentences)
            t0 = time.perf_counter()
            ref = build_pairs(ds, template, n=n, exhaustive=True, bi_encoder=PACKAGED_MODEL_ID, cross_encoder=scorer, seed=seed,
                              cache=False, show_progress=False)
            t_ref = time.perf_counter() - t0
            for M in candidates:
                t0 = time.perf_counter()
                rr = build_pairs(ds, template, n=n, candidates=M, bi_encoder=PACKAGED_MODEL_ID, cross_encoder=scorer, seed=seed, cache=False,
                                 show_progress=False)
                ov = positive_overlap(ref, rr)
                rows.append({"template": template, "reranker": scorer.name, "M": M, "items": m, "mode": rr.provenance["mode"],
                             "overlap": round(ov["overlap"], 4), "overlap_tie_aware": round(ov["overlap_tie_aware"], 4),
                             "random_reranker_expected": round(M / (m - 1), 4), "cross_pairs_rr": rr.provenance["cross_pairs_scored"],
                             "cross_pairs_exhaustive": ref.provenance["cross_pairs_scored"], "seconds_rr": round(time.perf_counter() - t0, 2),
                             "seconds_exhaustive": round(t_ref, 2)})
                print(json.dumps(rows[-1]), file=sys.stderr)
    return {"dataset": ds.name, "n": n, "bi_encoder": PACKAGED_MODEL_ID, "results": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--templates", nargs="+", default=["genre", "title_genre"])
    p.add_argument("--candidates", nargs="+", type=int, default=[10, 50, 100, 200])
    p.add_argument("--rerankers", nargs="+", choices=["maxsim", "bm25"], default=["maxsim", "bm25"])
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="(always JSON; kept for symmetry with the other benches)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from kgcl_lib.data import load_dataset

    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    out = run(ds, templates=args.templates, candidates=args.candidates, n=args.n, rerankers=args.rerankers)
    out["threads"] = args.threads
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
