"""Book metadata: BX-Books.csv, Goodreads (UCSD Book Graph) and Google Books, by ISBN -> ``books.tsv``."""

from __future__ import annotations

import gzip
import json
import os
import re
import zipfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ... import storage
from .. import sources as srcs
from ..dataset import DatasetError
from ..download import DownloadError, HttpStatusError, JsonlCache, QuotaExceeded, cached_json
from .common import log, ApiKeyError, FieldCoverage, _clean, _Ctx, _extract, _map_items, _read_tab, _Stopper, _write_tsv



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
