"""Get the paper's exact inputs with one call: raw files, KGCN conversion, synopses, book metadata.

``fetch_dataset("ml-20m", dest)`` leaves in ``dest``::

    ratings.csv  movies.csv  links.csv         MovieLens-20M (GroupLens ml-20m.zip)
    item_index2entity_id.txt  kg.txt           KGCN's Satori KG for it
    synopses.tsv                               item_id <TAB> synopsis (TMDB overview; Wikipedia fallback)

``fetch_dataset("book-crossing", dest)`` leaves::

    ratings_final.txt  kg_final.txt  item_index2entity_id_rehashed.txt   KGCN format (RippleNet protocol)
    books.tsv      isbn, title, author, year, genres ("|"-joined), synopsis

and for both: ``coverage.json`` (counts per field and source, Table-1 check, request counts),
``missing.tsv`` (field, item_id, title, reason for every gap), ``raw/`` (downloaded archives)
and ``.kgcl-fetch/`` (JSONL API caches and conversion state).  A rerun makes no request: files
are verified locally, the conversion is skipped when its inputs and parameters are unchanged,
and every API answer (or permanent miss) is read from the cache.

Book-Crossing conversion (RippleNet ``preprocess.py``, the protocol KGCN reuses; threshold 0)
-------------------------------------------------------------------------------------------
* Item ``i`` is line ``i`` of ``item_index2entity_id_rehashed.txt`` (``ISBN <TAB> satori id``);
  rating lines whose ISBN is not listed are dropped.
* ``BX-Book-Ratings.csv`` lines are split on ``;`` and each field loses its first and last
  character (the quotes).  A rating ``>= threshold`` is positive, else negative; with the
  paper's threshold 0 every rating (0 = implicit) is positive.  (The issue text says "> 0";
  RippleNet's code uses ``>=``, which we follow: it is what produced the published counts.)
* Users are numbered in order of their first positive rating; users without positives vanish.
* Per user, as many negatives as distinct positives are drawn without replacement from the
  items the user neither rated positively nor negatively.  RippleNet used the global
  ``np.random.seed(555)``; we use an explicit ``numpy.random.Generator(seed)``, so the
  negatives are a different (equally valid) sample — counts and positives are identical.
* KG: item satori ids map to their item index; every other head/tail gets the next index in
  order of first appearance (head before tail, line by line); relations likewise.

Movie synopses: TMDB ``/movie/{tmdbId}`` ``overview`` (``TMDB_API_KEY``, v3 key or v4 token);
without a key, Wikipedia page summaries of "<title> (<year> film)", "<title> (film)",
"<title>" (accepting an article that is a film of that year).  Book genres and synopses:
Goodreads (UCSD Book Graph, optional, ~2 GB) first, else Google Books ``categories`` /
``description``; title, author and year from BX-Books.csv, else Google Books.

Modules: :mod:`.common` (context, helpers, coverage), :mod:`.bookcrossing` (RippleNet conversion,
negative sampling), :mod:`.movies` (TMDB / Wikipedia synopses, ML-20M and ML-100K),
:mod:`.books` (BX-Books, Goodreads, Google Books), :mod:`.fetch` (entry points, CLI).
"""

from __future__ import annotations

from .bookcrossing import (  # noqa: F401
    convert_bookcrossing,
    convert_kg,
    kgcn_counts,
    read_bx_ratings,
    sample_negatives,
)
from .books import book_metadata, goodreads_subset, isbn10_to_13, read_bx_books  # noqa: F401
from .common import (  # noqa: F401
    FETCH_NAMES,
    MISSING_TMDB_KEY,
    MOVIE_TEXT_MODES,
    PAPER_TABLE1,
    PAPER_TEXT,
    WORK,
    ApiKeyError,
    FieldCoverage,
    canonical_name,
)
from .fetch import default_dest, fetch_cli, fetch_dataset  # noqa: F401
from .movies import (  # noqa: F401
    ml100k_synopses,
    movie_synopses,
    movielens_title,
    read_ml100k_titles,
    tmdb_pick,
    wikipedia_candidates,
)
