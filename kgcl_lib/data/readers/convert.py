"""The KGCN protocol: explicit ratings -> labelled rows with sampled negatives, KG triples -> entity
indices, and the converted KGDataset."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..dataset import DatasetError, KGDataset
from .sampling import _sorted_raw_ids, sample_distinct_items, sorted_unique


# ---------------------------------------------------------------------------------------
# KGCN conversion of explicit ratings and of a named KG
# ---------------------------------------------------------------------------------------
def kgcn_convert(
    user_raw: np.ndarray,
    item: np.ndarray,
    rating: np.ndarray,
    n_items: int,
    threshold: float,
    rng: np.random.Generator,
    source: str = "ratings",
    dropped_before: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Turn explicit ratings into KGCN's labelled rows.

    Args:
        user_raw: ``[n]`` raw user ids (int or str), one per rating.
        item: ``int64[n]`` item index of each rating, ``-1`` for items not linked to the KG
            (those ratings are dropped).
        rating: ``float[n]`` rating values.
        n_items: number of (linked) items; negatives are drawn from ``0..n_items-1``.
        threshold: ratings ``>= threshold`` are positives.
        rng: generator for the negative sampling.
        source: file name used in error messages.
        dropped_before: unlinked ratings the caller already removed (only counted).

    Returns:
        ``(ratings int64[m, 3], user_raw_ids object[n_users], info dict)``; rows are sorted by
        user, positives first, each part by item.  ``info`` has ``positives``, ``negatives``,
        ``negatives_short`` and ``dropped_unlinked`` counts.
    """
    item, rating = np.asarray(item), np.asarray(rating)
    linked = item >= 0
    dropped = int(len(item) - np.count_nonzero(linked)) + int(dropped_before)
    user_raw = np.asarray(user_raw)
    if not linked.all():  # copy only when something must go
        user_raw, item, rating = user_raw[linked], item[linked], rating[linked]
    del linked
    is_pos = rating >= threshold
    if not is_pos.any():
        raise DatasetError(
            f"{source}: no positive ratings (rating >= {threshold}) on KG-linked items; the dataset "
            "would be empty after filtering"
        )
    # Users with at least one positive, ascending raw id (numeric ids stay numbers).
    pos_users_raw = pd.unique(user_raw[is_pos])
    if np.asarray(pos_users_raw).dtype.kind in "iu":
        user_raw_ids = np.sort(np.asarray(pos_users_raw))
        uidx = np.minimum(np.searchsorted(user_raw_ids, user_raw), len(user_raw_ids) - 1)
        known = user_raw_ids[uidx] == user_raw
    else:
        user_raw_ids = _sorted_raw_ids(np.asarray(pos_users_raw))
        uidx = pd.Index(user_raw_ids.astype(str)).get_indexer(pd.Series(user_raw).astype(str))
        known = uidx >= 0
    del user_raw
    # Every rated (user, item) of the users that stay, any rating: the negatives' exclusion set.
    keys = uidx.astype(np.int64)[known] * n_items + item.astype(np.int64, copy=False)[known]
    is_pos = is_pos[known]
    del uidx, item, rating, known
    pos_keys = sorted_unique(keys[is_pos])
    rated = sorted_unique(keys)
    if len(rated) < len(keys):  # a pair rated more than once: one row, positive if any rating is
        n_conflict = len(np.intersect1d(pos_keys, sorted_unique(keys[~is_pos]), assume_unique=True))
        warnings.warn(f"{source}: {len(keys) - len(rated)} repeated (user, item) rating(s) on {len(rated)} pairs; "
                      f"{n_conflict} pair(s) rated both >= {threshold} and below: each pair is kept once, as a "
                      f"positive when any of its ratings is >= {threshold}")
    del keys, is_pos
    pos_u, pos_i = pos_keys // n_items, pos_keys % n_items
    del pos_keys
    n_users = len(user_raw_ids)
    n_pos = np.bincount(pos_u, minlength=n_users)
    neg_u, neg_i = sample_distinct_items(np.arange(n_users), n_pos, n_items, rng, exclude_keys=rated)
    del rated
    short = int(n_pos.sum() - len(neg_u))
    if short:
        warnings.warn(f"{source}: {short} negatives could not be sampled (users who rated almost every item)")
    info = {
        "positives": int(len(pos_u)),
        "negatives": int(len(neg_u)),
        "negatives_short": short,
        "dropped_unlinked": dropped,
    }
    ratings = labelled_rows(pos_u, pos_i, neg_u, neg_i, n_users)
    return ratings, np.asarray(user_raw_ids).astype(str).astype(object), info


def labelled_rows(pos_u, pos_i, neg_u, neg_i, n_users: int | None = None) -> np.ndarray:
    """``int64[n_pos + n_neg, 3]`` rows ``(user, item, label)``: by user, positives first.

    Both inputs must be sorted by ``(user, item)`` (as :func:`sample_distinct_items` returns
    them); each row's output position is computed directly, which avoids a lexsort and its
    copies on tens of millions of rows.
    """
    pos_u, neg_u = np.asarray(pos_u, dtype=np.int64), np.asarray(neg_u, dtype=np.int64)
    n = int(max(pos_u.max(initial=-1), neg_u.max(initial=-1)) + 1) if n_users is None else n_users
    n_pos, n_neg = np.bincount(pos_u, minlength=n), np.bincount(neg_u, minlength=n)
    start = np.cumsum(n_pos + n_neg) - (n_pos + n_neg)  # first row of each user
    out = np.empty((len(pos_u) + len(neg_u), 3), dtype=np.int64)
    for u, i, lab, first, off in ((pos_u, pos_i, 1, start, np.cumsum(n_pos) - n_pos),
                                  (neg_u, neg_i, 0, start + n_pos, np.cumsum(n_neg) - n_neg)):
        at = first[u] + np.arange(len(u)) - off[u]  # rank of the row inside its user's block
        out[at, 0], out[at, 1], out[at, 2] = u, i, lab
    return out


def index_kg(
    head: np.ndarray,
    relation: np.ndarray,
    tail: np.ndarray,
    item_entities: np.ndarray,
    relation_order: str = "first",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index a KG given by raw entity/relation ids, items first.

    Args:
        head, relation, tail: ``[m]`` raw ids (str) of each triple.
        item_entities: ``[n_items]`` raw entity id of item ``i`` (distinct).
        relation_order: ``"first"`` = relations numbered in order of first appearance (KGCN's
            preprocess.py), ``"sorted"`` = by sorted name.

    Returns:
        ``(kg int64[m, 3], entity_raw_ids object[n_entities], relation_names object[n_relations])``.
        Entity ``i < n_items`` is item ``i``; the other entities follow in order of first
        appearance scanning triples head then tail (as KGCN).
    """
    head = np.asarray(head).astype(str)
    tail = np.asarray(tail).astype(str)
    inter = np.empty(2 * len(head), dtype=object)
    inter[0::2], inter[1::2] = head, tail
    codes, uniques = pd.factorize(np.concatenate([np.asarray(item_entities).astype(str).astype(object), inter]))
    n_items = len(item_entities)
    if len(uniques) < n_items or (codes[:n_items] != np.arange(n_items)).any():
        raise DatasetError("item -> entity mapping links two items to the same entity")
    ent = codes[n_items:].reshape(-1, 2)
    rel = np.asarray(relation).astype(str)
    if relation_order == "sorted":
        first, fnames = pd.factorize(rel)
        order = np.argsort(np.asarray(fnames, dtype=str), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        names, rcodes = np.asarray(fnames, dtype=object)[order], rank[first]
    elif relation_order == "first":
        rcodes, names = pd.factorize(rel)
    else:
        raise DatasetError(f"relation_order must be 'first' or 'sorted', got {relation_order!r}")
    kg = np.stack([ent[:, 0], np.asarray(rcodes, dtype=np.int64), ent[:, 1]], axis=1).astype(np.int64)
    return kg, np.asarray(uniques, dtype=object), np.asarray(names, dtype=object)


def _converted_dataset(name, fmt, files, ratings, kg, items, user_raw_ids, entity_raw_ids, relation_names,
                       n_items, threshold, seed, info) -> KGDataset:
    """The KGDataset of a KGCN-protocol conversion (RecBole atomic files, raw ML-20M)."""
    return KGDataset(
        name=name,
        ratings=ratings,
        kg=kg,
        n_users=len(user_raw_ids),
        n_items=n_items,
        n_entities=len(entity_raw_ids),
        n_relations=len(relation_names),
        items=items,
        user_raw_ids=user_raw_ids,
        relation_names=relation_names,
        entity_raw_ids=entity_raw_ids,
        provenance={
            "format": fmt,
            "files": files,
            "threshold": threshold,
            "seed": seed if isinstance(seed, int) else "generator",
            **info,
        },
    )
