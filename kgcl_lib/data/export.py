"""Write a :class:`KGDataset` in the plain format (``ratings.csv``, ``items.csv``, ``kg.tsv``;
docs/your-data.md): ``python -m kgcl_lib.data export --dataset ml-100k --format plain --out DIR``.

What makes the export read back identically (same indices, rows, seeded negatives, hence the
same split and the same trained model for a seed):

* ratings: a dataset converted from explicit ratings (RecBole atomic files) is exported as its
  source's ``user,item,rating`` rows on the dataset's items, so the plain reader runs the same
  KGCN conversion (threshold, seed) on the same input; any other dataset as its labelled rows
  (``label`` column, used as given);
* users and items keep their raw ids, and the plain reader numbers both in ascending id order
  (numeric when every id is an integer) -- the order the RecBole reader uses;
* ``kg.tsv`` lists the triples in the dataset's row order with items named by their item id,
  other entities by their raw KG id (``e<index>`` when the source has none) and relations by
  name; the reader numbers entities after the items by first appearance (head, tail, line by
  line), as the source's reader did, and relations by sorted name (RecBole's rule).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..storage import atomic_dir
from .dataset import DatasetError, KGDataset
from .readers.plain import MULTI_SEP, PLAIN_ITEMS, PLAIN_KG, PLAIN_RATINGS
from .readers.recbole import read_atomic


def _explicit_ratings(ds: KGDataset) -> pd.DataFrame | None:
    """The source's explicit ``user,item,rating`` rows on ``ds``'s items, or ``None`` (no such source)."""
    source = ds.provenance.get("source")
    if ds.provenance.get("format") != "recbole" or not source:
        return None
    inters = sorted(Path(source).glob("*.inter"))
    if len(inters) != 1:
        return None
    inter = read_atomic(inters[0], "inter")
    out = pd.DataFrame({"user": inter["user_id"].str.strip(), "item": inter["item_id"].str.strip(),
                        "rating": inter["rating"].str.strip()})
    return out[out["item"].isin(ds.items["raw_id"].astype(str))]


def _entity_names(ds: KGDataset, rated: np.ndarray) -> np.ndarray:
    """``str[n_entities]``: item ``i`` is named by its item id, other entities by their raw KG id
    (``rated``: ``bool[n_items]``, items with a row in the exported ratings.csv)."""
    names = (np.asarray(ds.entity_raw_ids).astype(str) if ds.entity_raw_ids is not None
             else np.char.add("e", np.arange(ds.n_entities).astype(str)))
    names = names.astype(object)
    names[: ds.n_items] = ds.items["raw_id"].astype(str).to_numpy(dtype=object)
    clash = pd.Index(names[ds.n_items:]).isin(names[: ds.n_items])
    if clash.any():  # a KG entity spelt like an item id would read back as that item
        names[ds.n_items:][clash] = "entity:" + names[ds.n_items:][clash]
    unrated = ~rated
    if unrated.any():  # the plain format's items are rated items: these stay in the KG as plain entities
        warnings.warn(f"{ds.name}: {int(unrated.sum())} item(s) without any rating row (e.g. "
                      f"{names[int(np.flatnonzero(unrated)[0])]!r}) are written to kg.tsv as entities 'unrated:<id>' "
                      "and left out of items.csv; the plain reader's items are the rated ones", stacklevel=3)
        names[: ds.n_items][unrated] = "unrated:" + names[: ds.n_items][unrated]
    return names


def write_plain(ds: KGDataset, out: str | Path, *, kg: bool = True, text: bool = True,
                explicit: bool = True) -> Path:
    """Write ``ds`` to the folder ``out`` (replaced atomically) in the plain format.

    Args:
        kg: write ``kg.tsv`` (``False``: the reader builds a KG from the items' attributes).
        text: write the items' synopses as the ``text`` column of ``items.csv``.
        explicit: export a RecBole-converted dataset's explicit ratings (``rating`` column) rather
            than its labelled rows (``label``).

    Returns the folder.
    """
    out = Path(out)
    with atomic_dir(out) as tmp:
        rows = _explicit_ratings(ds) if explicit else None
        if rows is None:
            users = np.asarray(ds.user_raw_ids).astype(str)
            raw = ds.items["raw_id"].astype(str).to_numpy(dtype=str)
            rows = pd.DataFrame({"user": users[ds.ratings[:, 0]], "item": raw[ds.ratings[:, 1]],
                                 "label": ds.ratings[:, 2]})
        rows.to_csv(tmp / PLAIN_RATINGS, index=False)
        rated = ds.items["raw_id"].astype(str).isin(rows["item"]).to_numpy()
        it = ds.items[rated]
        items = pd.DataFrame({"item": it["raw_id"].astype(str)})
        if it["title"].notna().any():
            items["title"] = it["title"]
        if it["year"].notna().any():
            items["year"] = it["year"].astype("object").where(it["year"].notna(), None)
        if it["genres"].map(len).gt(0).any():
            items["genres"] = it["genres"].map(MULTI_SEP.join)
        for c in it.columns[5:]:  # source extras (author, tmdb_id, ...) stay attributes
            items[c] = it[c]
        if text and it["synopsis"].notna().any():
            items["text"] = it["synopsis"]
        items.to_csv(tmp / PLAIN_ITEMS, index=False)
        if kg and len(ds.kg):
            ent = _entity_names(ds, rated)
            rel = np.asarray(ds.relation_names).astype(str)
            cols = [pd.Series(ent[ds.kg[:, 0]]), pd.Series(rel[ds.kg[:, 1]], dtype=object), pd.Series(ent[ds.kg[:, 2]])]
            for c in cols:  # kg.tsv has no quoting: a tab or newline inside a name would split it
                bad = c.str.contains("[\t\r\n]", regex=True).to_numpy()
                if bad.any():
                    raise DatasetError(f"{ds.name}: KG name {c.iloc[int(np.flatnonzero(bad)[0])]!r} holds a tab or "
                                       "newline; kg.tsv cannot store it")
            lines = cols[0].str.cat([cols[1], cols[2]], sep="\t")
            (tmp / PLAIN_KG).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
