"""The one canonical dataset object that every reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Columns of :attr:`KGDataset.items`, in order.
ITEM_COLUMNS = ("raw_id", "title", "year", "genres", "synopsis")


class DatasetError(ValueError):
    """A dataset file or its content is unusable; the message names the file/line/value."""


@dataclass(frozen=True, eq=False)
class KGDataset:
    """Labelled user–item rows plus a knowledge graph whose first ``n_items`` entities are items.

    Attributes:
        name: dataset name, e.g. ``"ml-100k"``.
        ratings: ``int64[n_rows, 3]`` — ``(user, item, label)``; users in ``0..n_users-1``,
            items in ``0..n_items-1``, label 1 = positive, 0 = (sampled) negative.
        kg: ``int64[n_triples, 3]`` — ``(head, relation, tail)`` entity/relation indices;
            entity ``i < n_items`` *is* item ``i``.
        n_users, n_items, n_entities, n_relations: index-space sizes. ``n_entities`` counts
            every index in ``0..max entity`` (items included), i.e. the embedding-table size.
        items: one row per item index (``RangeIndex(n_items)``), columns :data:`ITEM_COLUMNS`:
            ``raw_id`` (str, the source's id), ``title`` (str or NA), ``year`` (nullable Int64),
            ``genres`` (tuple of str, empty when unknown), ``synopsis`` (str or NA).
        user_raw_ids: ``object[n_users]`` raw user id of each user index.
        relation_names: ``object[n_relations]`` relation names (or their raw ids as str).
        provenance: free-form dict (source files, checksums, conversion parameters).
        entity_raw_ids: optional ``object[n_entities]`` raw KG id of each entity index (e.g. a
            Freebase ``m.0bln8`` or a Satori id); ``None`` when the source only has integers.
    """

    name: str
    ratings: np.ndarray
    kg: np.ndarray
    n_users: int
    n_items: int
    n_entities: int
    n_relations: int
    items: pd.DataFrame
    user_raw_ids: np.ndarray
    relation_names: np.ndarray
    provenance: dict = field(default_factory=dict)
    entity_raw_ids: np.ndarray | None = None

    def __post_init__(self):
        validate(self)

    # Convenience views -------------------------------------------------------------------
    @property
    def positives(self) -> np.ndarray:
        """``int64[n_pos, 2]`` — ``(user, item)`` of the label-1 rows."""
        return self.ratings[self.ratings[:, 2] == 1, :2]

    def stats(self) -> dict:
        """The paper's Table 1 rows: users, contents, u-c rows, entities, relations, triples.

        ``entities`` counts every distinct entity index that appears in the KG or is an item
        (items are entities ``0..n_items-1``), which for Book-Crossing is 77,903.
        """
        used = np.zeros(max(self.n_entities, self.n_items), dtype=bool)
        used[: self.n_items] = True
        used[self.kg[:, [0, 2]].ravel()] = True
        return {
            "users": int(self.n_users),
            "contents": int(self.n_items),
            "uc_rows": int(len(self.ratings)),
            "entities": int(used.sum()),
            "relations": int(np.count_nonzero(np.bincount(self.kg[:, 1]))) if len(self.kg) else 0,
            "kg_triples": int(len(self.kg)),
        }

    def users_without_positive(self) -> int:
        """How many users have no label-1 row (they cannot be scored by AUC on their own rows
        and count as zero in top-K recall); KGCN's own conversion never produces them."""
        has_pos = np.zeros(self.n_users, dtype=bool)
        has_pos[self.ratings[self.ratings[:, 2] == 1, 0]] = True
        return int(self.n_users - np.count_nonzero(has_pos))

    def metadata_coverage(self) -> dict:
        """How many items have each metadata field (missing values are allowed and counted)."""
        it = self.items
        return {
            "items": int(len(it)),
            "title": int(it["title"].notna().sum()),
            "year": int(it["year"].notna().sum()),
            "genres": int(it["genres"].map(len).gt(0).sum()),
            "synopsis": int(it["synopsis"].notna().sum()),
        }


def make_items(raw_id, title=None, year=None, genres=None, synopsis=None, **extra) -> pd.DataFrame:
    """Build a normalised items table (:data:`ITEM_COLUMNS` first, then ``extra`` columns).

    Args:
        raw_id: sequence of length ``n_items`` (converted to ``str``).
        title, synopsis: sequences of str with ``None``/NaN/NA for missing, or ``None`` (all missing).
            Empty or whitespace-only strings count as missing.
        year: integer-like sequence with missing values, or ``None``.
        genres: sequence of tuples/lists of str (``None`` = no genre), or ``None``.
        extra: further columns (e.g. ``tmdb_id``) appended after the standard ones; object
            arrays get ``pd.NA`` for every missing value.

    Returns:
        DataFrame with ``RangeIndex(n_items)``; text columns are ``object`` dtype (not pandas
        3's inferred ``str`` dtype) holding ``str`` or ``pd.NA``, ``year`` is ``Int64`` and
        ``genres`` holds tuples.
    """
    raw = pd.Series(np.asarray(raw_id)).astype(str).to_numpy(dtype=object)
    n = len(raw)

    def text(values):
        if values is None:
            return pd.Series([pd.NA] * n, dtype="object")
        s = pd.Series(np.asarray(values, dtype=object), dtype="object")
        missing = s.isna().to_numpy() | (s.astype(str).str.strip() == "").to_numpy()
        return s.where(~missing, pd.NA).astype("object")

    if year is None:
        years = pd.array([pd.NA] * n, dtype="Int64")
    else:
        years = pd.array(pd.to_numeric(pd.Series(np.asarray(year, dtype=object)), errors="coerce"), dtype="Float64")
        years = years.round().astype("Int64")
    if genres is None:
        gen = pd.Series([()] * n, dtype="object")
    else:
        gen = pd.Series([tuple(g) if g is not None and not isinstance(g, float) else () for g in genres], dtype="object")
    df = pd.DataFrame(
        {
            "raw_id": pd.Series(raw, dtype="object"),
            "title": text(title),
            "year": years,
            "genres": gen,
            "synopsis": text(synopsis),
        }
    )
    for k, v in extra.items():
        v = v.to_numpy() if isinstance(v, pd.Series) else v
        if isinstance(v, np.ndarray) and v.dtype == object:
            v = pd.Series(v, dtype="object")
            # one missing marker (pd.NA), and keep object dtype: pandas 3 would infer `str`
            v = v.where(v.notna(), pd.NA).astype("object")
        df[k] = v
    if len(df) != n:
        raise DatasetError(f"items table: {len(df)} rows for {n} raw ids")
    return df


def empty_items(n_items: int, raw_ids=None) -> pd.DataFrame:
    """An items table with no metadata: NA titles/years/synopses and empty genre tuples."""
    return make_items(raw_ids if raw_ids is not None else np.arange(n_items))


def validate(ds: KGDataset) -> None:
    """Raise :class:`DatasetError` when array shapes or id ranges are inconsistent."""
    r, kg = ds.ratings, ds.kg
    if r.ndim != 2 or r.shape[1] != 3:
        raise DatasetError(f"{ds.name}: ratings must be int[n, 3], got shape {r.shape}")
    if kg.ndim != 2 or kg.shape[1] != 3:
        raise DatasetError(f"{ds.name}: kg must be int[n, 3], got shape {kg.shape}")
    if len(r) == 0:
        raise DatasetError(f"{ds.name}: no labelled user-item rows (empty after filtering?)")
    for col, hi, what in ((0, ds.n_users, "user"), (1, ds.n_items, "item")):
        bad = (r[:, col] < 0) | (r[:, col] >= hi)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{ds.name}: {what} id {r[i, col]} out of range 0..{hi - 1} (ratings row {i})")
    bad_label = (r[:, 2] != 0) & (r[:, 2] != 1)  # cheaper than np.isin on 10M+ rows
    if bad_label.any():
        i = int(np.flatnonzero(bad_label)[0])
        raise DatasetError(f"{ds.name}: label {r[i, 2]} is not 0/1 (ratings row {i})")
    if len(kg):
        for col, hi, what in ((0, ds.n_entities, "head"), (2, ds.n_entities, "tail"), (1, ds.n_relations, "relation")):
            bad = (kg[:, col] < 0) | (kg[:, col] >= hi)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DatasetError(f"{ds.name}: {what} id {kg[i, col]} out of range 0..{hi - 1} (kg row {i})")
    if ds.entity_raw_ids is not None and len(ds.entity_raw_ids) != ds.n_entities:
        raise DatasetError(
            f"{ds.name}: entity_raw_ids has {len(ds.entity_raw_ids)} entries for {ds.n_entities} entities"
        )
    if ds.n_entities < ds.n_items:
        raise DatasetError(f"{ds.name}: n_entities {ds.n_entities} < n_items {ds.n_items}")
    if len(ds.items) != ds.n_items or list(ds.items.columns[: len(ITEM_COLUMNS)]) != list(ITEM_COLUMNS):
        raise DatasetError(
            f"{ds.name}: items table must have {ds.n_items} rows and columns {ITEM_COLUMNS}, "
            f"got {len(ds.items)} rows, columns {tuple(ds.items.columns)}"
        )
