"""Get the paper's exact inputs with one call: raw files, KGCN conversion, synopses, book metadata.

``fetch_dataset("ml-20m", dest)`` leaves in ``dest``::

    ratings.csv  movies.csv  links.csv         MovieLens-20M (GroupLens ml-20m.zip)
    item_index2entity_id.txt  kg.txt           KGCN's Satori KG for it
    synopses.tsv                               item_id <TAB> synopsis (TMDB overview; Wikipedia fallback)

``fetch_dataset("book-crossing", dest)`` leaves::

    ratings_final.txt  kg_final.txt  item_index2entity_id_rehashed.txt   KGCN format (RippleNet protocol)
    books.tsv      isbn, title, author, year, genres ("|"-joined), synopsis

and for both: ``coverage.json`` (counts per field and source, Table-1 check, request counts),
``missing.tsv`` (field, item_id, title, reason for every gap), ``raw/`` (downloaded archives)
and ``.kgcl-fetch/`` (JSONL API caches and conversion state).  A rerun makes no request: files
are verified locally, the conversion is skipped when its inputs and parameters are unchanged,
and every API answer (or permanent miss) is read from the cache.

Book-Crossing conversion (RippleNet ``preprocess.py``, the protocol KGCN reuses; threshold 0)
-------------------------------------------------------------------------------------------
* Item ``i`` is line ``i`` of ``item_index2entity_id_rehashed.txt`` (``ISBN <TAB> satori id``);
  rating lines whose ISBN is not listed are dropped.
* ``BX-Book-Ratings.csv`` lines are split on ``;`` and each field loses its first and last
  character (the quotes).  A rating ``>= threshold`` is positive, else negative; with the
  paper's threshold 0 every rating (0 = implicit) is positive.  (The issue text says "> 0";
  RippleNet's code uses ``>=``, which we follow: it is what produced the published counts.)
* Users are numbered in order of their first positive rating; users without positives vanish.
* Per user, as many negatives as distinct positives are drawn without replacement from the
  items the user neither rated positively nor negatively.  RippleNet used the global
  ``np.random.seed(555)``; we use an explicit ``numpy.random.Generator(seed)``, so the
  negatives are a different (equally valid) sample — counts and positives are identical.
* KG: item satori ids map to their item index; every other head/tail gets the next index in
  order of first appearance (head before tail, line by line); relations likewise.

Movie synopses: TMDB ``/movie/{tmdbId}`` ``overview`` (``TMDB_API_KEY``, v3 key or v4 token);
without a key, Wikipedia page summaries of "<title> (<year> film)", "<title> (film)",
"<title>" (accepting an article that is a film of that year).  Book genres and synopses:
Goodreads (UCSD Book Graph, optional, ~2 GB) first, else Google Books ``categories`` /
``description``; title, author and year from BX-Books.csv, else Google Books.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import logging
import os
import re
import shutil
import sys
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from tqdm.auto import tqdm

from .. import storage
from . import sources as srcs
from .dataset import DatasetError
from .download import (
    DownloadError,
    HttpClient,
    HttpStatusError,
    JsonlCache,
    Manifest,
    QuotaExceeded,
    cached_json,
)

log = logging.getLogger(__name__)

#: Accepted dataset names → canonical name (the folder name under the data dir).
DATASETS = {
    "ml-20m": "ml-20m",
    "movielens-20m": "ml-20m",
    "movie": "ml-20m",
    "book-crossing": "book-crossing",
    "book": "book-crossing",
    "bx": "book-crossing",
}

#: Table 1 of the paper (keys as in ``KGDataset.stats()``).
PAPER_TABLE1 = {
    "ml-20m": {"users": 138_159, "contents": 16_954, "uc_rows": 13_501_622, "entities": 102_569, "relations": 32, "kg_triples": 499_474},
    "book-crossing": {"users": 17_860, "contents": 14_967, "uc_rows": 139_746, "entities": 77_903, "relations": 25, "kg_triples": 151_500},
}
#: Text coverage the paper reports (Section 4.1).
PAPER_TEXT = {"ml-20m": {"synopsis": 16_954 - 169}, "book-crossing": {"genres": 11_156, "synopsis": 10_294}}

WORK = ".kgcl-fetch"  # per-destination cache folder (API JSONL, conversion state)
MOVIE_TEXT_MODES = ("auto", "tmdb", "wikipedia", "tmdb+wikipedia", "none")

MISSING_TMDB_KEY = (
    "TMDB_API_KEY is not set. The paper's movie synopses are TMDB overviews, fetched by the tmdbId "
    "in MovieLens' links.csv. Get a free key at https://www.themoviedb.org/settings/api, then "
    "`export TMDB_API_KEY=<v3 API key or v4 read-access token>` and rerun (answers already cached are kept)."
)


class ApiKeyError(DownloadError):
    """An API key is missing or was rejected; the message says how to fix it."""


# Small helpers -------------------------------------------------------------------------------
def canonical_name(name: str) -> str:
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; fetch knows {sorted(set(DATASETS.values()))}") from None


def _clean(text, *, strip_html: bool = False) -> str | None:
    """One-line text for a TSV cell: HTML entities decoded, optional tags removed, whitespace
    (tabs/newlines included) collapsed.  ``None`` for missing / empty input."""
    if not isinstance(text, str):
        return None
    if strip_html:
        text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", html.unescape(text)).strip()
    return text or None


def _write_tsv(path: Path, header: list[str] | None, rows: Iterable[Iterable]) -> Path:
    """Plain TSV (no quoting, like ``synopses.tsv`` of ml-100k); cells must be clean already."""
    with storage.atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        if header is not None:
            f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join("" if v is None else str(v) for v in row) + "\n")
    return path


def _read_state(work: Path) -> dict:
    p = work / "state.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _write_state(work: Path, state: dict) -> None:
    storage.write_json(work / "state.json", state)


def _read_tab(path: Path, ncols: int) -> pd.DataFrame:
    """A tab-separated file of strings, no header, no NA guessing; the first ``ncols`` fields.

    Like the reference ``line.strip().split('\\t')``: surrounding whitespace of each line is
    ignored, blank lines are skipped, extra fields are ignored.  Raises :class:`DatasetError`
    naming the first line with fewer than ``ncols`` fields.
    """
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    lines = pd.Series(text.split("\n"), dtype=object).str.strip()
    lineno = np.flatnonzero((lines != "").to_numpy()) + 1
    parts = lines[lines != ""].str.split("\t", expand=True).reindex(columns=range(ncols))
    short = parts.isna().any(axis=1).to_numpy()
    if short.any():
        i = int(np.flatnonzero(short)[0])
        raise DatasetError(f"{path}:{lineno[i]}: expected {ncols} tab-separated fields, got {lines.iloc[lineno[i] - 1]!r}")
    return parts.reset_index(drop=True)


@dataclass(frozen=True)
class _Ctx:
    """What every step of one fetch shares."""

    client: HttpClient
    overrides: dict
    manifest: Manifest
    retrust: bool
    progress: bool
    workers: int
    refresh_errors: bool
    dest: Path

    @property
    def work(self) -> Path:
        p = self.dest / WORK
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def raw(self) -> Path:
        p = self.dest / "raw"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def fetch(self, source: str, name: str, folder: Path) -> Path:
        """Download file ``name`` of source ``source`` into ``folder`` (verified, resumable)."""
        src = srcs.resolve(source, self.overrides)
        f = src.file(name)
        return self.client.download(
            src.urls(name),
            folder / name,
            sha256=f.sha256,
            md5=f.md5,
            manifest=self.manifest,
            manifest_key=f"{src.name}/{name}",
            retrust=self.retrust,
            progress=self.progress,
        )


def _extract(zip_path: Path, basename: str, out: Path, work: Path) -> Path:
    """Extract the member of ``zip_path`` whose file name is ``basename`` to ``out`` (atomic).

    Skipped when ``out`` already holds that member of this very archive (state keyed by the
    archive's size and mtime, and the member's size).
    """
    st = zip_path.stat()
    state = _read_state(work)
    key = f"extract:{out.name}"
    with zipfile.ZipFile(zip_path) as zf:
        members = [i for i in zf.infolist() if Path(i.filename).name == basename and not i.is_dir()]
        if not members:
            raise DatasetError(f"{zip_path}: no member named {basename} (has {[i.filename for i in zf.infolist()][:10]})")
        info = members[0]
        want = {"zip": zip_path.name, "zip_size": st.st_size, "zip_mtime_ns": st.st_mtime_ns, "member": info.filename, "size": info.file_size}
        if out.exists() and out.stat().st_size == info.file_size and state.get(key) == want:
            return out
        with storage.atomic_path(out) as tmp, zf.open(info) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    state = _read_state(work)
    state[key] = want
    _write_state(work, state)
    return out


class _Stopper:
    """Shared "stop asking this API" flag (daily quota spent): later items are skipped, not failed."""

    def __init__(self):
        self.event = threading.Event()
        self.reason = ""

    def stop(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()
            log.warning("%s", reason)


def _map_items(fn: Callable, items: list, *, workers: int, desc: str, progress: bool) -> list:
    """``[fn(x) for x in items]`` on ``workers`` threads (I/O bound), with a progress bar.

    Results keep the order of ``items``.  The first exception cancels what has not started
    and is re-raised; requests already in flight finish, so caches only ever get whole lines.
    """
    out = [None] * len(items)
    bar = tqdm(total=len(items), desc=desc, unit="item", disable=not progress, leave=False)
    try:
        if workers <= 1:
            for i, x in enumerate(items):
                out[i] = fn(x)
                bar.update()
            return out
        with ThreadPoolExecutor(max_workers=workers) as ex:
            futures = {ex.submit(fn, x): i for i, x in enumerate(items)}
            try:
                for fut in as_completed(futures):
                    out[futures[fut]] = fut.result()
                    bar.update()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return out
    finally:
        bar.close()


# Coverage --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldCoverage:
    """How many of ``total`` items got ``field``, split by source."""

    field: str
    total: int
    have: int
    by_source: dict

    @property
    def missing(self) -> int:
        return self.total - self.have

    def line(self, paper: int | None = None) -> str:
        src = ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_source.items()) if v)
        s = f"{self.field}: {self.have:,} of {self.total:,}; {self.missing:,} missing"
        if src:
            s += f" ({src})"
        if paper is not None:
            s += f" [paper: {paper:,}]"
        return s


def _finish(ctx: _Ctx, name: str, coverage: list[FieldCoverage], missing: list[tuple], counts: dict, notes: list[str], verbose: bool, extra: dict | None = None) -> dict:
    """Write ``coverage.json`` and ``missing.tsv``; print the summary; return the coverage dict."""
    paper = PAPER_TABLE1[name]
    table = {k: {"ours": counts[k], "paper": paper[k], "match": counts[k] == paper[k]} for k in counts if k in paper}
    report = {
        "dataset": name,
        "fields": {c.field: {"have": c.have, "of": c.total, "missing": c.missing, "by_source": c.by_source} for c in coverage},
        "paper_text_coverage": PAPER_TEXT.get(name, {}),
        "table1": table,
        "requests": dict(ctx.client.stats),
        "notes": notes,
        **(extra or {}),
    }
    lines = [f"{name}: fetched into {ctx.dest}"]
    for k, v in table.items():
        lines.append(f"  {k}: {v['ours']:,}" + ("" if v["match"] else f"  (paper Table 1: {v['paper']:,} — differs)"))
    for c in coverage:
        lines.append("  " + c.line(PAPER_TEXT.get(name, {}).get(c.field)))
    if missing:
        lines.append(f"  missing items listed in {ctx.dest / 'missing.tsv'}")
    lines += [f"  note: {n}" for n in notes]
    lines.append(f"  HTTP requests this run: {ctx.client.stats['requests']:,}")
    msg = "\n".join(lines)
    log.info("%s", msg)
    if verbose:
        print(msg, file=sys.stderr)
    report["summary"] = msg
    storage.write_json(ctx.dest / "coverage.json", report)
    _write_tsv(ctx.dest / "missing.tsv", ["field", "item_id", "title", "reason"], missing)
    return report


# Book-Crossing conversion (RippleNet / KGCN protocol) ------------------------------------------------
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


# Movie synopses ---------------------------------------------------------------------------------
_ARTICLES = ("The", "A", "An", "Les", "Le", "La", "L'", "Il", "El", "Die", "Der", "Das", "Los", "Las", "Un", "Une", "I", "Det", "Den")
_YEAR = re.compile(r"\s*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(.*), (" + "|".join(re.escape(a) for a in _ARTICLES) + r")$")


def movielens_title(raw: str) -> tuple[str, int | None]:
    """MovieLens ``"American President, The (1995)"`` → ``("The American President", 1995)``.

    Drops the year, any trailing alternate titles in parentheses ("(Cité des enfants perdus,
    La)", "(a.k.a. Seven)") and moves a trailing article to the front.
    """
    raw = (raw or "").strip()
    m = _YEAR.search(raw)
    year = int(m.group(1)) if m else None
    title = raw[: m.start()] if m else raw
    while True:
        stripped = re.sub(r"\s*\([^()]*\)\s*$", "", title)
        if stripped == title or not stripped.strip():
            break
        title = stripped
    title = title.strip()
    m = _TRAILING_ARTICLE.match(title)
    if m:
        art = m.group(2)
        title = f"{art}{'' if art.endswith(chr(39)) else ' '}{m.group(1)}"
    return title, year


def wikipedia_candidates(title: str, year: int | None) -> list[tuple[str, str]]:
    """Page titles to try, best first, each with the acceptance rule's kind."""
    out = [(f"{title} ({year} film)", "year_film")] if year else []
    return out + [(f"{title} (film)", "film"), (title, "bare")]


def _wiki_accept(data, year: int | None, kind: str) -> bool:
    """Is this page summary the film's article?  Disambiguation pages never are."""
    if not isinstance(data, dict) or data.get("type") != "standard" or not _clean(data.get("extract")):
        return False
    text = f"{data.get('description') or ''} {data['extract'][:400]}".lower()
    if kind == "year_film":
        return True
    has_year = year is None or str(year) in text
    return has_year and (kind == "film" or "film" in text)


def _tmdb_auth(key: str) -> tuple[str, dict]:
    """(query suffix, headers) for a v3 API key or a v4 read-access token (a JWT, ``eyJ…``)."""
    if key.startswith("eyJ") or len(key) > 64:
        return "", {"Authorization": f"Bearer {key}"}
    return f"&api_key={quote(key)}", {}


def movie_synopses(ctx: _Ctx, mode: str = "auto", verbose: bool = True) -> tuple[FieldCoverage, list[tuple], list[str]]:
    """Write ``synopses.tsv`` for the items of ``item_index2entity_id.txt`` in ``ctx.dest``.

    Args:
        mode: ``"tmdb"`` (paper; needs ``TMDB_API_KEY``), ``"wikipedia"`` (keyless),
            ``"tmdb+wikipedia"`` (TMDB, Wikipedia for TMDB's gaps), ``"auto"`` (``"tmdb"`` with a
            key, else a clear message and ``"wikipedia"``).

    Returns: ``(coverage, missing rows, notes)``.

    Raises: :class:`ApiKeyError` when TMDB is required but the key is missing or rejected.
    """
    if mode not in MOVIE_TEXT_MODES:
        raise ValueError(f"movie_text must be one of {MOVIE_TEXT_MODES}, got {mode!r}")
    notes = []
    key = os.environ.get("TMDB_API_KEY", "").strip()
    if mode == "auto":
        if key:
            mode = "tmdb"
        else:
            msg = MISSING_TMDB_KEY + " Falling back to Wikipedia page summaries (keyless); they differ from the paper's TMDB text."
            log.warning("%s", msg)
            if verbose:
                print(msg, file=sys.stderr)
            notes.append("TMDB_API_KEY missing: synopses from Wikipedia (keyless fallback), not the paper's TMDB overviews")
            mode = "wikipedia"
    use_tmdb, use_wiki = "tmdb" in mode, "wikipedia" in mode
    if use_tmdb and not key:
        raise ApiKeyError(MISSING_TMDB_KEY)

    dest = ctx.dest
    items = _read_tab(dest / "item_index2entity_id.txt", 2)[0].to_numpy(dtype=object)
    movies = pd.read_csv(dest / "movies.csv", dtype={"movieId": str, "title": str}, keep_default_na=False).set_index("movieId")
    links = pd.read_csv(dest / "links.csv", dtype={"movieId": str, "tmdbId": "Int64"}).set_index("movieId")
    titles = movies["title"].reindex(items).fillna("").to_numpy(dtype=object)
    tmdb_ids = links["tmdbId"].reindex(items).to_numpy(dtype=object)

    tmdb = srcs.resolve("TMDB", ctx.overrides)
    wiki = srcs.resolve("WIKIPEDIA", ctx.overrides)
    tmdb_cache = JsonlCache(ctx.work / "tmdb.jsonl")
    wiki_cache = JsonlCache(ctx.work / "wikipedia.jsonl")
    suffix, tmdb_headers = _tmdb_auth(key) if key else ("", {})
    stoppers = {"tmdb": _Stopper(), "wikipedia": _Stopper()}

    def one(i: int):
        reasons = []
        if use_tmdb:
            tid = tmdb_ids[i]
            if tid is None or pd.isna(tid):
                reasons.append("no tmdbId in links.csv")
            elif stoppers["tmdb"].event.is_set():
                reasons.append(f"TMDB skipped: {stoppers['tmdb'].reason}")
            else:
                ck = f"movie/{int(tid)}?language=en-US"
                try:
                    rec = cached_json(ctx.client, tmdb_cache, ck, tmdb.url(ck) + suffix, tmdb_headers, refresh_errors=ctx.refresh_errors)
                except HttpStatusError as e:
                    if e.status in (401, 403):
                        raise ApiKeyError(f"TMDB rejected TMDB_API_KEY (HTTP {e.status}: {e.body[:200].decode('utf-8', 'replace')}). "
                                          "Check the key at https://www.themoviedb.org/settings/api") from None
                    reasons.append(f"TMDB: HTTP {e.status}")
                except QuotaExceeded as e:
                    stoppers["tmdb"].stop(f"TMDB: {e}")
                    reasons.append("TMDB: quota/throttled; rerun to resume")
                except DownloadError as e:
                    reasons.append(f"TMDB request failed (not cached; a rerun retries): {e}")
                else:
                    if rec.get("error"):
                        reasons.append(f"TMDB: {rec['error']}" + (" (not in TMDB)" if rec.get("status") == 404 else ""))
                    else:
                        text = _clean((rec.get("data") or {}).get("overview") if isinstance(rec.get("data"), dict) else None)
                        if text:
                            return text, "tmdb", None
                        reasons.append("TMDB: empty overview")
        if use_wiki:
            title, year = movielens_title(titles[i])
            if not title:
                reasons.append("no title in movies.csv")
            elif stoppers["wikipedia"].event.is_set():
                reasons.append(f"Wikipedia skipped: {stoppers['wikipedia'].reason}")
            else:
                for cand, kind in wikipedia_candidates(title, year):
                    page = quote(cand.replace(" ", "_"), safe="")
                    try:
                        rec = cached_json(ctx.client, wiki_cache, f"summary/{page}", wiki.url(page), refresh_errors=ctx.refresh_errors)
                    except QuotaExceeded as e:
                        stoppers["wikipedia"].stop(f"Wikipedia: {e}")
                        reasons.append("Wikipedia: throttled; rerun to resume")
                        break
                    except DownloadError as e:
                        reasons.append(f"Wikipedia request failed (not cached; a rerun retries): {e}")
                        break
                    if _wiki_accept(rec.get("data"), year, kind):
                        return _clean(rec["data"]["extract"]), "wikipedia", None
                else:
                    reasons.append(f"Wikipedia: no film article for {title!r} ({year})")
        return None, None, "; ".join(reasons) or "no source enabled"

    results = _map_items(one, list(range(len(items))), workers=ctx.workers, desc="movie synopses", progress=ctx.progress)
    by_source = {"tmdb": 0, "wikipedia": 0}
    rows, missing = [], []
    for i, (text, src, why) in enumerate(results):
        if text:
            rows.append((items[i], text))
            by_source[src] += 1
        else:
            missing.append(("synopsis", items[i], _clean(titles[i]) or "", why))
    rows.sort(key=lambda r: (0, int(r[0]), "") if str(r[0]).isdigit() else (1, 0, str(r[0])))  # numeric id order
    _write_tsv(dest / "synopses.tsv", ["item_id", "synopsis"], rows)
    notes += [s.reason for s in stoppers.values() if s.event.is_set()]
    return FieldCoverage("synopsis", len(items), len(rows), by_source), missing, notes


# Book metadata ---------------------------------------------------------------------------------
def read_bx_books(path: str | os.PathLike) -> pd.DataFrame:
    """``BX-Books.csv`` → ``isbn, title, author, year`` (strings / nullable Int64), first row per ISBN.

    The file is ``;``-separated, quoted, latin-1, with ``\\"`` escapes and HTML entities;
    malformed lines are skipped and counted (logged).
    """
    bad = []

    def skip(fields):  # pandas calls this for each malformed line; returning None drops it
        bad.append(fields)

    df = pd.read_csv(
        path,
        sep=";",
        encoding="latin-1",
        dtype=str,
        escapechar="\\",
        quotechar='"',
        keep_default_na=False,
        engine="python",
        on_bad_lines=skip,
    )
    if bad:
        log.warning("%s: skipped %d malformed lines", path, len(bad))
    cols = {c.lower(): c for c in df.columns}
    try:
        isbn, title, author, year = (cols[c] for c in ("isbn", "book-title", "book-author", "year-of-publication"))
    except KeyError:
        raise DatasetError(f"{path}: expected columns ISBN, Book-Title, Book-Author, Year-Of-Publication; got {list(df.columns)}") from None
    y = pd.to_numeric(df[year], errors="coerce")
    out = pd.DataFrame(
        {
            "isbn": df[isbn].str.strip(),
            "title": df[title].map(_clean),
            "author": df[author].map(_clean),
            "year": pd.array(np.where((y >= 1) & (y <= 2100), y, np.nan), dtype="Float64").astype("Int64"),
        }
    )
    return out.drop_duplicates("isbn", keep="first").set_index("isbn")


def isbn10_to_13(isbn: str) -> str | None:
    """``"0195153448"`` → ``"9780195153448"``; ``None`` if not an ISBN-10."""
    if not re.fullmatch(r"\d{9}[\dXx]", isbn or ""):
        return None
    core = "978" + isbn[:9]
    check = (10 - sum(int(d) * (1 if k % 2 == 0 else 3) for k, d in enumerate(core)) % 10) % 10
    return core + str(check)


_GR_ISBN = re.compile(r'"isbn": "([^"]*)"')
_GR_ISBN13 = re.compile(r'"isbn13": "([^"]*)"')
_GR_BOOK_ID = re.compile(r'"book_id": "([^"]*)"')


def goodreads_subset(books_gz: Path, genres_gz: Path, isbns: list[str], cache: Path, progress: bool = True) -> dict:
    """``{isbn: {"title", "description", "genres", "year"}}`` from the UCSD Book Graph dumps.

    Streams the gzipped JSON lines; a regex on the raw line picks candidates (ISBN-10 or
    ISBN-13 in our set) before any JSON parsing, so the 2.3 M-line file is one pass.  The
    result is cached in ``cache`` keyed by the dumps' sizes/mtimes and the ISBN list.
    """
    wanted10 = set(isbns)
    to10 = {isbn10_to_13(i): i for i in isbns if isbn10_to_13(i)}
    key = {
        "books": [books_gz.stat().st_size, books_gz.stat().st_mtime_ns],
        "genres": [genres_gz.stat().st_size, genres_gz.stat().st_mtime_ns],
        "isbns": storage.sha256_text(*sorted(isbns)),
    }
    if cache.exists():
        got = json.loads(cache.read_text())
        if got.get("key") == key:
            return got["books"]
    found: dict[str, dict] = {}
    by_book: dict[str, list[str]] = {}
    with gzip.open(books_gz, "rt", encoding="utf-8") as f:
        for line in tqdm(f, desc="goodreads books", unit=" lines", disable=not progress, leave=False):
            m10, m13 = _GR_ISBN.search(line), _GR_ISBN13.search(line)
            isbn = m10.group(1) if m10 and m10.group(1) in wanted10 else to10.get(m13.group(1)) if m13 else None
            if not isbn:
                continue
            rec = json.loads(line)
            desc = _clean(rec.get("description"), strip_html=True)
            if isbn in found and (found[isbn]["description"] or not desc):
                continue  # keep the first edition that has a description
            found[isbn] = {
                "title": _clean(rec.get("title")),
                "description": desc,
                "year": rec.get("publication_year") or None,
                "book_id": str(rec.get("book_id")),
                "genres": [],
            }
            by_book.setdefault(str(rec.get("book_id")), []).append(isbn)
    with gzip.open(genres_gz, "rt", encoding="utf-8") as f:
        for line in tqdm(f, desc="goodreads genres", unit=" lines", disable=not progress, leave=False):
            m = _GR_BOOK_ID.search(line)
            if not m or m.group(1) not in by_book:
                continue
            g = json.loads(line).get("genres") or {}
            names = [n for n, _ in sorted(g.items(), key=lambda kv: (-float(kv[1]), kv[0]))]
            for isbn in by_book[m.group(1)]:
                if found[isbn]["book_id"] == m.group(1):
                    found[isbn]["genres"] = names
    storage.write_json(cache, {"key": key, "books": found})
    return found


def _gbooks_pick(data, isbn: str) -> dict | None:
    """The ``volumeInfo`` of the volume carrying ``isbn`` (else the first one), or ``None``."""
    if not isinstance(data, dict) or not data.get("items"):
        return None
    vols = [v.get("volumeInfo") or {} for v in data["items"] if isinstance(v, dict)]
    for vi in vols:
        ids = {x.get("identifier") for x in vi.get("industryIdentifiers") or [] if isinstance(x, dict)}
        if isbn in ids or isbn10_to_13(isbn) in ids:
            return vi
    return vols[0] if vols else None


def book_metadata(ctx: _Ctx, *, goodreads: bool = False, google_books: bool = True) -> tuple[list[FieldCoverage], list[tuple], list[str]]:
    """Write ``books.tsv`` (isbn, title, author, year, genres, synopsis) for every mapped ISBN."""
    notes = []
    isbns = _read_tab(ctx.dest / "item_index2entity_id_rehashed.txt", 2)[0].tolist()
    n = len(isbns)

    bx = None
    try:
        zpath = ctx.fetch("BX_DUMP", "BX-CSV-Dump.zip", ctx.raw)
        bx = read_bx_books(_extract(zpath, "BX-Books.csv", ctx.raw / "BX-Books.csv", ctx.work))
    except (DownloadError, DatasetError, zipfile.BadZipFile) as e:
        notes.append(f"BX-Books.csv unavailable ({e}); titles/authors/years from Google Books only")
        log.warning("%s", notes[-1])

    gr = {}
    if goodreads:
        try:
            books_gz = ctx.fetch("GOODREADS", "goodreads_books.json.gz", ctx.raw)
            genres_gz = ctx.fetch("GOODREADS", "goodreads_book_genres_initial.json.gz", ctx.raw)
            gr = goodreads_subset(books_gz, genres_gz, isbns, ctx.work / "goodreads_subset.json", ctx.progress)
        except DownloadError as e:
            notes.append(f"Goodreads unavailable ({e}); genres/synopses from Google Books only")
            log.warning("%s", notes[-1])

    gb = [None] * n
    if google_books:
        src = srcs.resolve("GOOGLE_BOOKS", ctx.overrides)
        cache = JsonlCache(ctx.work / "google_books.jsonl")
        key = os.environ.get(src.key_env or "", "").strip()
        stop = _Stopper()

        def one(isbn: str):
            if stop.event.is_set():
                return None, f"Google Books skipped: {stop.reason}"
            q = f"volumes?q=isbn:{quote(isbn, safe='')}"
            try:
                rec = cached_json(ctx.client, cache, q, src.url(q) + (f"&key={quote(key)}" if key else ""), refresh_errors=ctx.refresh_errors)
            except QuotaExceeded as e:
                stop.stop(f"Google Books: {e}")
                return None, "Google Books quota spent; rerun later to resume"
            except HttpStatusError as e:
                if e.status in (401, 403) and key:
                    raise ApiKeyError(f"Google Books rejected GOOGLE_BOOKS_API_KEY (HTTP {e.status})") from None
                return None, f"Google Books: HTTP {e.status}"
            except DownloadError as e:
                return None, f"Google Books request failed (not cached; a rerun retries): {e}"
            if rec.get("error"):
                return None, f"Google Books: {rec['error']}"
            vi = _gbooks_pick(rec.get("data"), isbn)
            return vi, None if vi else "Google Books: no volume for this ISBN"

        gb = _map_items(one, isbns, workers=ctx.workers, desc="google books", progress=ctx.progress)
        if stop.event.is_set():
            notes.append(stop.reason)
    else:
        gb = [(None, "Google Books disabled")] * n

    rows, missing = [], []
    counts = {f: {} for f in ("title", "author", "year", "genres", "synopsis")}

    def take(field, *cands):
        for src_name, val in cands:
            if val not in (None, "", []) and not (isinstance(val, float) and np.isnan(val)):
                counts[field][src_name] = counts[field].get(src_name, 0) + 1
                return val
        return None

    for isbn, (vi, why) in zip(isbns, gb):
        b = bx.loc[isbn] if bx is not None and isbn in bx.index else None
        g = gr.get(isbn) or {}
        vi = vi or {}
        gyear = re.match(r"\d{4}", vi.get("publishedDate") or "")
        title = take("title", ("bx", b["title"] if b is not None else None), ("google_books", _clean(vi.get("title"))), ("goodreads", g.get("title")))
        author = take("author", ("bx", b["author"] if b is not None else None), ("google_books", _clean(", ".join(vi.get("authors") or []))))
        year = take(
            "year",
            ("bx", None if b is None or pd.isna(b["year"]) else int(b["year"])),
            ("google_books", int(gyear.group(0)) if gyear else None),
            ("goodreads", int(g["year"]) if str(g.get("year") or "").isdigit() else None),
        )
        genres = take(
            "genres",
            ("goodreads", [x for x in (_clean(s) for s in g.get("genres") or []) if x]),
            ("google_books", [x for x in (_clean(s) for s in vi.get("categories") or []) if x]),
        )
        synopsis = take("synopsis", ("goodreads", g.get("description")), ("google_books", _clean(vi.get("description"), strip_html=True)))
        rows.append((isbn, title, author, year, "|".join(s.replace("|", "/") for s in genres) if genres else None, synopsis))
        for field, val in (("title", title), ("author", author), ("year", year), ("genres", genres), ("synopsis", synopsis)):
            if val in (None, "", []):
                missing.append((field, isbn, title or "", why or f"no {field} in any source"))
    _write_tsv(ctx.dest / "books.tsv", ["isbn", "title", "author", "year", "genres", "synopsis"], rows)
    cov = [FieldCoverage(f, n, sum(c.values()), c) for f, c in counts.items()]
    return cov, missing, notes


# Entry points --------------------------------------------------------------------------------------
def fetch_dataset(
    name: str,
    dest: str | os.PathLike,
    *,
    text: bool = True,
    movie_text: str = "auto",
    goodreads: bool = False,
    google_books: bool = True,
    sources: dict[str, str] | None = None,
    workers: int = 4,
    seed: int = 555,
    threshold: float = 0.0,
    refresh_errors: bool = False,
    retrust: bool = False,
    progress: bool = True,
    verbose: bool = True,
    client: HttpClient | None = None,
    manifest: Manifest | str | os.PathLike | None = None,
) -> Path:
    """Download (or reuse) everything for ``name`` into ``dest``; returns ``dest``.

    Args:
        name: ``"ml-20m"`` or ``"book-crossing"`` (aliases: ``movie``, ``book``, ``bx``).
        dest: folder for the reader-ready files (created).
        text: also fetch synopses / book metadata (default True).
        movie_text: ``"auto"`` | ``"tmdb"`` | ``"wikipedia"`` | ``"tmdb+wikipedia"`` | ``"none"``
            (see :func:`movie_synopses`).
        goodreads: also use the UCSD Book Graph (~2 GB download) for book genres/synopses.
        google_books: query Google Books by ISBN (default True).
        sources: base-URL overrides ``{SOURCE: url}`` (see :mod:`kgcl_lib.data.sources`).
        workers: concurrent API requests (rate limits still apply per host).
        seed: seed of the Book-Crossing negative sampling.
        threshold: Book-Crossing positive threshold (RippleNet: 0).
        refresh_errors: re-request API keys cached as misses.
        retrust: accept and re-record changed upstream files (trust-on-first-use manifest).
        progress, verbose: progress bars; print the coverage summary to stderr.
        client: an :class:`HttpClient` (tests inject fake clocks here).
        manifest: checksum manifest or its path (default in ``$KGCL_CACHE_DIR/downloads``).

    Raises:
        DownloadError: a required file could not be fetched or failed its checksum.
        ApiKeyError: TMDB required but ``TMDB_API_KEY`` missing / rejected.
        DatasetError: a raw file is malformed (message names file:line).
    """
    name = canonical_name(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    overrides = {k.upper(): v for k, v in (sources or {}).items()}
    unknown = sorted(set(overrides) - set(srcs.SOURCES))
    if unknown:
        raise ValueError(f"sources: unknown source(s) {unknown}; known: {sorted(srcs.SOURCES)}")
    if name == "ml-20m" and text:  # fail before a 190 MB download, not after
        if movie_text not in MOVIE_TEXT_MODES:
            raise ValueError(f"movie_text must be one of {MOVIE_TEXT_MODES}, got {movie_text!r}")
        if movie_text in ("tmdb", "tmdb+wikipedia") and not os.environ.get("TMDB_API_KEY", "").strip():
            raise ApiKeyError(MISSING_TMDB_KEY)
    if client is None:
        client = HttpClient(limits=srcs.rate_limits(overrides))
    if not isinstance(manifest, Manifest):
        manifest = Manifest(manifest)
    ctx = _Ctx(client, overrides, manifest, retrust, progress, max(1, int(workers)), refresh_errors, dest)
    if name == "ml-20m":
        _fetch_ml20m(ctx, text=text, movie_text=movie_text, verbose=verbose)
    else:
        _fetch_bookcrossing(ctx, text=text, goodreads=goodreads, google_books=google_books, seed=seed, threshold=threshold, verbose=verbose)
    return dest


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _fetch_ml20m(ctx: _Ctx, *, text: bool, movie_text: str, verbose: bool) -> dict:
    zpath = ctx.fetch("GROUPLENS", "ml-20m.zip", ctx.raw)
    for member in ("ratings.csv", "movies.csv", "links.csv"):
        _extract(zpath, member, ctx.dest / member, ctx.work)
    for f in ("item_index2entity_id.txt", "kg.txt"):
        ctx.fetch("KGCN_MOVIE", f, ctx.dest)
    counts = {
        "contents": len(_read_tab(ctx.dest / "item_index2entity_id.txt", 2)),
        "kg_triples": _count_lines(ctx.dest / "kg.txt"),
    }
    coverage, missing, notes = [], [], []
    if text and movie_text != "none":
        cov, missing, notes = movie_synopses(ctx, movie_text, verbose=verbose)
        coverage.append(cov)
    return _finish(ctx, "ml-20m", coverage, missing, counts, notes, verbose)


def _fetch_bookcrossing(ctx: _Ctx, *, text: bool, goodreads: bool, google_books: bool, seed: int, threshold: float, verbose: bool) -> dict:
    for f in srcs.resolve("RIPPLENET_BOOK", ctx.overrides).files:
        ctx.fetch("RIPPLENET_BOOK", f.name, ctx.raw)
    counts = convert_bookcrossing(ctx.raw, ctx.dest, threshold=threshold, seed=seed)
    coverage, missing, notes = [], [], []
    if text:
        coverage, missing, notes = book_metadata(ctx, goodreads=goodreads, google_books=google_books)
    if not goodreads and text:
        notes.append("Goodreads not used (pass goodreads=True / --goodreads for the paper's richer genres)")
    return _finish(ctx, "book-crossing", coverage, missing, counts, notes, verbose, {"negative_sampling": {"seed": seed, "threshold": threshold}})


def default_dest(name: str) -> Path:
    """``$KGCL_CACHE_DIR/data/<name>``: where ``load_dataset`` looks after ``$KGCL_DATA_DIR``.

    Not ``$KGCL_DATA_DIR`` itself, which may be a read-only shared copy.
    """
    return storage.cache_dir("data") / name


def fetch_cli(argv: list[str] | None = None) -> int:
    """``python -m kgcl_lib.data fetch --dataset NAME [...]``; returns the exit status.

    0: done (gaps are listed in ``missing.tsv``), 1: a download / key / data error (message on
    stderr), 2: bad arguments.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fetch"]:
        argv = argv[1:]
    p = argparse.ArgumentParser(
        prog="python -m kgcl_lib.data fetch",
        description="Download the paper's inputs (ratings, KG, synopses / book metadata). Reruns resume and make no repeat requests.",
    )
    p.add_argument("--dataset", required=True, help=f"one of {sorted(set(DATASETS.values()))} (aliases: {', '.join(k for k in DATASETS if k not in DATASETS.values())})")
    p.add_argument("--dest", help="output folder (default: $KGCL_CACHE_DIR/data/NAME, where load_dataset finds it)")
    p.add_argument("--no-text", action="store_true", help="skip synopses / book metadata")
    p.add_argument("--movie-text", default="auto", choices=MOVIE_TEXT_MODES, help="movie synopsis source (default: auto = TMDB if TMDB_API_KEY is set, else Wikipedia)")
    p.add_argument("--goodreads", action="store_true", help="also use the UCSD Book Graph (~2 GB) for book genres/synopses")
    p.add_argument("--no-google-books", action="store_true", help="do not query Google Books")
    p.add_argument("--workers", type=int, default=4, help="concurrent API requests (default 4)")
    p.add_argument("--seed", type=int, default=555, help="Book-Crossing negative-sampling seed (default 555)")
    p.add_argument("--source", action="append", default=[], metavar="NAME=URL", help=f"override a base URL; NAME in {sorted(srcs.SOURCES)}")
    p.add_argument("--refresh-errors", action="store_true", help="re-request API answers cached as misses")
    p.add_argument("--retrust", action="store_true", help="accept changed upstream files and re-record their sha256")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    try:
        args = p.parse_args(argv)
        name = canonical_name(args.dataset)
        overrides = srcs.parse_overrides(args.source)
    except SystemExit as e:
        return int(e.code or 0)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    dest = Path(args.dest) if args.dest else default_dest(name)
    try:
        fetch_dataset(
            name,
            dest,
            text=not args.no_text,
            movie_text=args.movie_text,
            goodreads=args.goodreads,
            google_books=not args.no_google_books,
            sources=overrides,
            workers=args.workers,
            seed=args.seed,
            refresh_errors=args.refresh_errors,
            retrust=args.retrust,
            progress=not args.quiet,
        )
    except (DownloadError, DatasetError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished files and cached answers are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    print(dest)
    return 0
