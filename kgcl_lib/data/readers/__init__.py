"""Readers: raw dataset files -> :class:`KGDataset`.

Three on-disk formats are understood:

* **KGCN / RippleNet processed** (``ratings_final.txt``, ``kg_final.txt``,
  ``item_index2entity_id*.txt``): already labelled and integer-indexed (Book-Crossing).
* **RecBole atomic files** (``NAME.inter/.item/.kg/.link``, MovieLens-100K with Freebase).
* **Raw MovieLens-20M** (``ratings.csv``, ``movies.csv``, ``links.csv``) with KGCN's
  ``item_index2entity_id.txt`` and ``kg.txt``.

The last two hold explicit ratings and are converted with the KGCN protocol
(:func:`kgcn_convert`, following ``KGCN/src/preprocess.py``):

* a rating ``>= threshold`` is a positive (label 1);
* only items linked to the KG are kept; item ``i`` is entity ``i`` and the items come first
  in the entity index, the other KG entities follow in order of first appearance;
* users are those with at least one positive after filtering (as KGCN), re-indexed
  ``0..n_users-1`` in ascending raw-id order (numeric when the ids are integers);
* for every user, as many negatives (label 0) as positives are sampled uniformly without
  replacement from the linked items the user did **not** rate at all (any rating), with an
  explicit seeded generator.  KGCN would crash when a user rated so many items that fewer
  unrated items remain than positives; we take all that remain and count the shortfall in
  ``provenance["negatives_short"]``.

Every parse error names ``file:line`` and the offending text; a missing file names the file
and how to obtain it.

Modules (every public name is importable from ``kgcl_lib.data.readers``): ``kgcn``, ``recbole``,
``ml20m`` (one per format), ``parsing`` (file:line errors), ``metadata`` (synopses.tsv, books.tsv,
genres), ``sampling`` (negative sampling), ``convert`` (the KGCN protocol), ``folder`` (detection).
"""

from __future__ import annotations

from .parsing import (  # noqa: F401
    check_dense_ids, drop_duplicate_rows, locate_bad_line, read_int_table, read_tsv_strings, require_file,
)
from .metadata import BOOKS, MISSING_GENRES, SYNOPSES, read_synopses  # noqa: F401
from .sampling import is_member, sample_distinct_items, sorted_unique  # noqa: F401
from .convert import index_kg, kgcn_convert, labelled_rows  # noqa: F401
from .kgcn import KGCN_ITEM_MAP_GLOB, KGCN_KG, KGCN_RATINGS, read_kgcn  # noqa: F401
from .recbole import ATOMIC_FIELDS, ATOMIC_REQUIRED, RECBOLE_TYPES, check_atomic_header, read_recbole  # noqa: F401
from .ml20m import ML20M_ITEM_MAP, ML20M_KG, ML20M_LINKS, ML20M_MOVIES, ML20M_RATINGS, read_ml20m_raw  # noqa: F401
from .folder import FORMATS, detect_format, read_folder, source_files  # noqa: F401

