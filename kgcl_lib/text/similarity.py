"""How close LLM synopses are to human ones: cosine similarity of their frozen-encoder embeddings."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from .encode import encode_texts


# ----------------------------------------------------------------------------------------
# Quality report
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimilarityReport:
    """How close generated synopses are to the human ones (cosine of sentence embeddings).

    Attributes:
        n: pairs compared (both texts present).
        paired: mean cosine of each generated text with ITS item's human text.
        shuffled: mean cosine with OTHER items' human texts; the exact expectation of a
            shuffled-pairs baseline (mean over all ``i != j``).
        gap: ``paired - shuffled`` (0 = no more item-specific than random text).
        top1: fraction of items whose generated text is closest to their own human text among
            all ``n`` human texts (retrieval accuracy); chance level is ``1/n``.
        mrr: mean reciprocal rank of the own human text (chance about ``ln(n)/n``).
        encoder: encoder name (or ``repr`` of the callable).
    """

    n: int
    paired: float
    shuffled: float
    gap: float
    top1: float
    mrr: float
    encoder: str

    def as_dict(self) -> dict:
        return asdict(self)


def synopsis_similarity(
    generated: Sequence,
    human: Sequence,
    encoder: str | Callable[[list[str]], np.ndarray],
    *,
    block: int = 2048,
) -> SimilarityReport:
    """Mean paired cosine of generated vs human synopses against a shuffled-pairs baseline.

    Args:
        generated, human: aligned sequences (same item per position); pairs where either is
            NA/None/empty are skipped.
        encoder: a callable ``list[str] -> float[n, D]``, or a model name handed to
            ``kgcl_lib.text.encode.encode_texts(texts, model)``.
        block: rows of the ``n x n`` similarity matrix computed at a time (memory bound).

    Returns:
        :class:`SimilarityReport`.
    """
    g = pd.Series(list(generated), dtype="object")
    h = pd.Series(list(human), dtype="object")
    if len(g) != len(h):
        raise ValueError(f"generated ({len(g)}) and human ({len(h)}) must be aligned")
    ok = (g.fillna("").astype(str).str.strip() != "") & (h.fillna("").astype(str).str.strip() != "")
    ok = ok.to_numpy(dtype=bool, copy=True)
    n = int(ok.sum())
    if n < 2:
        raise ValueError(f"need at least 2 pairs with both texts, got {n}")
    if callable(encoder):
        enc, name = encoder, getattr(encoder, "__name__", repr(encoder))
    else:
        def enc(texts):
            out = encode_texts(texts, encoder)
            return getattr(out, "vectors", out)

        name = str(encoder)
    G = np.asarray(enc(g[ok].astype(str).tolist()), dtype=np.float64)
    H = np.asarray(enc(h[ok].astype(str).tolist()), dtype=np.float64)
    G /= np.maximum(np.linalg.norm(G, axis=1, keepdims=True), 1e-12)
    H /= np.maximum(np.linalg.norm(H, axis=1, keepdims=True), 1e-12)
    diag = np.einsum("ij,ij->i", G, H)
    # Sum over all (i, j) of g_i.h_j = (sum_i g_i).(sum_j h_j); remove the diagonal.
    shuffled = (G.sum(0) @ H.sum(0) - diag.sum()) / (n * (n - 1))
    ranks = np.empty(n, dtype=np.int64)
    for s in range(0, n, block):
        S = G[s : s + block] @ H.T
        # The own pair never outranks itself (S's diagonal may differ from diag by rounding).
        rows = np.arange(len(S))
        S[rows, s + rows] = -np.inf
        ranks[s : s + block] = 1 + (S > diag[s : s + block, None]).sum(1)
    paired = float(diag.mean())
    return SimilarityReport(
        n=n,
        paired=paired,
        shuffled=float(shuffled),
        gap=paired - float(shuffled),
        top1=float((ranks == 1).mean()),
        mrr=float((1.0 / ranks).mean()),
        encoder=name,
    )
