"""Raw MovieLens-20M (ratings.csv, movies.csv, links.csv) with KGCN's item_index2entity_id.txt and
kg.txt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import DatasetError, KGDataset, make_items
from .convert import _converted_dataset, index_kg, kgcn_convert
from .metadata import SYNOPSES, _split_genres, read_synopses
from .parsing import _check_unique, _is_float, _is_int, _raise_bad, _read_small_csv, read_tsv_strings, require_file

ML20M_RATINGS = "ratings.csv"
ML20M_MOVIES = "movies.csv"
ML20M_LINKS = "links.csv"
ML20M_ITEM_MAP = "item_index2entity_id.txt"
ML20M_KG = "kg.txt"


# ---------------------------------------------------------------------------------------
# 3. Raw MovieLens-20M + KGCN's item map and KG
# ---------------------------------------------------------------------------------------
_YEAR_RE = r"\s*\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$"


def _read_ratings_csv(path: Path, movie_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Stream ``ratings.csv`` (header ``userId,movieId,rating[,timestamp]``) with pyarrow and keep
    only ratings of linked movies.

    Args:
        movie_ids: ``int64[n_items]`` movieId of item ``i``.

    Returns:
        ``(user int64[m], item int32[m], rating float32[m], dropped)``: the ratings of linked
        movies (item index) and how many others were dropped.  Filtering each 16 MB block as it
        is parsed keeps the peak memory near the size of the kept columns, not the file's.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    ok = lambda f: len(f) >= 3 and _is_int(f[0]) and _is_int(f[1]) and int(f[1]) >= 0 and _is_float(f[2])  # noqa: E731
    expect = "userId,movieId,rating,timestamp with a non-negative movieId"
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    want = ["userId", "movieId", "rating"]
    if header[:3] != want:
        raise DatasetError(f"{path}:1: header {header!r} does not start with {want}")
    hi = int(movie_ids.max()) + 1
    lookup = np.full(hi, -1, dtype=np.int32)  # movieId -> item index (ids are small ints)
    lookup[movie_ids] = np.arange(len(movie_ids), dtype=np.int32)
    users, items, ratings, dropped = [], [], [], 0
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types={"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float32()},
                include_columns=want,
            ),
        )
        for batch in reader:
            cols = [batch.column(c) for c in want]
            if any(c.null_count for c in cols):
                _raise_bad(path, ok, ",", 1, expect)
            u, m, r = (c.to_numpy() for c in cols)
            if len(m) and m.min() < 0:
                _raise_bad(path, ok, ",", 1, expect)
            item = np.full(len(m), -1, dtype=np.int32)
            known = m < hi
            item[known] = lookup[m[known]]
            keep = item >= 0
            dropped += int(len(keep) - np.count_nonzero(keep))
            users.append(u[keep])
            items.append(item[keep])
            ratings.append(r[keep])
    except pa.ArrowInvalid as e:  # parse errors only (DatasetError is a ValueError too)
        _raise_bad(path, ok, ",", 1, expect, e)
    pa.default_memory_pool().release_unused()
    cat = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dtype=dt)  # noqa: E731
    return cat(users, np.int64), cat(items, np.int32), cat(ratings, np.float32), dropped


def read_ml20m_raw(
    folder: Path,
    name: str = "ml-20m",
    *,
    threshold: float = 4,
    seed: int | np.random.Generator = 0,
    how: str = "",
) -> KGDataset:
    """Read raw MovieLens-20M plus KGCN's ``item_index2entity_id.txt`` / ``kg.txt``.

    Follows KGCN's preprocess.py: items are the movies of ``item_index2entity_id.txt`` in file
    order (item ``i`` = line ``i`` = entity ``i``), ratings of other movies are dropped,
    ``rating >= threshold`` is positive, one negative per positive among unrated items;
    ``kg.txt`` (``head<TAB>relation<TAB>tail``, raw ids) is re-indexed items first, other
    entities and the relations in order of first appearance.

    ``movies.csv`` (title with ``(year)`` suffix, ``A|B`` genres) and ``links.csv``
    (``imdbId``, ``tmdbId``) are optional; when present the items table gets title/year/genres
    and the extra columns ``imdb_id`` (str) and ``tmdb_id`` (Int64) after the standard ones.
    ``synopses.tsv`` (``item_id`` = movieId, written by :mod:`kgcl_lib.data.acquire`) fills
    the synopses when present.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    rpath = require_file(folder / ML20M_RATINGS, how)
    mpath = require_file(folder / ML20M_ITEM_MAP, how)
    kpath = require_file(folder / ML20M_KG, how)

    imap = read_tsv_strings(mpath, 2, header=False)
    if not imap[0].str.strip().str.fullmatch(r"\d+").all():
        r = int(np.flatnonzero(~imap[0].str.strip().str.fullmatch(r"\d+").to_numpy())[0])
        raise DatasetError(f"{mpath}:{r + 1}: movie id {imap[0].iloc[r]!r} is not an integer")
    movie_ids = imap[0].str.strip().astype(np.int64).to_numpy()
    _check_unique(pd.Series(movie_ids), mpath, "movie id", header=False)
    _check_unique(imap[1].str.strip(), mpath, "entity id", header=False)
    limit = max(64 * len(movie_ids), 1 << 24)  # the ratings reader allocates a table of max id + 1
    if len(movie_ids) and movie_ids.max() >= limit:
        r = int(np.argmax(movie_ids))
        raise DatasetError(f"{mpath}:{r + 1}: movie id {movie_ids[r]} out of range 0..{limit - 1} "
                           f"(MovieLens ids are below 300,000)")
    n_items = len(movie_ids)
    if n_items == 0:
        raise DatasetError(f"{mpath}: no items")

    user, item, rating, dropped = _read_ratings_csv(rpath, movie_ids)
    ratings, user_raw_ids, info = kgcn_convert(user, item, rating, n_items, threshold, rng, str(rpath), dropped)
    del user, item, rating

    kgdf = read_tsv_strings(kpath, 3, header=False)
    kg, entity_raw_ids, relation_names = index_kg(
        kgdf[0].str.strip().to_numpy(), kgdf[1].str.strip().to_numpy(), kgdf[2].str.strip().to_numpy(),
        imap[1].str.strip().to_numpy(dtype=object), relation_order="first",
    )

    title = year = genres = None
    extra = {}
    files = [rpath.name, mpath.name, kpath.name]
    movies_path, links_path = folder / ML20M_MOVIES, folder / ML20M_LINKS
    if movies_path.is_file():
        mv = _read_small_csv(movies_path, ["movieId", "title", "genres"])
        mv = mv.drop_duplicates("movieId").set_index("movieId").reindex(movie_ids)
        raw_title = mv["title"].astype("object")
        year = raw_title.str.extract(_YEAR_RE, expand=False).to_numpy(dtype=object)
        title = raw_title.str.replace(_YEAR_RE, "", regex=True).str.strip().to_numpy(dtype=object)
        genres = _split_genres(mv["genres"], "|")
        files.append(movies_path.name)
    if links_path.is_file():
        ln = _read_small_csv(links_path, ["movieId", "imdbId", "tmdbId"])
        ln = ln.drop_duplicates("movieId").set_index("movieId").reindex(movie_ids)
        extra["imdb_id"] = ln["imdbId"].astype("object").where(ln["imdbId"].notna(), pd.NA).to_numpy(dtype=object)
        extra["tmdb_id"] = pd.array(pd.to_numeric(ln["tmdbId"], errors="coerce"), dtype="Float64").round().astype("Int64")
        files.append(links_path.name)
    synopsis = None
    if (folder / SYNOPSES).is_file():
        synopsis = read_synopses(folder / SYNOPSES).reindex(movie_ids.astype(str)).to_numpy(dtype=object)
        files.append(SYNOPSES)
    items = make_items(movie_ids, title=title, year=year, genres=genres, synopsis=synopsis, **extra)
    return _converted_dataset(name, "ml20m-raw", files, ratings, kg, items, user_raw_ids, entity_raw_ids,
                              relation_names, n_items, threshold, seed, info)
