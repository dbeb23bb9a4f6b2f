"""Synthetic datasets of any real dataset's shape, and writers for every on-disk format.

:func:`make_synthetic` builds a :class:`KGDataset` with exactly the requested counts (users,
items, labelled rows, entities, relations, triples): power-law user activity and item
popularity, one uniformly sampled unrated negative per positive (as KGCN), a KG whose
non-item entities are attached to items with power-law popularity (hub entities such as
genres), and items with genres, years, titles and short texts (some missing, as in real data).

The writers (:func:`write_kgcn`, :func:`write_recbole`, :func:`write_ml20m_raw`) put a dataset
on disk in each reader's format so readers are tested round-trip.  Raw formats hold explicit
ratings, so they receive the positives only (as ratings ``>= threshold``): label-0 rows are
KGCN's *sampled* negatives, not ratings, and a reader samples new ones.

:func:`make_ml20m_raw` writes a raw MovieLens-20M-shaped file set (20,000,263 ratings by
default, including ratings below the threshold and movies without a KG link) for benchmarks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import storage
from .dataset import DatasetError, KGDataset, make_items
from .readers import is_member, labelled_rows, sample_distinct_items, sorted_unique


@dataclass(frozen=True)
class SyntheticShape:
    """Target counts of a synthetic dataset.

    Attributes:
        name: preset name (also the dataset name, prefixed ``synthetic:``).
        n_users: users (each gets at least one positive).
        n_items: items (= the first ``n_items`` entities).
        n_rows: labelled rows, even: ``n_rows / 2`` positives + as many sampled negatives.
        n_entities: KG entities, items included; every non-item entity is in some triple.
        n_relations: relations; every one is used.
        n_triples: distinct KG triples (``>= n_entities - n_items``).
        user_exponent: activity of the user of rank ``r`` is proportional to ``r ** -a``.
        item_exponent: popularity of the item of rank ``r`` is proportional to ``r ** -b``.
        n_genres: size of the genre vocabulary (items get 1-3 genres).
        missing_fraction: share of items without a synopsis (half as many lack a year, a
            quarter lack genres).
    """

    name: str
    n_users: int
    n_items: int
    n_rows: int
    n_entities: int
    n_relations: int
    n_triples: int
    user_exponent: float = 1.0
    item_exponent: float = 1.0
    n_genres: int = 18
    missing_fraction: float = 0.1


#: Named presets: the paper's Table 1 (ML-20M, Book-Crossing), our ML-100K conversion, a toy.
SHAPES = {
    "ml-20m": SyntheticShape("ml-20m", 138_159, 16_954, 13_501_622, 102_569, 32, 499_474),
    "book-crossing": SyntheticShape("book-crossing", 17_860, 14_967, 139_746, 77_903, 25, 151_500),
    "ml-100k": SyntheticShape("ml-100k", 942, 1_598, 108_608, 34_628, 24, 91_631),
    "tiny": SyntheticShape("tiny", 12, 20, 80, 40, 3, 60),
}

GENRES = (
    "Drama", "Comedy", "Action", "Thriller", "Romance", "Adventure", "Children's", "Crime", "Sci-Fi",
    "Horror", "War", "Mystery", "Musical", "Documentary", "Animation", "Western", "Film-Noir", "Fantasy",
)  # fmt: skip
_WORDS = np.array(
    "a an the young old man woman family city war love secret journey night house dark friend "
    "story life world king girl boy team mission stranger past island town lost last first new "
    "must find save fight escape discover return face learn hunt meet win lose help".split()
)
#: MovieLens-20M's rating values and their frequencies (counts / 20,000,263).
ML_RATINGS = np.arange(1, 11) / 2
ML_RATING_P = np.array(
    [239_125, 680_732, 279_252, 1_430_997, 883_398, 4_291_193, 2_200_156, 5_561_926, 1_534_824, 2_898_660], dtype=float
)
ML_RATING_P /= ML_RATING_P.sum()


# ---------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------
def powerlaw_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``float[n]``: ``rank ** -exponent`` with ranks ``1..n`` assigned in random order."""
    return (1.0 + rng.permutation(n)) ** -float(exponent)


def allocate(total: int, weights: np.ndarray, cap: int, minimum: int = 1) -> np.ndarray:
    """Integer counts ``minimum <= c_i <= cap`` with ``sum(c) == total``, ``c_i - minimum``
    proportional to ``weights`` except where capped (water-filling, then largest remainders).
    """
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    if not (minimum * n <= total <= cap * n):
        raise DatasetError(f"cannot spread {total} over {n} slots with {minimum} <= count <= {cap}")
    rest, room = total - minimum * n, cap - minimum
    lo, hi = 0.0, room / w.min() if n else 0.0
    for _ in range(200):  # bisection on the water level
        mid = (lo + hi) / 2
        if np.minimum(room, mid * w).sum() < rest:
            lo = mid
        else:
            hi = mid
    x = np.minimum(room, hi * w)
    base = np.floor(x).astype(np.int64)
    base = np.minimum(base, room)
    short = rest - int(base.sum())
    if short < 0:  # rounding overshoot: take from the largest
        order = np.argsort(-base, kind="stable")[: -short]
        base[order] -= 1
    elif short > 0:
        frac = np.where(base < room, x - base, -1.0)
        order = np.argsort(-frac, kind="stable")[:short]
        base[order] += 1
    counts = base + minimum
    if counts.sum() != total or counts.max(initial=minimum) > cap:
        raise DatasetError(f"allocation failed: sum {counts.sum()} != {total}")
    return counts


def make_kg(n_items: int, n_entities: int, n_relations: int, n_triples: int, rng: np.random.Generator,
            item_weights: np.ndarray | None = None) -> np.ndarray:
    """``int64[n_triples, 3]`` distinct ``(item, relation, entity)`` triples, sorted.

    Every non-item entity ``n_items..n_entities-1`` appears at least once and has one
    relation type (the first ``n_relations`` of them cover every relation); heads are items
    drawn by ``item_weights`` (default uniform), tails by a power law (hub entities).
    """
    n_other = n_entities - n_items
    if n_other < 0 or n_relations < 1:
        raise DatasetError(f"KG shape: n_entities {n_entities} < n_items {n_items} or no relations")
    if n_triples < n_other or n_other < n_relations or (n_triples and n_other == 0):
        raise DatasetError(
            f"KG shape infeasible: {n_triples} triples for {n_other} non-item entities and {n_relations} relations"
        )
    rel_of = np.concatenate([np.arange(n_relations), rng.integers(0, n_relations, n_other - n_relations)])
    rel_of = rel_of[rng.permutation(n_other)] if n_other > n_relations else rel_of
    cdf_h = None if item_weights is None else np.cumsum(item_weights) / np.sum(item_weights)

    def heads(n):
        if cdf_h is None:
            return rng.integers(0, n_items, n)
        return np.minimum(np.searchsorted(cdf_h, rng.random(n), side="right"), n_items - 1)

    tail_cdf = np.cumsum(powerlaw_weights(n_other, 1.0, rng))
    tail_cdf /= tail_cdf[-1]
    # Coverage: each non-item entity once; then power-law tails until n_triples distinct pairs.
    keys = sorted_unique(heads(n_other) * n_entities + (n_items + np.arange(n_other)))
    for _ in range(100):
        missing = n_triples - len(keys)
        if missing <= 0:
            break
        t = n_items + np.minimum(np.searchsorted(tail_cdf, rng.random(missing), side="right"), n_other - 1)
        new = sorted_unique(heads(missing) * n_entities + t)
        new = new[~is_member(keys, new)]
        keys = np.sort(np.concatenate([keys, new]))
    else:
        raise DatasetError(f"could not draw {n_triples} distinct triples")
    # Each round adds at most `missing` keys, so there are exactly n_triples now.
    h, t = keys // n_entities, keys % n_entities
    return np.stack([h, rel_of[t - n_items], t], axis=1).astype(np.int64)


def make_item_table(n_items: int, rng: np.random.Generator, n_genres: int = 18, missing_fraction: float = 0.1,
                    raw_ids=None) -> pd.DataFrame:
    """Items with titles, years (1920-2015), 1-3 power-law genres and 8-word synopses."""
    names = np.array(list(GENRES[:n_genres]) + [f"Genre{g}" for g in range(len(GENRES), n_genres)], dtype=object)
    raw = np.arange(1, n_items + 1).astype(str) if raw_ids is None else np.asarray(raw_ids).astype(str)
    # Genres: a bitmask per item, turned into tuples once per distinct combination.
    gp = powerlaw_weights(n_genres, 1.0, rng)
    picks = rng.choice(n_genres, size=(n_items, 3), p=gp / gp.sum())
    k = rng.integers(1, 4, n_items)
    mask = np.zeros((n_items, n_genres), dtype=bool)
    rows = np.repeat(np.arange(n_items), 3)
    use = (np.arange(3)[None, :] < k[:, None]).ravel()
    mask[rows[use], picks.ravel()[use]] = True
    mask[rng.random(n_items) < missing_fraction / 4] = False
    codes, inv = np.unique(np.packbits(mask, axis=1), axis=0, return_inverse=True)
    combos = np.empty(len(codes), dtype=object)
    combos[:] = [tuple(names[np.unpackbits(c)[:n_genres].astype(bool)]) for c in codes]
    genres = combos[np.asarray(inv).ravel()]
    year = rng.integers(1920, 2016, n_items).astype(object)
    year[rng.random(n_items) < missing_fraction / 2] = None
    words = _WORDS[rng.integers(0, len(_WORDS), (n_items, 8))]
    text = words[:, 0].astype(object)
    for j in range(1, words.shape[1]):  # 8 vectorised string concatenations, not a loop over items
        text = text + " " + words[:, j].astype(object)
    text = np.char.capitalize(text.astype(str)).astype(object) + "."
    text[rng.random(n_items) < missing_fraction] = None
    title = ("Synthetic title " + pd.Series(raw, dtype=object)).to_numpy(dtype=object)
    return make_items(raw, title=title, year=year, genres=list(genres), synopsis=text)


# ---------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------
def make_synthetic(shape: SyntheticShape | str, rng: np.random.Generator | int | None = None, *,
                   seed: int | None = None) -> KGDataset:
    """A :class:`KGDataset` with exactly ``shape``'s counts (see :class:`SyntheticShape`).

    ``shape`` is a :class:`SyntheticShape` or a preset name from :data:`SHAPES`; randomness
    comes from ``rng`` (a generator or int seed) or, equivalently, ``seed`` (default 0).
    """
    if rng is None:
        rng = 0 if seed is None else seed
    if isinstance(shape, str):
        if shape not in SHAPES:
            raise DatasetError(f"unknown synthetic shape {shape!r}; presets: {sorted(SHAPES)}")
        shape = SHAPES[shape]
    rng = np.random.default_rng(rng)
    if shape.n_rows % 2:
        raise DatasetError(f"n_rows must be even (positives + as many negatives), got {shape.n_rows}")
    n_pos = shape.n_rows // 2
    users = np.arange(shape.n_users)
    counts = allocate(n_pos, powerlaw_weights(shape.n_users, shape.user_exponent, rng), cap=shape.n_items // 2)
    pop = powerlaw_weights(shape.n_items, shape.item_exponent, rng)
    pos_u, pos_i = sample_distinct_items(users, counts, shape.n_items, rng, p=pop)
    neg_u, neg_i = sample_distinct_items(users, counts, shape.n_items, rng, exclude_keys=pos_u * shape.n_items + pos_i)
    if len(pos_u) != n_pos or len(neg_u) != n_pos:
        raise DatasetError(f"synthetic {shape.name}: sampled {len(pos_u)}/{len(neg_u)} of {n_pos} rows")
    kg = make_kg(shape.n_items, shape.n_entities, shape.n_relations, shape.n_triples, rng, np.sqrt(pop))
    items = make_item_table(shape.n_items, rng, shape.n_genres, shape.missing_fraction)
    return KGDataset(
        name=f"synthetic:{shape.name}",
        ratings=labelled_rows(pos_u, pos_i, neg_u, neg_i, shape.n_users),
        kg=kg,
        n_users=shape.n_users,
        n_items=shape.n_items,
        n_entities=shape.n_entities,
        n_relations=shape.n_relations,
        items=items,
        user_raw_ids=np.arange(1, shape.n_users + 1).astype(str).astype(object),
        relation_names=np.array([f"rel.{j}" for j in range(shape.n_relations)], dtype=object),
        entity_raw_ids=np.char.add("e", np.arange(shape.n_entities).astype(str)).astype(object),
        provenance={"format": "synthetic", "shape": asdict(shape)},
    )


# ---------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------
def _write_csv(path: Path, columns: dict, *, delimiter: str = ",", header: bool = True, quote: bool = False) -> Path:
    """Write columns with pyarrow's C++ CSV writer (fast for millions of rows), atomically.

    The header line is written by hand: pyarrow always quotes header names, which RecBole
    (``name:type``) and KGCN files do not do.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    opts = pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="needed" if quote else "none")
    with storage.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            if header:
                f.write((delimiter.join(columns) + "\n").encode("utf-8"))
            pacsv.write_csv(table, f, write_options=opts)
    return Path(path)


def _entity_names(ds: KGDataset) -> np.ndarray:
    if ds.entity_raw_ids is not None:
        return np.asarray(ds.entity_raw_ids).astype(str)
    return np.char.add("e", np.arange(ds.n_entities).astype(str))


def write_kgcn(ds: KGDataset, folder: Path) -> Path:
    """``ratings_final.txt``, ``kg_final.txt`` and ``item_index2entity_id.txt`` (raw id, index)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    r, kg = ds.ratings, ds.kg
    _write_csv(folder / "ratings_final.txt", {"u": r[:, 0], "i": r[:, 1], "l": r[:, 2]}, delimiter="\t", header=False)
    _write_csv(folder / "kg_final.txt", {"h": kg[:, 0], "r": kg[:, 1], "t": kg[:, 2]}, delimiter="\t", header=False)
    raw = ds.items["raw_id"].astype(str).to_numpy(dtype=str)
    _write_csv(folder / "item_index2entity_id.txt", {"raw": raw, "i": np.arange(ds.n_items)}, delimiter="\t", header=False)
    return folder


def _positive_ratings(ds: KGDataset, threshold: float, rng: np.random.Generator | None, step: float):
    pos = ds.positives
    values = np.arange(threshold, 5 + 1e-9, step)
    rating = np.full(len(pos), 5.0) if rng is None else values[rng.integers(0, len(values), len(pos))]
    return pos, rating


def write_recbole(ds: KGDataset, folder: Path, name: str | None = None, *, threshold: float = 4,
                  rng: np.random.Generator | None = None) -> Path:
    """RecBole atomic files ``NAME.inter/.item/.kg/.link`` (+ ``synopses.tsv``) in ``folder``.

    ``.inter`` holds the positives with integer ratings in ``threshold..5`` (all 5 without
    ``rng``); every item is linked to its entity (``ds.entity_raw_ids`` or ``e<index>``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = name or ds.name.replace(":", "-")
    pos, rating = _positive_ratings(ds, threshold, rng, 1.0)
    users = np.asarray(ds.user_raw_ids).astype(str)[pos[:, 0]]
    raw = ds.items["raw_id"].astype(str).to_numpy(dtype=str)
    _write_csv(folder / f"{name}.inter", {"user_id:token": users, "item_id:token": raw[pos[:, 1]],
               "rating:float": rating, "timestamp:float": np.arange(len(pos), dtype=np.int64)}, delimiter="\t")
    it = ds.items
    year = it["year"].astype("object").where(it["year"].notna(), "").astype(str).to_numpy(dtype=str)
    _write_csv(folder / f"{name}.item", {
        "item_id:token": raw,
        "movie_title:token_seq": it["title"].fillna("").astype(str).to_numpy(dtype=str),
        "release_year:token": year,
        "class:token_seq": it["genres"].map(" ".join).to_numpy(dtype=str),
    }, delimiter="\t")
    ent = _entity_names(ds)
    rel = np.asarray(ds.relation_names).astype(str)
    kg = ds.kg
    _write_csv(folder / f"{name}.kg", {"head_id:token": ent[kg[:, 0]], "relation_id:token": rel[kg[:, 1]],
               "tail_id:token": ent[kg[:, 2]]}, delimiter="\t")
    _write_csv(folder / f"{name}.link", {"item_id:token": raw, "entity_id:token": ent[: ds.n_items]}, delimiter="\t")
    has = it["synopsis"].notna().to_numpy()
    if has.any():
        text = it["synopsis"][has].astype(str).to_numpy(dtype=str)
        _write_csv(folder / "synopses.tsv", {"item_id": raw[has], "synopsis": text}, delimiter="\t")
    return folder


def _int_ids(values, what: str) -> np.ndarray:
    s = pd.Series(np.asarray(values, dtype=object)).astype(str)
    if not s.str.fullmatch(r"\d+").all():
        raise DatasetError(f"write_ml20m_raw needs integer {what} raw ids")
    return s.astype(np.int64).to_numpy()


def write_ml20m_raw(ds: KGDataset, folder: Path, *, threshold: float = 4, rng: np.random.Generator | None = None) -> Path:
    """Raw MovieLens-20M files (``ratings.csv``, ``movies.csv``, ``links.csv``) plus KGCN's
    ``item_index2entity_id.txt`` and ``kg.txt`` for ``ds`` (integer user/item raw ids).

    ``ratings.csv`` holds the positives with ratings in ``threshold..5`` step 0.5 (5.0
    without ``rng``).  ``links.csv`` takes ``imdb_id``/``tmdb_id`` columns when the items table
    has them, else made-up ids.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pos, rating = _positive_ratings(ds, threshold, rng, 0.5)
    users = _int_ids(ds.user_raw_ids, "user")
    movies = _int_ids(ds.items["raw_id"], "item")
    order = np.lexsort((movies[pos[:, 1]], users[pos[:, 0]]))
    pos, rating = pos[order], rating[order]
    _write_csv(folder / "ratings.csv", {"userId": users[pos[:, 0]], "movieId": movies[pos[:, 1]], "rating": rating,
               "timestamp": np.full(len(pos), 1_100_000_000, dtype=np.int64)})
    it = ds.items
    year = it["year"].astype("object").where(it["year"].notna(), None)
    title = it["title"].fillna("").astype(str) + np.where(year.notna(), " (" + year.astype(str) + ")", "")
    genres = it["genres"].map(lambda g: "|".join(g) if g else "(no genres listed)")
    _write_csv(folder / "movies.csv", {"movieId": movies, "title": title.to_numpy(dtype=str),
               "genres": genres.to_numpy(dtype=str)}, quote=True)
    imdb = it["imdb_id"].astype(str).to_numpy(dtype=str) if "imdb_id" in it else np.char.zfill((100000 + movies).astype(str), 7)
    tmdb = it["tmdb_id"].to_numpy(dtype="float64", na_value=np.nan) if "tmdb_id" in it else (1000 + movies).astype(float)
    _write_csv(folder / "links.csv", {"movieId": movies, "imdbId": imdb,
               "tmdbId": pd.array(tmdb, dtype="Float64").round().astype("Int64")}, quote=True)
    ent = _entity_names(ds)
    _write_csv(folder / "item_index2entity_id.txt", {"m": movies, "e": ent[: ds.n_items]}, delimiter="\t", header=False)
    rel = np.asarray(ds.relation_names).astype(str)
    kg = ds.kg
    _write_csv(folder / "kg.txt", {"h": ent[kg[:, 0]], "r": rel[kg[:, 1]], "t": ent[kg[:, 2]]}, delimiter="\t", header=False)
    return folder


def make_ml20m_raw(
    folder: Path,
    rng: np.random.Generator | int = 0,
    *,
    n_ratings: int = 20_000_263,
    n_users: int = 138_493,
    n_movies: int = 26_744,
    n_linked: int = 16_954,
    n_entities: int = 102_569,
    n_relations: int = 32,
    n_triples: int = 499_474,
    min_ratings: int = 20,
    progress: bool = True,
) -> dict:
    """Write a raw MovieLens-20M-shaped file set into ``folder``; returns its counts.

    Users ``1..n_users`` rate ``>= min_ratings`` (capped to what ``n_ratings`` allows) distinct
    movies with power-law activity/popularity and ML-20M's rating distribution; movie ids are
    a sorted random subset of ``1..131262``; ``n_linked`` random movies are in
    ``item_index2entity_id.txt`` (sorted by movie id, entity ids ``0..n_linked-1`` as KGCN's
    file); the KG (``kg.txt``, shuffled lines, names ``film.rel<j>``) has the given counts.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rng)
    bar = tqdm(total=6, desc="synthetic ML-20M raw", disable=not progress)
    minimum = max(1, min(min_ratings, n_ratings // n_users))
    counts = allocate(n_ratings, powerlaw_weights(n_users, 1.0, rng), cap=max(minimum, n_movies // 3), minimum=minimum)
    pop = powerlaw_weights(n_movies, 1.0, rng)
    u, m = sample_distinct_items(np.arange(n_users), counts, n_movies, rng, p=pop)
    bar.update()
    movie_ids = np.sort(rng.choice(np.arange(1, 131_263), size=n_movies, replace=False))
    rating = ML_RATINGS[rng.choice(len(ML_RATINGS), size=len(u), p=ML_RATING_P)]
    ts = rng.integers(789_652_009, 1_427_784_002, len(u))
    _write_csv(folder / "ratings.csv", {"userId": u + 1, "movieId": movie_ids[m], "rating": rating, "timestamp": ts})
    del u, m, rating, ts
    bar.update()
    items = make_item_table(n_movies, rng, raw_ids=movie_ids)
    year = items["year"].astype("object")
    # Every 7th title gets ML's ", The" suffix so the CSV needs quoting, as the real one does.
    title = items["title"].fillna("").astype(str) + np.where(np.arange(n_movies) % 7 == 0, ", The", "")
    title = title + np.where(year.notna(), " (" + year.astype(str) + ")", "")
    genres = items["genres"].map(lambda g: "|".join(g) if g else "(no genres listed)")
    _write_csv(folder / "movies.csv", {"movieId": movie_ids, "title": title.to_numpy(dtype=str),
               "genres": genres.to_numpy(dtype=str)}, quote=True)
    tmdb = (rng.permutation(n_movies) + 2).astype(object)
    tmdb[rng.random(n_movies) < 0.01] = None  # as in ML-20M, a few movies have no tmdbId
    _write_csv(folder / "links.csv", {"movieId": movie_ids, "imdbId": np.char.zfill((100_000 + movie_ids).astype(str), 7),
               "tmdbId": pd.array(tmdb, dtype="Int64")}, quote=True)
    bar.update()
    linked = np.sort(rng.choice(n_movies, size=n_linked, replace=False))
    _write_csv(folder / "item_index2entity_id.txt", {"m": movie_ids[linked], "e": np.arange(n_linked)},
               delimiter="\t", header=False)
    bar.update()
    kg = make_kg(n_linked, n_entities, n_relations, n_triples, rng, np.sqrt(pop[linked]))
    kg = kg[rng.permutation(len(kg))]
    rel = np.char.add("film.rel", np.arange(n_relations).astype(str))
    # Non-item entities get shuffled satori-like ids so re-indexing by first appearance matters.
    ent = np.concatenate([np.arange(n_linked), n_linked + rng.permutation(n_entities - n_linked)]).astype(str)
    _write_csv(folder / "kg.txt", {"h": ent[kg[:, 0]], "r": rel[kg[:, 1]], "t": ent[kg[:, 2]]}, delimiter="\t", header=False)
    bar.update()
    bar.close()
    return {"ratings": int(counts.sum()), "users": n_users, "movies": n_movies, "linked": n_linked,
            "entities": n_entities, "relations": n_relations, "kg_triples": len(kg)}
