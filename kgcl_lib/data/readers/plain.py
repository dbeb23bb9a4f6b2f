"""The plain format: ``ratings.csv`` [+ ``items.csv``] [+ ``kg.tsv``], string ids (docs/your-data.md).

* ``ratings.csv`` (comma-separated, header): ``user,item`` plus ``rating`` (explicit: KGCN's
  protocol with ``threshold``, one seeded unrated negative per positive), or ``label`` (0/1, used
  as given), or neither (every row a positive; negatives sampled as for ``rating``).
* ``items.csv`` (optional, header): ``item`` plus any of ``title``, ``year``, ``genres``
  (``|``-separated), ``text`` (alias ``synopsis`` / ``description``); other columns are kept as
  item attributes.
* ``kg.tsv`` (optional, tab-separated, no header): ``head, relation, tail``; an entity that is
  an item id *is* that item, any other string is a KG entity.  Without it, a KG is built from
  the attribute columns of ``items.csv``: ``item --column--> column=value`` (multi-valued cells
  split on ``|``; ``kg_columns`` picks the columns), recorded as ``provenance["kg"]``.

Indices (what the split depends on): items are the rated items (with ``kg.tsv``: those that
occur in it or are listed in ``items.csv``, the catalogue -- KGCN keeps only KG-linked items; a
listed item in no triple is an isolated entity), users those with a positive (``rating`` /
implicit) or every user (``label``); both are numbered in ascending id order, numerically when
every id is an integer (the rule of the RecBole conversion); KG entities follow the items in
order of first appearance (head, then tail, line by line), relations are numbered by sorted
name.  So a dataset exported with :func:`kgcl_lib.data.export.write_plain` reads back with the
same indices, rows and seeded negatives.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import DatasetError, KGDataset, make_items
from .convert import _converted_dataset, index_kg, kgcn_convert, labelled_rows
from .metadata import _split_genres
from .parsing import read_tsv_strings, require_file
from .sampling import _sorted_raw_ids

PLAIN_RATINGS = "ratings.csv"
PLAIN_ITEMS = "items.csv"
PLAIN_KG = "kg.tsv"
#: items.csv columns with a meaning; every other column is an attribute (a KG relation when
#: the KG is built from the attributes).
ITEM_TEXT_COLUMNS = ("text", "synopsis", "description")
ITEM_NOT_KG = ("item", "title") + ITEM_TEXT_COLUMNS
#: Separator of multi-valued cells (genres and attribute columns).
MULTI_SEP = "|"
#: provenance["kg"] value (and caption phrase) of a KG built from item attributes.
KG_FROM_ATTRIBUTES = "KG built from item attributes"


def _read_csv(path: Path, required: tuple[str, ...], what: str) -> pd.DataFrame:
    """A comma-separated file with a header, every field a string ("" = empty); ``file:line`` errors."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, engine="c",
                         skipinitialspace=True, skip_blank_lines=True)
    except pd.errors.EmptyDataError as e:
        raise DatasetError(f"{path}:1: empty file; expected a header with {', '.join(required)}") from e
    except (ValueError, pd.errors.ParserError) as e:
        hit = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
        if hit:  # the C parser's message, as file:line with the line's text
            want, no, got = map(int, hit.groups())
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                text = next((line.rstrip("\r\n") for i, line in enumerate(f, start=1) if i == no), "")
            raise DatasetError(f"{path}:{no}: {got} comma-separated fields in {text[:200]!r}, the header has {want} "
                               f"({what}; quote a value that holds a comma)") from e
        raise DatasetError(f"{path}: cannot parse as CSV ({what}): {str(e).strip()}") from e
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}:1: header lacks column(s) {missing}; has {list(df.columns)} ({what})")
    dup = pd.Index(df.columns).duplicated()
    if dup.any():
        raise DatasetError(f"{path}:1: column {df.columns[int(np.flatnonzero(dup)[0])]!r} appears twice in the header")
    for c in df.columns:
        df[c] = df[c].str.strip()
    return df


def _line(df: pd.DataFrame, row: int) -> int:
    """1-based line of data row ``row`` (header on line 1; a quoted cell holding a newline
    shifts later lines, which CSV readers count as one record)."""
    return int(row) + 2


def _check_ids(df: pd.DataFrame, path: Path, cols: tuple[str, ...]) -> None:
    for c in cols:
        empty = (df[c] == "").to_numpy()
        if empty.any():
            r = int(np.flatnonzero(empty)[0])
            raise DatasetError(f"{path}:{_line(df, r)}: empty {c} id")


def _numbers(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise DatasetError(f"{path}:{_line(df, r)}: {col} {df[col].iloc[r]!r} is not a finite number")
    return values


def _check_no_duplicate_pairs(df: pd.DataFrame, path: Path) -> None:
    dup = df.duplicated(subset=["user", "item"], keep="first").to_numpy()
    if dup.any():
        r = int(np.flatnonzero(dup)[0])
        u, i = df["user"].iloc[r], df["item"].iloc[r]
        same = (df["user"] == u).to_numpy() & (df["item"] == i).to_numpy()
        first = int(np.flatnonzero(same)[0])
        raise DatasetError(f"{path}:{_line(df, r)}: duplicate row for user {u!r} item {i!r} (first on line "
                           f"{_line(df, first)}); keep one row per (user, item)")


def read_items_csv(path: Path) -> pd.DataFrame:
    """``items.csv`` indexed by item id (str), columns as in the file minus ``item``."""
    df = _read_csv(path, ("item",), "item metadata")
    _check_ids(df, path, ("item",))
    dup = df["item"].duplicated().to_numpy()
    if dup.any():
        r = int(np.flatnonzero(dup)[0])
        raise DatasetError(f"{path}:{_line(df, r)}: duplicate item {df['item'].iloc[r]!r}")
    text_cols = [c for c in ITEM_TEXT_COLUMNS if c in df.columns]
    if len(text_cols) > 1:
        raise DatasetError(f"{path}:1: columns {text_cols} all hold item text; keep one (text)")
    if "year" in df.columns:
        year = pd.to_numeric(df["year"], errors="coerce")
        bad = (df["year"] != "").to_numpy() & (year.isna().to_numpy() | (year % 1 != 0).fillna(False).to_numpy())
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{path}:{_line(df, r)}: year {df['year'].iloc[r]!r} is not an integer")
    return df.set_index("item")


def _attribute_kg(meta: pd.DataFrame, item_raw: np.ndarray, columns, path: Path):
    """``(head, relation, tail)`` string arrays of ``item --column--> column=value`` triples."""
    cols = [c for c in meta.columns if c not in ITEM_NOT_KG] if columns is None else list(columns)
    missing = [c for c in cols if c not in meta.columns]
    if missing:
        raise DatasetError(f"{path}:1: kg_columns {missing} are not columns of items.csv (has {list(meta.columns)})")
    bad = [c for c in cols if c in ITEM_NOT_KG]
    if bad:
        raise DatasetError(f"kg_columns {bad}: item ids, titles and texts are not KG attributes")
    sub = meta.reindex(item_raw)
    heads, rels, tails = [], [], []
    for c in cols:  # a loop over columns (a handful), each vectorised over items
        cell = sub[c].fillna("").astype(str)
        values = cell.str.split(MULTI_SEP).explode().str.strip()
        values = values[values != ""]
        keep = ~pd.DataFrame({"i": values.index, "v": values.to_numpy()}).duplicated().to_numpy()
        values = values[keep]
        heads.append(values.index.to_numpy(dtype=object))
        rels.append(np.full(len(values), c, dtype=object))
        tails.append((c + "=" + values).to_numpy(dtype=object))
    if not heads:
        return (np.zeros(0, dtype=object),) * 3 + ([],)
    return np.concatenate(heads), np.concatenate(rels), np.concatenate(tails), cols


def read_plain(folder: Path, name: str | None = None, *, threshold: float = 4, seed: int | np.random.Generator = 0,
               kg_columns=None, how: str = "") -> KGDataset:
    """Read a plain-format folder (module docstring) into a :class:`KGDataset`.

    Args:
        threshold: ``rating >= threshold`` is a positive (``rating`` column only).
        seed: int or generator for the negative sampling (``rating`` / implicit).
        kg_columns: items.csv columns that become KG relations when there is no ``kg.tsv``
            (default: every column but item, title and the text column).
    """
    folder = Path(folder)
    name = name or folder.name
    rpath = require_file(folder / PLAIN_RATINGS, how)
    ipath, kpath = folder / PLAIN_ITEMS, folder / PLAIN_KG
    df = _read_csv(rpath, ("user", "item"), "user-item interactions")
    if "rating" in df.columns and "label" in df.columns:
        raise DatasetError(f"{rpath}:1: header has both rating and label; keep one (rating: explicit, "
                           "positives >= threshold; label: 0/1 used as given)")
    _check_ids(df, rpath, ("user", "item"))
    if len(df) == 0:
        raise DatasetError(f"{rpath}: no rows after the header")
    mode = "rating" if "rating" in df.columns else "label" if "label" in df.columns else "implicit"
    value = None
    if mode == "rating":
        value = _numbers(df, "rating", rpath)
    elif mode == "label":
        bad = ~df["label"].isin(("0", "1")).to_numpy()
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{rpath}:{_line(df, r)}: label {df['label'].iloc[r]!r} is not 0 or 1")
    _check_no_duplicate_pairs(df, rpath)
    meta = read_items_csv(ipath) if ipath.is_file() else None
    rated = pd.Index(pd.unique(df["item"].to_numpy(dtype=object)))

    if kpath.is_file():
        kgdf = read_tsv_strings(kpath, 3, header=False)
        for c in range(3):
            kgdf[c] = kgdf[c].str.strip()
            empty = (kgdf[c] == "").to_numpy()
            if empty.any():
                r = int(np.flatnonzero(empty)[0])
                raise DatasetError(f"{kpath}:{r + 1}: empty {('head', 'relation', 'tail')[c]}")
        ends = pd.Index(pd.unique(np.concatenate([kgdf[0].to_numpy(dtype=object), kgdf[2].to_numpy(dtype=object)])))
        if meta is not None:  # an items.csv id in kg.tsv without a rating: a typo or a foreign KG
            orphan = meta.index[meta.index.isin(ends) & ~meta.index.isin(rated)]
            if len(orphan):
                o = orphan[0]
                hit = ((kgdf[0] == o) | (kgdf[2] == o)).to_numpy()
                r = int(np.flatnonzero(hit)[0])
                raise DatasetError(f"{kpath}:{r + 1}: item {o!r} (listed in {PLAIN_ITEMS}) is absent from "
                                   f"{PLAIN_RATINGS}; every item in the KG needs at least one rating")
        linked = rated.isin(ends) | (rated.isin(meta.index) if meta is not None else False)
        item_raw = _sorted_raw_ids(rated[linked].to_numpy(dtype=object))
        if len(item_raw) == 0:
            raise DatasetError(f"{kpath}: no item of {PLAIN_RATINGS} occurs in the KG (items are named by their "
                               f"item id, e.g. {rated[0]!r})")
        head, rel, tail = (kgdf[c].to_numpy(dtype=object) for c in range(3))
        kg_source = PLAIN_KG
    else:
        item_raw = _sorted_raw_ids(rated.to_numpy(dtype=object))
        head = rel = tail = np.zeros(0, dtype=object)
        kg_source = "none"
        if meta is not None:
            head, rel, tail, used = _attribute_kg(meta, item_raw, kg_columns, ipath)
            if len(head):
                kg_source = f"{KG_FROM_ATTRIBUTES} ({', '.join(used)})"
    n_items = len(item_raw)
    kg, entity_raw_ids, relation_names = index_kg(head, rel, tail, item_raw, relation_order="sorted")

    item_idx = pd.Index(item_raw.astype(str)).get_indexer(df["item"].to_numpy(dtype=object))
    rng = np.random.default_rng(seed)
    if mode == "label":
        linked = item_idx >= 0
        users = df["user"].to_numpy(dtype=object)[linked]
        user_raw_ids = _sorted_raw_ids(users)
        uidx = pd.Index(user_raw_ids.astype(str)).get_indexer(users)
        lab = df["label"].to_numpy(dtype=object)[linked] == "1"
        it = item_idx[linked]
        pos = np.lexsort((it[lab], uidx[lab]))
        neg = np.lexsort((it[~lab], uidx[~lab]))
        ratings = labelled_rows(uidx[lab][pos], it[lab][pos], uidx[~lab][neg], it[~lab][neg], len(user_raw_ids))
        user_raw_ids = user_raw_ids.astype(str).astype(object)
        info = {"positives": int(lab.sum()), "negatives": int((~lab).sum()), "negatives_short": 0,
                "dropped_unlinked": int(len(df) - linked.sum())}
    else:
        rating = value if mode == "rating" else np.ones(len(df))
        ratings, user_raw_ids, info = kgcn_convert(
            df["user"].to_numpy(dtype=object), item_idx, rating, n_items, threshold if mode == "rating" else 1.0,
            rng, str(rpath))

    title = year = genres = synopsis = None
    extra = {}
    if meta is not None:
        sub = meta.reindex(item_raw)
        title = sub["title"].to_numpy(dtype=object) if "title" in sub else None
        year = sub["year"].to_numpy(dtype=object) if "year" in sub else None
        genres = _split_genres(sub["genres"], MULTI_SEP) if "genres" in sub else None
        text_col = next((c for c in ITEM_TEXT_COLUMNS if c in sub.columns), None)
        synopsis = sub[text_col].to_numpy(dtype=object) if text_col else None
        for c in sub.columns:
            if c not in ITEM_NOT_KG + ("year", "genres"):
                col = sub[c].to_numpy(dtype=object)
                extra[c] = np.where(pd.isna(col) | (col == ""), None, col)
    items = make_items(item_raw, title=title, year=year, genres=genres, synopsis=synopsis, **extra)
    files = [p.name for p in (rpath, ipath, kpath) if p.is_file()]
    ds = _converted_dataset(name, "plain", files, ratings, kg, items, user_raw_ids, entity_raw_ids, relation_names,
                            n_items, threshold if mode == "rating" else None, seed, info)
    ds.provenance.update({"ratings": mode, "kg": kg_source})
    return ds
