"""KGCN / RippleNet processed files (ratings_final.txt, kg_final.txt, item_index2entity_id*.txt): Book-
Crossing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import DatasetError, KGDataset, make_items
from .metadata import BOOKS, _read_books, _split_genres
from .parsing import _check_unique, check_dense_ids, drop_duplicate_rows, read_int_table, read_tsv_strings, require_file

# File names of each format (what a folder must hold).
KGCN_RATINGS = "ratings_final.txt"
KGCN_KG = "kg_final.txt"
KGCN_ITEM_MAP_GLOB = "item_index2entity_id*.txt"


# ---------------------------------------------------------------------------------------
# 1. KGCN / RippleNet processed files
# ---------------------------------------------------------------------------------------
def read_kgcn(folder: Path, name: str | None = None, how: str = "") -> KGDataset:
    """Read KGCN/RippleNet processed files from ``folder``.

    ``ratings_final.txt`` (user, item, label) and ``kg_final.txt`` (head, relation, tail) are
    whitespace-separated integers, 0-based, item ``i`` = entity ``i``.  The optional
    ``item_index2entity_id*.txt`` gives, on line ``i``, the raw id of item ``i`` (its first
    column, e.g. an ISBN); it also fixes ``n_items`` (items with no rating stay items).
    Without it, raw ids are the indices and ``n_items = max item + 1``.

    ``n_users = max user + 1``, ``n_entities = max(n_items, max KG entity + 1)``,
    ``n_relations = max relation + 1``.  Metadata comes from ``books.tsv`` (header
    ``isbn title author year genres synopsis``, genres ``|``-joined; written by
    :mod:`kgcl_lib.data.acquire`) joined on the raw id when present, adding an ``author``
    column; otherwise title/year/genres/synopsis are missing.
    """
    folder = Path(folder)
    name = name or folder.name
    rpath = require_file(folder / KGCN_RATINGS, how)
    kpath = require_file(folder / KGCN_KG, how)
    ratings = read_int_table(rpath, 3)
    kg = read_int_table(kpath, 3)
    maps = sorted(folder.glob(KGCN_ITEM_MAP_GLOB))
    raw_ids = None
    if maps:
        m = read_tsv_strings(maps[0], 2, header=False)
        raw_ids = m[0].str.strip().to_numpy(dtype=object)
        _check_unique(m[0], maps[0], "item id", header=False)
    for arr, path, cols in ((ratings, rpath, ("user", "item", "label")), (kg, kpath, ("head", "relation", "tail"))):
        if len(arr) and (arr < 0).any():
            r, c = np.argwhere(arr < 0)[0]
            raise DatasetError(f"{path}:{r + 1}: negative {cols[c]} id {arr[r, c]}")
    bad_label = (ratings[:, 2] != 0) & (ratings[:, 2] != 1)
    if bad_label.any():
        r = int(np.flatnonzero(bad_label)[0])
        raise DatasetError(f"{rpath}:{r + 1}: label {ratings[r, 2]} is not 0 or 1")
    if len(ratings) == 0:
        raise DatasetError(f"{rpath}: no labelled rows")
    max_item = int(ratings[:, 1].max())
    if raw_ids is not None and max_item >= len(raw_ids):
        n_items = len(raw_ids)
        r = int(np.flatnonzero(ratings[:, 1] >= n_items)[0])
        raise DatasetError(
            f"{rpath}:{r + 1}: item id {ratings[r, 1]} out of range 0..{n_items - 1} ({maps[0].name} has {n_items} items)"
        )
    # Ids must lie in the index space their distinct values span, checked *before* anything is
    # sized by them (an id of 10^9 would otherwise allocate gigabytes, see check_dense_ids).
    check_dense_ids(ratings, rpath, [(0, "user")])
    item_floor = len(raw_ids) if raw_ids is not None else 0
    ent_cols = [(0, "head"), (2, "tail")]
    if raw_ids is None:  # items are entities 0..n_items-1: rated items count as entities
        check_dense_ids(kg, kpath, ent_cols, floor=item_floor, also=ratings[:, 1])
        check_dense_ids(ratings, rpath, [(1, "item")], floor=item_floor, also=kg[:, [0, 2]].ravel())
    else:
        check_dense_ids(kg, kpath, ent_cols, floor=item_floor)
    check_dense_ids(kg, kpath, [(1, "relation")])
    ratings = drop_duplicate_rows(ratings, rpath)
    n_items = len(raw_ids) if raw_ids is not None else max_item + 1
    n_ent = int(max(n_items, kg[:, [0, 2]].max() + 1 if len(kg) else 0))
    n_rel = int(kg[:, 1].max() + 1) if len(kg) else 0
    raw = raw_ids if raw_ids is not None else np.arange(n_items).astype(str).astype(object)
    files = [rpath.name, kpath.name] + [p.name for p in maps[:1]]
    if (folder / BOOKS).is_file():
        books = _read_books(folder / BOOKS).reindex(raw)
        items = make_items(raw, title=books["title"].to_numpy(dtype=object), year=books["year"].to_numpy(dtype=object),
                           genres=_split_genres(books["genres"], "|"),
                           synopsis=books["synopsis"].to_numpy(dtype=object),
                           author=books["author"].where(books["author"].notna(), pd.NA).to_numpy(dtype=object))
        files.append(BOOKS)
    else:
        items = make_items(raw)
    return KGDataset(
        name=name,
        ratings=ratings,
        kg=kg,
        n_users=int(ratings[:, 0].max() + 1),
        n_items=n_items,
        n_entities=n_ent,
        n_relations=n_rel,
        items=items,
        user_raw_ids=np.arange(int(ratings[:, 0].max() + 1)).astype(str).astype(object),
        relation_names=np.arange(n_rel).astype(str).astype(object),
        provenance={"format": "kgcn", "files": files},
    )
