"""Names shared by the trainer, the experiment grid and the report, defined once.

Three different "text" notions exist; each has its own name here:

* :data:`TRAIN_TEXTS` — what the *trainer* feeds the item nodes (``TrainConfig.text``):
  ``"none"`` or ``"synopsis"`` (text vectors, whatever their source).
* :data:`TEXT_ARMS` — the *grid's* arm of a run (``RunSpec.text``): ``"without"`` semantic
  text, ``"with"`` the dataset's own text, or ``"llm"`` LLM-generated synopses (Table 5).
* :data:`TEXT_SOURCES` — *where* a run's text came from (``RunSpec.text_source``, and every
  table's row label): human synopses, TMDB, Wikipedia, book descriptions, an LLM, the
  metadata substitute (verbalised title + genres), or none.
"""

from __future__ import annotations

#: What the trainer trains (``TrainConfig.variant``): L_base only, + content CL with genre pairs,
#: + content CL with title+genre pairs.
TRAIN_VARIANTS = ("base", "cl_genre", "cl_title_genre")
#: The grid's variants (``RunSpec.variant``): the trainer's, plus ``kgcn_original`` — L_base with
#: KGCN's own published settings (sum aggregator, K = 8 on books), trained as ``base``.
VARIANTS = (*TRAIN_VARIANTS, "kgcn_original")
#: Variants that only exist without text (``kgcn_original``: KGCN itself, no text, no CL).
NO_TEXT_VARIANTS = ("kgcn_original",)
#: Content-pair template of each variant (``base`` / ``kgcn_original`` train without pairs).
VARIANT_TEMPLATE = {"base": None, "cl_genre": "genre", "cl_title_genre": "title_genre", "kgcn_original": None}
#: Display names; ``cl_kg`` is a CL variant whose pairs came from KG attributes (no text metadata).
VARIANT_LABELS = {"base": "L_base", "cl_genre": "+CL genre", "cl_title_genre": "+CL title+genre",
                  "cl_kg": "+CL KG attributes",
                  "kgcn_original": "KGCN (original settings: sum, K = 8 books / 4 movies)"}
#: The paper's baseline model as ``(text arm, variant)``: L_base without semantic text.
BASELINE = ("without", "base")
#: Row/column order of variants in tables.
VARIANT_ORDER = ("kgcn_original", "base", "cl_genre", "cl_title_genre", "cl_kg")

#: What the trainer gives item nodes (``TrainConfig.text``).
TRAIN_TEXTS = ("none", "synopsis")
#: The grid's text arms (``RunSpec.text``).
TEXT_ARMS = ("without", "with", "llm")
#: Column/row labels of the arms in the paper's tables (``human`` is Table 5's name for ``with``).
TEXT_ARM_LABELS = {"without": "Without Semantic Text", "with": "With Semantic Text", "human": "Human-generated text",
                   "llm": "LLM-generated text"}
#: Where the text of a run came from (``RunSpec.text_source``) -> label used in table rows.
TEXT_SOURCES = {
    "none": "no text",
    "human": "human synopses",
    "tmdb": "TMDB overviews",
    "wikipedia": "Wikipedia summaries",
    "tmdb+wikipedia": "TMDB overviews + Wikipedia summaries",
    "goodreads": "Goodreads descriptions",
    "google_books": "Google Books descriptions",
    "goodreads+google_books": "Goodreads + Google Books descriptions",
    "llm": "LLM-generated synopses",
    "metadata": "metadata substitute (verbalised title + genres)",
    "synthetic": "synthetic texts",
}
#: The text source the paper used per dataset family (for the paper's rows).
PAPER_TEXT_SOURCES = {"movie": "tmdb", "book": "goodreads+google_books"}

#: Cut-offs of Recall/NDCG@K (Table 3).
KS = (5, 10, 20, 50, 100)
#: Cumulative user-activity buckets of Figures 1/5: p = the p % least active test users.
PERCENTILES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
