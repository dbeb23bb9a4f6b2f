"""Readers: raw dataset files -> :class:`KGDataset`.

Three on-disk formats are understood:

* **KGCN / RippleNet processed** (``ratings_final.txt``, ``kg_final.txt``,
  ``item_index2entity_id*.txt``): already labelled and integer-indexed (Book-Crossing).
* **RecBole atomic files** (``NAME.inter/.item/.kg/.link``, MovieLens-100K with Freebase).
* **Raw MovieLens-20M** (``ratings.csv``, ``movies.csv``, ``links.csv``) with KGCN's
  ``item_index2entity_id.txt`` and ``kg.txt``.

The last two hold explicit ratings and are converted with the KGCN protocol
(:func:`kgcn_convert`, following ``KGCN/src/preprocess.py``):

* a rating ``>= threshold`` is a positive (label 1);
* only items linked to the KG are kept; item ``i`` is entity ``i`` and the items come first
  in the entity index, the other KG entities follow in order of first appearance;
* users are those with at least one positive after filtering (as KGCN), re-indexed
  ``0..n_users-1`` in ascending raw-id order (numeric when the ids are integers);
* for every user, as many negatives (label 0) as positives are sampled uniformly without
  replacement from the linked items the user did **not** rate at all (any rating), with an
  explicit seeded generator.  KGCN would crash when a user rated so many items that fewer
  unrated items remain than positives; we take all that remain and count the shortfall in
  ``provenance["negatives_short"]``.

Every parse error names ``file:line`` and the offending text; a missing file names the file
and how to obtain it.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .dataset import DatasetError, KGDataset, make_items

# File names of each format (what a folder must hold).
KGCN_RATINGS = "ratings_final.txt"
KGCN_KG = "kg_final.txt"
KGCN_ITEM_MAP_GLOB = "item_index2entity_id*.txt"
ML20M_RATINGS = "ratings.csv"
ML20M_MOVIES = "movies.csv"
ML20M_LINKS = "links.csv"
ML20M_ITEM_MAP = "item_index2entity_id.txt"
ML20M_KG = "kg.txt"
SYNOPSES = "synopses.tsv"
BOOKS = "books.tsv"  # isbn, title, author, year, genres ("|"-joined), synopsis (kgcl_lib.data.acquire)

#: Genre tokens that mean "no genre" (ML-100K's ``unknown``, ML-20M's ``(no genres listed)``).
MISSING_GENRES = frozenset({"unknown", "(no genres listed)"})

# Dense exact sampling is used once the rejection sampler has few users left; it allocates
# ``rows x n_items`` floats per chunk, so cap the chunk at ~16M cells (128 MB).
_DENSE_CELLS = 1 << 24


# ---------------------------------------------------------------------------------------
# Small helpers: file checks and error location
# ---------------------------------------------------------------------------------------
def require_file(path: Path, how: str = "") -> Path:
    """Return ``path`` if it is a file, else raise :class:`DatasetError` naming it and ``how``."""
    path = Path(path)
    if not path.is_file():
        hint = f" {how}" if how else ""
        raise DatasetError(f"missing file {path}.{hint}")
    return path


def locate_bad_line(path: Path, ok: Callable[[list[str]], bool], sep: str | None, skip: int = 0):
    """First line of ``path`` (after ``skip`` header lines) whose fields fail ``ok``.

    Only called after a fast vectorised parse failed, to turn the parser's message into
    ``file:line: text``.  ``sep=None`` splits on runs of whitespace.  Blank lines are skipped
    (every parser here skips them too).  Returns ``(line_number, text)`` (1-based) or ``None``.
    """
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for no, line in enumerate(f, start=1):
            if no <= skip:
                continue
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            fields = text.split() if sep is None else text.split(sep)
            if not ok(fields):
                return no, text
    return None


def _is_int(s: str) -> bool:
    return bool(re.fullmatch(r"\s*[+-]?\d+\s*", s))


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _raise_bad(path: Path, ok, sep, skip: int, expect: str, err: Exception | None = None):
    hit = locate_bad_line(path, ok, sep, skip)
    if hit is not None:
        no, text = hit
        raise DatasetError(f"{path}:{no}: malformed line {text[:200]!r} (expected {expect})") from err
    raise DatasetError(f"{path}: cannot parse ({expect}): {err}") from err


def read_int_table(path: Path, n_cols: int, what: str = "integers") -> np.ndarray:
    """Read a whitespace-separated headerless table of ``n_cols`` integers as ``int64[n, n_cols]``.

    Uses pandas' C parser; a malformed line raises :class:`DatasetError` with ``file:line``.
    """
    path = Path(path)
    ok = lambda f: len(f) == n_cols and all(map(_is_int, f))  # noqa: E731
    try:
        df = pd.read_csv(
            path, sep=r"\s+", header=None, names=list(range(n_cols)), dtype=np.int64, index_col=False, engine="c"
        )
    except (ValueError, pd.errors.ParserError) as e:
        _raise_bad(path, ok, None, 0, f"{n_cols} whitespace-separated {what}", e)
    return df.to_numpy(dtype=np.int64).reshape(-1, n_cols)


def read_tsv_strings(path: Path, n_cols: int, header: bool) -> pd.DataFrame:
    """Read a tab-separated table of exactly ``n_cols`` string fields (no quoting rules).

    ``header=True`` skips the first line; blank lines are skipped; CRLF endings are fine.
    Columns are named ``0..n_cols-1``; empty fields are ``""``.  Uses pyarrow's parser, which
    rejects a line with a different number of fields (reported as ``file:line``).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    ok = lambda f: len(f) == n_cols  # noqa: E731
    names = [str(i) for i in range(n_cols)]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=int(header)),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, ValueError) as e:
        _raise_bad(path, ok, "\t", int(header), f"{n_cols} tab-separated fields", e)
    return pd.DataFrame({i: table.column(i).to_numpy(zero_copy_only=False) for i in range(n_cols)}).astype(str)


def _sorted_raw_ids(values: np.ndarray) -> np.ndarray:
    """Unique raw ids (``object`` of str) sorted numerically when all are integers, else as text."""
    uniq = pd.Series(pd.unique(pd.Series(values, dtype=object).astype(str)), dtype=object)
    if len(uniq) and uniq.str.fullmatch(r"\d+").all():
        order = np.argsort(uniq.astype(np.int64).to_numpy(), kind="stable")
    else:
        order = np.argsort(uniq.to_numpy(dtype=str), kind="stable")
    return uniq.to_numpy(dtype=object)[order]


# ---------------------------------------------------------------------------------------
# Vectorised sampling of distinct items per user
# ---------------------------------------------------------------------------------------
def sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-D array, by sorting.

    ``np.unique`` in numpy >= 2.3 hashes first; on 20M random int64 keys it takes over a
    minute here, against half a second for sort + neighbour comparison.
    """
    a = np.sort(np.asarray(a).ravel())
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``bool[len(keys)]``: which ``keys`` occur in the sorted array ``sorted_keys``."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos[pos == len(sorted_keys)] = len(sorted_keys) - 1
    return sorted_keys[pos] == keys


def sample_distinct_items(
    users: np.ndarray,
    need: np.ndarray,
    n_items: int,
    rng: np.random.Generator,
    exclude_keys: np.ndarray | None = None,
    p: np.ndarray | None = None,
    rounds: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample, for each user, ``need[u]`` distinct items not in that user's excluded set.

    Args:
        users: ``int64[U]`` distinct user indices in ascending order.
        need: ``int64[U]`` how many items each user needs (>= 0).
        n_items: items are ``0..n_items-1``.
        rng: explicit generator (the result is a deterministic function of its state).
        exclude_keys: sorted unique ``int64`` keys ``user * n_items + item`` that must not be
            drawn (e.g. every rated pair).  ``None`` = nothing excluded.
        p: optional ``float[n_items]`` item weights for the candidate draws (popularity);
            ``None`` = uniform, which makes the result a uniform random subset of the allowed
            items (the procedure is symmetric in the allowed items).
        rounds: rejection rounds before the remaining users are finished exactly.

    Returns:
        ``(user, item)`` as two ``int64`` arrays sorted by ``(user, item)``.  A user who has
        fewer allowed items than ``need`` gets all of them (callers check the shortfall).

    Vectorised rejection sampling: draw ``need`` candidates per user, drop excluded and
    duplicate ones, repeat for what is missing.  Users still short after ``rounds`` (heavy
    users near saturation) are finished exactly on a dense ``users x items`` mask in chunks,
    drawing uniformly among what is left.
    """
    users = np.asarray(users, dtype=np.int64)
    need = np.asarray(need, dtype=np.int64).copy()
    excl = np.zeros(0, dtype=np.int64) if exclude_keys is None else np.asarray(exclude_keys, dtype=np.int64)
    if p is not None:
        cdf = np.cumsum(np.asarray(p, dtype=np.float64))
        cdf /= cdf[-1]
    chosen: list[np.ndarray] = []
    chosen_sorted = np.zeros(0, dtype=np.int64)
    pending = need > 0
    for _ in range(rounds):
        if not pending.any():
            break
        pu, pn = users[pending], need[pending]
        slot_user = np.repeat(pu, pn)
        if p is None:
            cand = rng.integers(0, n_items, size=len(slot_user), dtype=np.int64)
        else:
            cand = np.minimum(np.searchsorted(cdf, rng.random(len(slot_user)), side="right"), n_items - 1)
        keys = slot_user * n_items + cand
        keys = keys[~_member(excl, keys)]
        keys = sorted_unique(keys)  # distinct within the round ...
        keys = keys[~_member(chosen_sorted, keys)]  # ... and against earlier rounds
        if len(keys):
            chosen.append(keys)
            chosen_sorted = np.sort(np.concatenate([chosen_sorted, keys]), kind="stable")
            got = np.bincount(np.searchsorted(users, keys // n_items), minlength=len(users))
            need -= got
        pending = need > 0
        # Stop the rejection rounds once few slots remain: the dense pass is exact and cheap.
        if need[pending].sum() * 50 < len(slot_user) and pending.sum() * n_items < _DENSE_CELLS:
            break
    if pending.any():
        chosen.append(_dense_finish(users[pending], need[pending], n_items, rng, excl, chosen_sorted))
    keys = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return keys // n_items, keys % n_items


def _gather_user_keys(sorted_keys: np.ndarray, users: np.ndarray, n_items: int):
    """Keys of ``sorted_keys`` that belong to ``users``: ``(row in users, item)`` arrays."""
    lo = np.searchsorted(sorted_keys, users * n_items)
    hi = np.searchsorted(sorted_keys, (users + 1) * n_items)
    counts = hi - lo
    rows = np.repeat(np.arange(len(users)), counts)
    # position of each gathered key: its range start plus its offset inside the range
    idx = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
    return rows, sorted_keys[idx] % n_items


def _dense_finish(users, need, n_items, rng, excl, chosen_sorted) -> np.ndarray:
    """Exact uniform sampling of ``need[u]`` allowed items for a few users (dense masks)."""
    out = []
    step = max(1, _DENSE_CELLS // max(n_items, 1))
    for s in range(0, len(users), step):
        cu, cn = users[s : s + step], need[s : s + step]
        mask = np.zeros((len(cu), n_items), dtype=bool)
        for taken in (excl, chosen_sorted):
            rows, cols = _gather_user_keys(taken, cu, n_items)
            mask[rows, cols] = True
        keys = rng.random((len(cu), n_items))
        keys[mask] = 2.0  # taken items sort last
        k = int(cn.max())
        part = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n_items else np.argsort(keys, axis=1)
        topkey = np.take_along_axis(keys, part, axis=1)
        take = (np.argsort(np.argsort(topkey, axis=1), axis=1) < cn[:, None]) & (topkey < 2.0)
        r, c = np.nonzero(take)
        out.append(cu[r] * n_items + part[r, c])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


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


def _check_unique(values: pd.Series, path: Path, what: str, header: bool):
    dup = values.duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DatasetError(f"{path}:{row + 1 + int(header)}: duplicate {what} {values.iloc[row]!r}")


# ---------------------------------------------------------------------------------------
# Validation of integer-indexed files (KGCN format)
# ---------------------------------------------------------------------------------------
def check_dense_ids(table: np.ndarray, path: Path, cols: Sequence[tuple[int, str]], floor: int = 0,
                    also: np.ndarray | None = None) -> int:
    """Check that the ids in ``table[:, cols]`` lie in ``0..n-1``; return ``n``.

    KGCN's preprocessing numbers users, entities and relations densely, so ``n`` is the number
    of distinct ids, plus ids ``0..floor-1`` that exist without appearing (items without
    ratings or triples): ``n = floor + #distinct ids >= floor`` (``also``: more ids of the same
    space, e.g. rated items).  A larger id is a corrupt or foreign file; it is reported as
    ``file:line`` with the limit.  Costs a sort of the ids; nothing is sized by their values.
    """
    values = table[:, [c for c, _ in cols]]
    pool = values.ravel() if also is None else np.concatenate([values.ravel(), np.asarray(also).ravel()])
    distinct = sorted_unique(pool)
    n = int(floor + np.count_nonzero(distinct >= floor))
    bad = values >= n
    if bad.any():
        r, c = np.argwhere(bad)[0]
        col, what = cols[int(c)]
        raise DatasetError(
            f"{path}:{r + 1}: {what} id {table[r, col]} out of range 0..{n - 1} (ids are numbered densely: "
            f"{n} distinct {what if len(cols) == 1 else 'entity'} ids{f' incl. {floor} items' if floor else ''})"
        )
    return n


def drop_duplicate_rows(ratings: np.ndarray, path: Path) -> np.ndarray:
    """``ratings`` (``user, item, label``) without exact duplicate rows (first kept, order kept).

    A duplicated row would be counted twice in training and could land in train *and* test.
    The number dropped is given in a warning.  One ``(user, item)`` pair with both labels is
    a contradiction and raises :class:`DatasetError` naming both lines.
    """
    if len(ratings) < 2:
        return ratings
    n_items = int(ratings[:, 1].max()) + 1
    pair = ratings[:, 0] * n_items + ratings[:, 1]
    sorted_pairs = np.sort(pair)  # fast path: most files have no repeated pair at all
    if not (sorted_pairs[1:] == sorted_pairs[:-1]).any():
        return ratings
    del sorted_pairs
    order = np.argsort(pair * 2 + ratings[:, 2], kind="stable")  # by pair, label, line (labels are 0/1)
    sp, sl = pair[order], ratings[order, 2]
    same_pair = sp[1:] == sp[:-1]
    exact = same_pair & (sl[1:] == sl[:-1])
    conflict = same_pair & ~exact
    if conflict.any():
        k = int(np.flatnonzero(conflict)[0])
        block = np.flatnonzero(sp == sp[k])  # the pair's rows, by label then line
        # first line with each label: rows k and k + 1 start the two label runs of the block
        first_of = lambda label: int(order[block[sl[block] == label][0]]) + 1  # noqa: E731
        lines = sorted((first_of(sl[k]), first_of(sl[k + 1])))
        u, i = ratings[lines[0] - 1, 0], ratings[lines[0] - 1, 1]
        raise DatasetError(
            f"{path}:{lines[0]} and {path}:{lines[1]}: user {u} item {i} labelled both "
            f"{ratings[lines[0] - 1, 2]} and {ratings[lines[1] - 1, 2]}; keep one of the two lines"
        )
    if not exact.any():
        return ratings
    drop = np.zeros(len(ratings), dtype=bool)
    drop[order[1:][exact]] = True
    warnings.warn(
        f"{path}: {int(drop.sum())} duplicate rows dropped (exact copies of an earlier line, e.g. line "
        f"{int(np.flatnonzero(drop)[0]) + 1}); the split uses each (user, item) pair once",
        stacklevel=3,
    )
    return ratings[~drop]


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


def _read_atomic(path: Path, kind: str | None = None) -> pd.DataFrame:
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


def _first_col(df: pd.DataFrame, *candidates: str) -> pd.Series | None:
    for c in candidates:
        if c in df.columns:
            return df[c]
    return None


def _require_cols(df: pd.DataFrame, path: Path, *cols: str):
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}:1: header lacks column(s) {missing}; has {list(df.columns)}")


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
    _check_unique(df[0], path, "item id", header=True)
    return pd.Series(df[1].to_numpy(dtype=object), index=df[0].str.strip().to_numpy(dtype=object))


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

    link = _read_atomic(paths["link"], "link")
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

    inter = _read_atomic(paths["inter"], "inter")
    _require_cols(inter, paths["inter"], "user_id", "item_id")
    rating = pd.to_numeric(inter["rating"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(rating).any():
        r = int(np.flatnonzero(np.isnan(rating))[0])
        raise DatasetError(f"{paths['inter']}:{r + 2}: rating {inter['rating'].iloc[r]!r} is not a number")
    item_idx = pd.Index(item_raw.astype(str)).get_indexer(inter["item_id"].str.strip())
    ratings, user_raw_ids, info = kgcn_convert(
        inter["user_id"].str.strip().to_numpy(dtype=object), item_idx, rating, n_items, threshold, rng, str(paths["inter"])
    )

    kgdf = _read_atomic(paths["kg"], "kg")
    _require_cols(kgdf, paths["kg"], "head_id", "relation_id", "tail_id")
    kg, entity_raw_ids, relation_names = index_kg(
        kgdf["head_id"].str.strip().to_numpy(), kgdf["relation_id"].str.strip().to_numpy(),
        kgdf["tail_id"].str.strip().to_numpy(), item_entities, relation_order="sorted",
    )

    title = year = genres = None
    if paths["item"].is_file():
        meta = _read_atomic(paths["item"], "item")
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


def _read_small_csv(path: Path, cols: Sequence[str]) -> pd.DataFrame:
    """A quoted CSV with a header holding ``cols`` (movies.csv / links.csv); ids as int."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], engine="c")
    except (ValueError, pd.errors.ParserError) as e:
        raise DatasetError(f"{path}: cannot parse CSV: {e}") from e
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}:1: header lacks column(s) {missing}; has {list(df.columns)}")
    ids = pd.to_numeric(df[cols[0]], errors="coerce")
    if ids.isna().any():
        r = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise DatasetError(f"{path}:{r + 2}: {cols[0]} {df[cols[0]].iloc[r]!r} is not an integer")
    df[cols[0]] = ids.astype(np.int64)
    return df[list(cols)]


# ---------------------------------------------------------------------------------------
# Format detection
# ---------------------------------------------------------------------------------------
FORMATS = ("recbole", "ml20m-raw", "kgcn")


def detect_format(folder: Path) -> str | None:
    """Which format ``folder`` holds: ``"recbole"`` (a ``*.inter``), ``"ml20m-raw"``
    (``ratings.csv``), ``"kgcn"`` (``ratings_final.txt``), checked in that order; ``None``."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if any(folder.glob("*.inter")):
        return "recbole"
    if (folder / ML20M_RATINGS).is_file():
        return "ml20m-raw"
    if (folder / KGCN_RATINGS).is_file():
        return "kgcn"
    return None


def source_files(folder: Path, fmt: str) -> list[Path]:
    """The files a reader of ``fmt`` consumes from ``folder`` (those that exist), for checksums."""
    folder = Path(folder)
    if fmt == "kgcn":
        names = [KGCN_RATINGS, KGCN_KG] + [p.name for p in sorted(folder.glob(KGCN_ITEM_MAP_GLOB))[:1]] + [BOOKS]
    elif fmt == "recbole":
        stem = sorted(folder.glob("*.inter"))[0].stem
        names = [f"{stem}.{e}" for e in ("inter", "item", "kg", "link")] + [SYNOPSES]
    elif fmt == "ml20m-raw":
        names = [ML20M_RATINGS, ML20M_ITEM_MAP, ML20M_KG, ML20M_MOVIES, ML20M_LINKS, SYNOPSES]
    else:
        raise DatasetError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return [folder / n for n in names if (folder / n).is_file()]


def read_folder(
    folder: Path, name: str | None = None, *, threshold: float = 4, seed=0, synopses=None, how: str = ""
) -> KGDataset:
    """Read whatever format ``folder`` holds (see :func:`detect_format`).

    ``name`` is used by the ML-20M and KGCN readers (default: the folder name); RecBole
    datasets are named after their ``*.inter`` file.  ``threshold``/``seed``/``synopses`` go
    to the converting readers, ``how`` into missing-file errors.
    """
    fmt = detect_format(folder)
    if fmt == "recbole":
        return read_recbole(folder, None, threshold=threshold, seed=seed, synopses=synopses, how=how)
    if fmt == "ml20m-raw":
        return read_ml20m_raw(folder, name or Path(folder).name, threshold=threshold, seed=seed, how=how)
    if fmt == "kgcn":
        return read_kgcn(folder, name, how=how)
    raise DatasetError(
        f"{folder}: no dataset files found (need RecBole *.inter/.kg/.link, or ratings.csv + "
        f"{ML20M_ITEM_MAP} + {ML20M_KG}, or {KGCN_RATINGS} + {KGCN_KG}). {how}"
    )
