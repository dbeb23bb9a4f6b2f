"""Content–content pairs for the contrastive loss (paper Section 3.1, Fig. 3).

* :func:`build_pairs` -> :class:`ContentPairs` — text sampler (templates, bi-encoder,
  cross-encoder; exhaustive or retrieve-then-rerank) and the KG-attribute sampler.
* :func:`verbalize` — the paper's two metadata templates.
* :func:`positive_overlap` — overlap@n of two pair tables (retrieve-then-rerank vs exhaustive).
* ``python -m kgcl_lib.pairs --dataset NAME --template genre|title_genre --json`` — CLI.

Text models are loaded lazily, on the first :func:`build_pairs` call that needs them.
"""

from .build import ANCHOR_CHUNK, PAPER_CC, SAMPLERS, ContentPairs, CrossEncoderSkippedWarning, build_pairs, positive_overlap
from .kg import item_attributes
from .select import pair_keys, top_k
from .templates import TEMPLATES, genre_sentence, infer_domain, join_genres, title_sentence, verbalize

__all__ = [
    "ANCHOR_CHUNK",
    "PAPER_CC",
    "SAMPLERS",
    "TEMPLATES",
    "ContentPairs",
    "CrossEncoderSkippedWarning",
    "build_pairs",
    "genre_sentence",
    "infer_domain",
    "item_attributes",
    "join_genres",
    "pair_keys",
    "positive_overlap",
    "title_sentence",
    "top_k",
    "verbalize",
]
