"""Tiny randomly initialised BERT encoders for tests (no downloads).

``tiny_bert(folder, head=...)`` writes a 2-layer, 32-wide BERT with a hand-written WordPiece
vocabulary covering the pair templates, MovieLens genres and a few title words, as

* ``head="none"``  — a plain transformers encoder (loaded with our mean pooling),
* ``head="st"``    — the same weights plus sentence-transformers config (mean pooling),
* ``head="cross"`` — a one-label ``BertForSequenceClassification`` cross-encoder.

Any word outside :data:`VOCAB` becomes ``[UNK]``, so tests that need distinct embeddings should
build their texts from these words.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_WORDS = "a the genre ( s ) of film movie book title is are . , ' -".split()
GENRE_WORDS = ("action adventure animation children comedy crime documentary drama fantasy noir horror musical mystery "
               "romance sci fi thriller war western fiction").split()
TITLE_WORDS = ("red blue green night day river city king queen star moon sun stone fire ice wind rain snow gold iron "
               "glass paper winter summer spring autumn north south east west").split()
YEAR_WORDS = [str(y) for y in range(1980, 2000)]
VOCAB = TEMPLATE_WORDS + GENRE_WORDS + TITLE_WORDS + YEAR_WORDS


def tiny_bert(folder: str | Path, head: str = "none", *, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 2) -> Path:
    """Write a tiny random BERT to ``folder`` (see module docstring); returns the folder."""
    from kgcl_lib.text.models import random_bert

    return random_bert(folder, vocab=VOCAB, hidden=hidden, layers=layers, heads=heads, head=head, seed=seed, max_position=128)


def title_pool(k: int) -> list[str]:
    """``k`` distinct two-word titles made of vocabulary words."""
    out = [f"{a} {b}" for a in TITLE_WORDS for b in TITLE_WORDS if a != b]
    if k > len(out):
        raise ValueError(f"at most {len(out)} titles")
    return out[:k]
