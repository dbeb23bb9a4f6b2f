"""Book-Crossing: RippleNet's raw files -> KGCN format (conversion and negative sampling)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ... import storage
from ..dataset import DatasetError
from .common import log, WORK, _read_state, _read_tab, _write_state, _write_tsv



def read_bx_ratings(path: str | os.PathLike) -> pd.DataFrame:
    """``BX-Book-Ratings.csv`` as RippleNet reads it: ``user`` (int64), ``isbn`` (str), ``rating`` (float64).

    Each line (header skipped) is split on ``;`` and every field loses its first and last
    character (the surrounding quotes); further fields are ignored.  A pyarrow pass does this
    in C++ for well-formed files; any irregular line (extra fields, stray whitespace, invalid
    UTF-8, a non-number) sends the whole file through the exact line-by-line rules
    (:func:`_read_bx_ratings_exact`), which also produce the error message.
    """
    path = Path(path)
    try:
        return _read_bx_ratings_fast(path)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as e:
        log.info("%s: irregular lines (%s); using the exact line-by-line reader", path, str(e).splitlines()[0][:200])
        return _read_bx_ratings_exact(path)


def _read_bx_ratings_fast(path: Path) -> pd.DataFrame:
    def refuse(row):  # any line without exactly three fields: let the exact reader decide
        return "error"

    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(skip_rows=1, column_names=["user", "isbn", "rating"], block_size=1 << 24),
        parse_options=pa_csv.ParseOptions(delimiter=";", quote_char=False, invalid_row_handler=refuse),
        convert_options=pa_csv.ConvertOptions(column_types={c: pa.string() for c in ("user", "isbn", "rating")}),
    )
    if table.num_rows == 0:
        return _empty_ratings()
    cols = {c: pc.utf8_slice_codeunits(table[c], 1, -1) for c in ("user", "isbn", "rating")}
    for c in ("user", "rating"):  # the exact reader needs the same, quote-free, integer-looking fields
        pattern = r'^"[0-9]+"$' if c == "user" else r'^"[0-9]+(\.[0-9]*)?"$'
        if not pc.all(pc.match_substring_regex(table[c], pattern)).as_py():
            raise ValueError(f"irregular {c} field")
    return pd.DataFrame(
        {
            "user": pc.cast(cols["user"], pa.int64()).to_numpy(),
            "isbn": cols["isbn"].to_numpy(zero_copy_only=False).astype(object),
            "rating": pc.cast(cols["rating"], pa.float64()).to_numpy(),
        }
    )


def _empty_ratings() -> pd.DataFrame:
    return pd.DataFrame({"user": np.zeros(0, np.int64), "isbn": np.zeros(0, object), "rating": np.zeros(0, np.float64)})


def _read_bx_ratings_exact(path: Path) -> pd.DataFrame:
    """Line-by-line RippleNet rules (pandas string ops); raises :class:`DatasetError` naming the line."""
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    # Universal newlines, like Python's text-mode readlines() in the reference code.
    lines = pd.Series(text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[1:], dtype=object)
    lineno = np.arange(2, len(lines) + 2)
    stripped = lines.str.strip()
    keep = (stripped != "").to_numpy()
    if not keep.any():
        return _empty_ratings()
    parts = stripped[keep].str.split(";", n=3, expand=True)
    lineno = lineno[keep]
    parts = parts.reindex(columns=range(3))
    short = parts.isna().any(axis=1).to_numpy()
    if short.any():
        raise DatasetError(f"{path}:{lineno[int(np.flatnonzero(short)[0])]}: expected at least 3 ';'-separated fields")
    fields = [parts[i].str[1:-1] for i in range(3)]
    user = pd.to_numeric(fields[0], errors="coerce")
    rating = pd.to_numeric(fields[2], errors="coerce")
    for vals, raw, what in ((user, fields[0], "user id"), (rating, fields[2], "rating")):
        if vals.isna().any():
            i = int(np.flatnonzero(vals.isna().to_numpy())[0])
            raise DatasetError(f"{path}:{lineno[i]}: {what} {raw.iloc[i]!r} is not a number")
    if (user != np.floor(user)).any():
        i = int(np.flatnonzero((user != np.floor(user)).to_numpy())[0])
        raise DatasetError(f"{path}:{lineno[i]}: user id {fields[0].iloc[i]!r} is not an integer")
    return pd.DataFrame(
        {"user": user.to_numpy(dtype=np.int64), "isbn": fields[1].to_numpy(dtype=object), "rating": rating.to_numpy(dtype=np.float64)}
    )


def sample_negatives(
    pos: np.ndarray, exclude: np.ndarray, n_users: int, n_items: int, rng: np.random.Generator
) -> np.ndarray:
    """For each user, as many distinct negatives as they have positives, none in ``exclude``.

    Args:
        pos: ``int64[n_pos, 2]`` distinct ``(user, item)`` positives.
        exclude: ``int64[n_ex, 2]`` ``(user, item)`` pairs a user may not get (positives and
            rated-but-negative items); duplicates allowed.
        n_users, n_items: index-space sizes.
        rng: the generator.

    Returns: ``int64[n_pos, 2]`` ``(user, item)`` negatives grouped by user (ascending).

    Sparse users use vectorised rejection sampling (draw, drop excluded and repeated items,
    redraw the dropped slots); users who need more than half of what is left draw one
    permutation of their allowed items each (rare, so the loop is short).

    Raises: :class:`DatasetError` when a user needs more negatives than items remain.
    """
    need = np.bincount(pos[:, 0], minlength=n_users)
    ex_keys = np.unique(exclude[:, 0] * n_items + exclude[:, 1])
    avail = n_items - np.bincount(ex_keys // n_items, minlength=n_users)
    short = np.flatnonzero(need > avail)
    if len(short):
        u = int(short[0])
        raise DatasetError(f"user index {u} needs {need[u]} negatives but only {avail[u]} unrated items exist")
    dense = need * 2 > avail
    users_sparse = np.repeat(np.arange(n_users), np.where(dense, 0, need))
    items = rng.integers(0, n_items, size=len(users_sparse))
    while True:
        keys = users_sparse * n_items + items
        at = np.minimum(np.searchsorted(ex_keys, keys), max(len(ex_keys) - 1, 0))
        bad = ex_keys[at] == keys if len(ex_keys) else np.zeros(len(keys), bool)
        order = np.argsort(keys, kind="stable")
        dup = np.zeros(len(keys), dtype=bool)
        dup[order[1:]] = keys[order[1:]] == keys[order[:-1]]  # every repeat after the first draw
        todo = np.flatnonzero(bad | dup)
        if not len(todo):
            break
        items[todo] = rng.integers(0, n_items, size=len(todo))
    out_u, out_i = [users_sparse], [items]
    for u in np.flatnonzero(dense & (need > 0)):  # few users: those with most of the catalogue rated
        lo, hi = np.searchsorted(ex_keys, [u * n_items, (u + 1) * n_items])
        allowed = np.setdiff1d(np.arange(n_items), ex_keys[lo:hi] - u * n_items)
        out_u.append(np.full(need[u], u))
        out_i.append(rng.choice(allowed, size=need[u], replace=False))
    users, items = np.concatenate(out_u), np.concatenate(out_i)
    order = np.argsort(users, kind="stable")
    return np.stack([users[order], items[order]], axis=1).astype(np.int64)


def convert_kg(item_entity_ids: np.ndarray, kg: pd.DataFrame) -> tuple[np.ndarray, int, int]:
    """Re-index raw ``(head, relation, tail)`` strings the KGCN way.

    Args:
        item_entity_ids: ``object[n_items]`` raw entity id of item ``i`` (must be distinct).
        kg: three string columns ``head, relation, tail`` in file order.

    Returns: ``(int64[m, 3] triples, n_entities, n_relations)``; items keep indices
    ``0..n_items-1``, other entities are numbered from ``n_items`` in order of first
    appearance (head before tail, row by row), relations from 0 likewise.
    """
    n_items = len(item_entity_ids)
    seq = np.empty(2 * len(kg), dtype=object)
    seq[0::2] = kg.iloc[:, 0].to_numpy(dtype=object)
    seq[1::2] = kg.iloc[:, 2].to_numpy(dtype=object)
    codes, uniques = pd.factorize(seq)
    item_pos = pd.Index(item_entity_ids).get_indexer(uniques)
    new = item_pos < 0
    ids = np.where(new, n_items + np.cumsum(new) - 1, item_pos)
    ent = ids[codes]
    rel_codes, rel_uniques = pd.factorize(kg.iloc[:, 1].to_numpy(dtype=object))
    triples = np.stack([ent[0::2], rel_codes, ent[1::2]], axis=1).astype(np.int64)
    return triples, n_items + int(new.sum()), len(rel_uniques)


def convert_bookcrossing(
    raw_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    threshold: float = 0.0,
    seed: int = 555,
    ratings_name: str = "BX-Book-Ratings.csv",
    mapping_name: str = "item_index2entity_id_rehashed.txt",
    kg_name: str = "kg_rehashed.txt",
) -> dict:
    """RippleNet's raw Book-Crossing files → KGCN ``ratings_final.txt`` / ``kg_final.txt``.

    Also writes ``item_index2entity_id_rehashed.txt`` (``ISBN <TAB> item index``; identical to
    RippleNet's file when its satori ids are ``0..n-1``, as they are).  Skipped when the
    outputs exist and were made from inputs with the same sha256 and the same parameters
    (state in ``out_dir/.kgcl-fetch/state.json``).  See the module docstring for the protocol.

    Returns: Table-1 counts ``{users, contents, uc_rows, entities, relations, kg_triples}``.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    work = out_dir / WORK
    work.mkdir(parents=True, exist_ok=True)
    inputs = {n: storage.sha256_file(raw_dir / n) for n in (ratings_name, mapping_name, kg_name)}
    outs = ("ratings_final.txt", "kg_final.txt", "item_index2entity_id_rehashed.txt")
    want = {"inputs": inputs, "threshold": threshold, "seed": seed, "protocol": "ripplenet-preprocess-v1"}
    state = _read_state(work)
    prev = state.get("convert:book-crossing")
    if prev and prev.get("params") == want and all((out_dir / o).exists() and storage.sha256_file(out_dir / o) == prev["outputs"].get(o) for o in outs):
        return prev["counts"]

    mapping = _read_tab(raw_dir / mapping_name, 2)
    isbns, ent_ids = mapping[0].to_numpy(dtype=object), mapping[1].to_numpy(dtype=object)
    for col, what in ((isbns, "ISBN"), (ent_ids, "entity id")):
        dup = pd.Series(col).duplicated().to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise DatasetError(f"{raw_dir / mapping_name}:{i + 1}: duplicate {what} {col[i]!r}")
    n_items = len(isbns)

    r = read_bx_ratings(raw_dir / ratings_name)
    item = pd.Index(isbns).get_indexer(r["isbn"].to_numpy())
    r = r.assign(item=item)[item >= 0]
    is_pos = (r["rating"] >= threshold).to_numpy()
    pos_rows = r[is_pos]
    if not len(pos_rows):
        raise DatasetError(f"{raw_dir / ratings_name}: no rating >= {threshold} of an ISBN listed in {mapping_name}")
    # Users in order of their first positive rating (dict insertion order in the reference).
    user_codes, user_raw = pd.factorize(pos_rows["user"].to_numpy())
    n_users = len(user_raw)
    pos_keys = np.unique(user_codes.astype(np.int64) * n_items + pos_rows["item"].to_numpy())  # dedupe, sort by (user, item)
    pos = np.stack([pos_keys // n_items, pos_keys % n_items], axis=1)
    neg_rows = r[~is_pos]
    neg_user = pd.Index(user_raw).get_indexer(neg_rows["user"].to_numpy())
    rated_neg = np.stack([neg_user, neg_rows["item"].to_numpy()], axis=1)[neg_user >= 0]
    negs = sample_negatives(pos, np.concatenate([pos, rated_neg]), n_users, n_items, np.random.default_rng(seed))

    rows = np.concatenate([np.c_[pos, np.ones(len(pos), np.int64)], np.c_[negs, np.zeros(len(negs), np.int64)]])
    rows = rows[np.lexsort((1 - rows[:, 2], rows[:, 0]))]  # per user: positives, then negatives (stable)

    kg_raw = _read_tab(raw_dir / kg_name, 3)
    triples, n_entities, n_relations = convert_kg(ent_ids, kg_raw)

    with storage.atomic_path(out_dir / "ratings_final.txt") as tmp:
        pd.DataFrame(rows).to_csv(tmp, sep="\t", header=False, index=False)
    with storage.atomic_path(out_dir / "kg_final.txt") as tmp:
        pd.DataFrame(triples).to_csv(tmp, sep="\t", header=False, index=False)
    _write_tsv(out_dir / "item_index2entity_id_rehashed.txt", None, ((s, i) for i, s in enumerate(isbns)))

    counts = {
        "users": n_users,
        "contents": n_items,
        "uc_rows": len(rows),
        "entities": int(len(np.union1d(np.arange(n_items), np.unique(triples[:, [0, 2]])))),
        "relations": n_relations,
        "kg_triples": len(triples),
    }
    state = _read_state(work)
    state["convert:book-crossing"] = {
        "params": want,
        "outputs": {o: storage.sha256_file(out_dir / o) for o in outs},
        "counts": counts,
        "n_entities_indexed": n_entities,
    }
    _write_state(work, state)
    return counts


def kgcn_counts(folder: str | os.PathLike) -> dict:
    """Table-1 counts of a KGCN-format folder (``ratings_final.txt``, ``kg_final.txt``, mapping).

    ``contents`` is the number of mapping lines when ``item_index2entity_id*.txt`` exists,
    else the largest item index + 1; ``entities`` counts items plus every KG head/tail (as
    ``KGDataset.stats``).
    """
    folder = Path(folder)
    r = pd.read_csv(folder / "ratings_final.txt", sep="\t", header=None, dtype=np.int64).to_numpy()
    kg = pd.read_csv(folder / "kg_final.txt", sep="\t", header=None, dtype=np.int64).to_numpy()
    maps = sorted(folder.glob("item_index2entity_id*.txt"))
    n_items = len(_read_tab(maps[0], 2)) if maps else int(r[:, 1].max()) + 1
    return {
        "users": int(len(np.unique(r[:, 0]))),
        "contents": n_items,
        "uc_rows": int(len(r)),
        "entities": int(len(np.union1d(np.arange(n_items), np.unique(kg[:, [0, 2]])))),
        "relations": int(len(np.unique(kg[:, 1]))),
        "kg_triples": int(len(kg)),
    }
