"""RecBole atomic files (NAME.inter/.item/.kg/.link): MovieLens-100K with Freebase."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import DatasetError, KGDataset, make_items
from .convert import _converted_dataset, index_kg, kgcn_convert
from .metadata import SYNOPSES, _first_col, _split_genres, read_synopses
from .parsing import _check_unique, read_tsv_strings, require_file
from .sampling import _sorted_raw_ids

# ---------------------------------------------------------------------------------------
# 2. RecBole atomic files
# ---------------------------------------------------------------------------------------
#: RecBole field types (``name:type`` in an atomic file's header).
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
#: Header fields each atomic file may hold, by extension; ``None`` = any (unknown ones are
#: named in a warning).  A field outside the list of a file the conversion depends on is an
#: error: a misspelt ``rating`` would otherwise silently turn every interaction positive.
ATOMIC_FIELDS = {
    "inter": ("user_id", "item_id", "rating", "timestamp"),
    "kg": ("head_id", "relation_id", "tail_id"),
    "link": ("item_id", "entity_id"),
    "item": ("item_id", "movie_title", "title", "book_title", "release_year", "year", "class", "genre", "genres"),
}
#: Fields an atomic file must hold (``.inter`` is explicit feedback: ratings are required).
ATOMIC_REQUIRED = {
    "inter": ("user_id", "item_id", "rating"),
    "kg": ("head_id", "relation_id", "tail_id"),
    "link": ("item_id", "entity_id"),
    "item": ("item_id",),
}


def _first_data_line(path: Path) -> tuple[int, str] | None:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        f.readline()
        for no, line in enumerate(f, start=2):
            text = line.rstrip("\r\n")
            if text.strip():
                return no, text
    return None


def check_atomic_header(path: Path, header: list[str], kind: str | None = None) -> None:
    """Validate a RecBole header (line 1); every problem is reported as ``file:1``.

    Checks: tab separation (a header with spaces instead of tabs), one ``name:type`` per
    field with a RecBole type, as many fields as the first data line, no unknown fields
    (error for ``.inter/.kg/.link``, warning for ``.item``) and the required fields of ``kind``.
    """
    shown = "\t".join(header)
    if len(header) == 1 and len(header[0].split()) > 1:
        raise DatasetError(f"{path}:1: header {shown!r} is separated by spaces; RecBole atomic files are tab-separated")
    bad = [h for h in header if h.count(":") != 1 or h.split(":", 1)[1].strip() not in RECBOLE_TYPES]
    if bad:
        raise DatasetError(f"{path}:1: header field(s) {bad} are not name:type with a type in {RECBOLE_TYPES}")
    first = _first_data_line(path)
    if first is not None and len(first[1].split("\t")) != len(header):
        no, text = first
        raise DatasetError(
            f"{path}:1: header has {len(header)} fields {header} but data line {no} has "
            f"{len(text.split(chr(9)))} tab-separated fields ({text[:80]!r}); fix the header"
        )
    if kind is None:
        return
    names = [h.split(":", 1)[0].strip() for h in header]
    known = ATOMIC_FIELDS[kind]
    unknown = [h for h, n in zip(header, names) if n not in known]
    missing = [n for n in ATOMIC_REQUIRED[kind] if n not in names]
    if missing or (unknown and kind != "item"):
        what = f"lacks column(s) {missing}" if missing else "has unknown field(s)"
        raise DatasetError(
            f"{path}:1: header {what}; unknown field(s): {', '.join(map(repr, unknown)) or 'none'}; "
            f"a .{kind} file holds {', '.join(known)} (required: {', '.join(ATOMIC_REQUIRED[kind])})"
        )
    if unknown:
        warnings.warn(f"{path}:1: ignoring unknown field(s) {', '.join(map(repr, unknown))}", stacklevel=3)


def read_atomic(path: Path, kind: str | None = None) -> pd.DataFrame:
    """A RecBole atomic file: tab-separated, header ``name:type``; columns renamed to ``name``.

    ``kind`` (``"inter"``, ``"kg"``, ``"link"``, ``"item"``) selects the field check of
    :func:`check_atomic_header`.
    """
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
    check_atomic_header(path, header, kind)
    names = [h.split(":", 1)[0] for h in header]
    df = read_tsv_strings(path, len(names), header=True)
    df.columns = names
    return df


def _require_cols(df: pd.DataFrame, path: Path, *cols: str):
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}:1: header lacks column(s) {missing}; has {list(df.columns)}")


def read_recbole(
    folder: Path,
    name: str | None = None,
    *,
    threshold: float = 4,
    seed: int | np.random.Generator = 0,
    synopses: Path | None = None,
    how: str = "",
) -> KGDataset:
    """Read RecBole atomic files ``NAME.inter/.item/.kg/.link`` and convert with KGCN's protocol.

    Args:
        folder: holds the atomic files; ``NAME`` defaults to the stem of the single ``*.inter``.
        threshold: ``rating >= threshold`` is a positive.  The ``.inter`` file must have a
            ``rating`` field (explicit feedback); see :func:`check_atomic_header`.
        seed: int or generator for the negative sampling.
        synopses: ``synopses.tsv``; default ``folder/synopses.tsv`` when it exists.

    Items are the KG-linked items (``.link``) in ascending raw item id; the items table takes
    ``movie_title``/``title``, ``release_year``/``year`` (non-numeric -> missing) and
    ``class``/``genre`` split on spaces (``unknown`` -> no genre).  Relations are numbered by
    sorted name.
    """
    folder = Path(folder)
    if name is None:
        inters = sorted(folder.glob("*.inter"))
        if len(inters) != 1:
            raise DatasetError(f"{folder}: expected one RecBole *.inter file, found {[p.name for p in inters]}. {how}")
        name = inters[0].stem
    paths = {ext: folder / f"{name}.{ext}" for ext in ("inter", "item", "kg", "link")}
    for ext in ("inter", "kg", "link"):
        require_file(paths[ext], how)
    rng = np.random.default_rng(seed)

    link = read_atomic(paths["link"], "link")
    _require_cols(link, paths["link"], "item_id", "entity_id")
    link_item, link_ent = link["item_id"].str.strip(), link["entity_id"].str.strip()
    _check_unique(link_item, paths["link"], "item id", header=True)
    _check_unique(link_ent, paths["link"], "entity id", header=True)
    item_raw = _sorted_raw_ids(link_item.to_numpy(dtype=object))
    ent_of = pd.Series(link_ent.to_numpy(dtype=object), index=link_item.to_numpy(dtype=object))
    item_entities = ent_of.loc[item_raw].to_numpy(dtype=object)
    n_items = len(item_raw)
    if n_items == 0:
        raise DatasetError(f"{paths['link']}: no linked items")

    inter = read_atomic(paths["inter"], "inter")
    _require_cols(inter, paths["inter"], "user_id", "item_id")
    rating = pd.to_numeric(inter["rating"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(rating).any():
        r = int(np.flatnonzero(np.isnan(rating))[0])
        raise DatasetError(f"{paths['inter']}:{r + 2}: rating {inter['rating'].iloc[r]!r} is not a number")
    item_idx = pd.Index(item_raw.astype(str)).get_indexer(inter["item_id"].str.strip())
    ratings, user_raw_ids, info = kgcn_convert(
        inter["user_id"].str.strip().to_numpy(dtype=object), item_idx, rating, n_items, threshold, rng, str(paths["inter"])
    )

    kgdf = read_atomic(paths["kg"], "kg")
    _require_cols(kgdf, paths["kg"], "head_id", "relation_id", "tail_id")
    kg, entity_raw_ids, relation_names = index_kg(
        kgdf["head_id"].str.strip().to_numpy(), kgdf["relation_id"].str.strip().to_numpy(),
        kgdf["tail_id"].str.strip().to_numpy(), item_entities, relation_order="sorted",
    )

    title = year = genres = None
    if paths["item"].is_file():
        meta = read_atomic(paths["item"], "item")
        _require_cols(meta, paths["item"], "item_id")
        meta.index = meta["item_id"].str.strip().to_numpy(dtype=object)
        _check_unique(meta["item_id"].str.strip(), paths["item"], "item id", header=True)
        meta = meta.reindex(item_raw)
        t = _first_col(meta, "movie_title", "title", "book_title")
        title = None if t is None else t.to_numpy(dtype=object)
        y = _first_col(meta, "release_year", "year")
        year = None if y is None else y.to_numpy(dtype=object)
        g = _first_col(meta, "class", "genre", "genres")
        if g is not None:
            genres = _split_genres(g, " ")
    syn_path = Path(synopses) if synopses is not None else folder / SYNOPSES
    synopsis = None
    if syn_path.is_file():
        synopsis = read_synopses(syn_path).reindex(item_raw).to_numpy(dtype=object)
    items = make_items(item_raw, title=title, year=year, genres=genres, synopsis=synopsis)
    files = [paths[e].name for e in ("inter", "item", "kg", "link") if paths[e].is_file()]
    files = files + ([syn_path.name] if synopsis is not None else [])
    return _converted_dataset(name, "recbole", files, ratings, kg, items, user_raw_ids, entity_raw_ids,
                              relation_names, n_items, threshold, seed, info)
