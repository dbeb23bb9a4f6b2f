"""Item metadata files shared by the formats: synopses.tsv, books.tsv and genre columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import DatasetError
from .parsing import _check_unique, read_tsv_strings

SYNOPSES = "synopses.tsv"
BOOKS = "books.tsv"  # isbn, title, author, year, genres ("|"-joined), synopsis (kgcl_lib.data.acquire)

#: Genre tokens that mean "no genre" (ML-100K's ``unknown``, ML-20M's ``(no genres listed)``).
MISSING_GENRES = frozenset({"unknown", "(no genres listed)"})


def _first_col(df: pd.DataFrame, *candidates: str) -> pd.Series | None:
    for c in candidates:
        if c in df.columns:
            return df[c]
    return None


def _read_books(path: Path) -> pd.DataFrame:
    """``books.tsv`` indexed by ISBN; empty cells are missing."""
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
    want = ["isbn", "title", "author", "year", "genres", "synopsis"]
    if header != want:
        raise DatasetError(f"{path}:1: header {header!r}, expected {want!r}")
    df = read_tsv_strings(path, len(want), header=True)
    df.columns = want
    df["isbn"] = df["isbn"].str.strip()
    _check_unique(df["isbn"], path, "isbn", header=True)
    df = df.set_index("isbn").astype(object)
    return df.where(df.apply(lambda c: c.astype(str).str.strip() != ""), None)


def read_synopses(path: Path) -> pd.Series:
    """``synopses.tsv`` (header ``item_id<TAB>synopsis``) as a Series raw item id (str) -> text."""
    df = read_tsv_strings(path, 2, header=True)
    if not len(df):  # e.g. written by an offline fetch: an error, not "no synopses" (which is absence of the file)
        raise DatasetError(f"{path}: holds no synopses (only its header line); delete it, or run "
                           f"python -m kgcl_lib.data fetch again with network access")
    _check_unique(df[0], path, "item id", header=True)
    return pd.Series(df[1].to_numpy(dtype=object), index=df[0].str.strip().to_numpy(dtype=object))


def _split_genres(col: pd.Series, sep: str) -> list[tuple]:
    """Split a genre column into tuples, dropping :data:`MISSING_GENRES` tokens.

    Vectorised over distinct strings: genre strings repeat a lot, so split each once.
    """
    s = col.fillna("").astype(str)
    codes, uniq = pd.factorize(s)
    split = [tuple(t for t in u.split(sep) if t and t not in MISSING_GENRES) for u in uniq]
    table = np.empty(len(split) + 1, dtype=object)
    table[:-1] = split
    table[-1] = ()
    return list(table[codes])  # code -1 (NaN) -> last slot = ()
