"""What every acquisition step shares: dataset names, the fetch context, small file helpers, coverage."""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import sys
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ... import storage
from .. import sources as srcs
from ..dataset import DatasetError
from ..download import DownloadError, HttpClient, Manifest

log = logging.getLogger("kgcl_lib.data.acquire")

FETCH_NAMES = {
    "ml-100k": "ml-100k",
    "movielens-100k": "ml-100k",
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
        return FETCH_NAMES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; fetch knows {sorted(set(FETCH_NAMES.values()))}") from None


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
    paper = PAPER_TABLE1.get(name, {})  # ML-100K is not in the paper: counts are reported without a comparison
    table = {k: {"ours": counts[k], "paper": paper.get(k), "match": counts[k] == paper.get(k)} for k in counts}
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
        lines.append(f"  {k}: {v['ours']:,}" + ("" if v["match"] or v["paper"] is None else f"  (paper Table 1: {v['paper']:,} — differs)"))
    for c in coverage:
        lines.append("  " + c.line(PAPER_TEXT.get(name, {}).get(c.field)))
    if missing:
        lines.append(f"  missing items listed in {ctx.dest / 'missing.tsv'}")
    lines += [f"  note: {n}" for n in notes]
    if (extra or {}).get("ambiguous"):
        lines.append(f"  {len(extra['ambiguous']):,} titles matched several films; each was picked by year "
                     f"(which one: coverage.json 'ambiguous'), e.g. {extra['ambiguous'][0]}")
    lines.append(f"  HTTP requests this run: {ctx.client.stats['requests']:,}")
    msg = "\n".join(lines)
    log.info("%s", msg)
    if verbose:
        print(msg, file=sys.stderr)
    report["summary"] = msg
    storage.write_json(ctx.dest / "coverage.json", report)
    _write_tsv(ctx.dest / "missing.tsv", ["field", "item_id", "title", "reason"], missing)
    return report
