"""Parsing helpers every format uses: required files, integer and string tables whose errors name
file:line, id and duplicate checks."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..dataset import DatasetError
from .sampling import sorted_unique


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
