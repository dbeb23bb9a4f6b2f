"""Every URL the acquisition step touches, in one place, with checksums and polite rate limits.

A :class:`Source` is either a *file host* (a base URL plus a fixed set of static files) or an
*API* (a base URL that requests are built on).  Every base URL can be overridden, so tests and
mirrors never need code changes:

* environment: ``KGCL_SOURCE_<NAME>=<base url>`` (e.g. ``KGCL_SOURCE_TMDB=http://127.0.0.1:8000/tmdb/``);
* code: ``resolve(name, overrides={"TMDB": "http://..."})`` or ``fetch_dataset(..., sources={...})``.

An override replaces the base *and* drops the built-in mirrors, so a test pointed at
127.0.0.1 can never fall through to the internet.

Checksums
---------
Where a file is static and its digest is published, :attr:`RemoteFile.md5` / ``sha256`` hold
it (``ml-20m.zip``: GroupLens publishes ``ml-20m.zip.md5``).  All other digests are ``None``
because they could not be computed on the machine this code was written on (no network) and
we do not invent them.  For those, :mod:`kgcl_lib.data.download` uses *trust on first use*:
the sha256 of the first complete download is recorded in a manifest
(``$KGCL_CACHE_DIR/downloads/manifest.json``) under ``"<SOURCE>/<file>"``, and every later
download of the same file — from any mirror — must match it.  If upstream changes on purpose,
delete that manifest entry (or pass ``retrust=True`` / ``--retrust``).

Rate limits (requests per second, burst) follow each provider's published guidance, kept well
below the ceiling because several helpers may share an IP:

* TMDB: "somewhere in the 40–50 requests per second range", 429 + ``Retry-After`` above it
  (developer.themoviedb.org/docs/rate-limiting) → 20/s.
* Wikimedia REST: ≤ 200 requests/s and a descriptive ``User-Agent`` (Wikimedia API etiquette)
  → 10/s.
* Google Books: no published per-second limit; a project's default quota is a small number of
  queries per day (429 ``rateLimitExceeded`` "Queries per day") → 1/s, and the fetcher stops
  that source on a daily-quota error (a rerun resumes from the cache).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin

#: Prefix of the environment variables that override a source's base URL.
ENV_PREFIX = "KGCL_SOURCE_"
#: Environment variable for a descriptive User-Agent (Wikimedia asks for contact details).
ENV_USER_AGENT = "KGCL_USER_AGENT"
DEFAULT_USER_AGENT = "kgcl-data-fetch/0.1 (reproduction of Kim et al., KG semantic contrastive learning; python-urllib)"


@dataclass(frozen=True)
class RemoteFile:
    """One static file under a source's base URL.

    Attributes:
        name: file name relative to the base URL (also the local file name).
        sha256: expected hex sha256, or ``None`` (trust on first use, see module docstring).
        md5: expected hex md5 where only that is published, else ``None``.
        size: expected size in bytes when known (only used for the progress bar / sanity).
    """

    name: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Source:
    """A base URL (plus mirrors) and what lives under it.

    Attributes:
        name: registry key, upper case; ``KGCL_SOURCE_<name>`` overrides ``base``.
        base: base URL, ending in ``/``.
        kind: ``"files"`` (static files) or ``"api"`` (JSON API).
        files: the static files under ``base`` (``kind == "files"``).
        mirrors: further base URLs tried in order when ``base`` fails (not after an override).
        rate: polite request rate for this host, requests per second (``None`` = unlimited).
        burst: token-bucket size (requests allowed back to back).
        key_env: environment variable holding an API key, if the API takes one.
        key_required: the API refuses requests without a key.
        doc: what it is and where the URL comes from.
    """

    name: str
    base: str
    kind: str
    files: tuple[RemoteFile, ...] = ()
    mirrors: tuple[str, ...] = ()
    rate: float | None = None
    burst: int = 1
    key_env: str | None = None
    key_required: bool = False
    doc: str = ""
    overridden: bool = field(default=False, compare=False)

    def file(self, name: str) -> RemoteFile:
        """The :class:`RemoteFile` called ``name`` (``KeyError`` naming the choices if absent)."""
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"source {self.name} has no file {name!r}; it has {[f.name for f in self.files]}")

    def urls(self, name: str) -> list[str]:
        """Candidate URLs for file ``name``: the base first, then each mirror."""
        return [urljoin(b, name) for b in (self.base, *self.mirrors)]

    def url(self, path: str = "") -> str:
        """``base`` joined with a relative ``path`` (for API endpoints)."""
        return urljoin(self.base, path)

    @property
    def host(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.base).netloc


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="GROUPLENS",
            base="https://files.grouplens.org/datasets/movielens/",
            kind="files",
            # md5 published by GroupLens next to the archive (ml-20m.zip.md5); the same value is
            # pinned by TensorFlow Datasets and other loaders.
            files=(RemoteFile("ml-20m.zip", md5="cd245b17a1ae2cc31bb14903e1204af3"),),
            doc="MovieLens-20M (Harper & Konstan 2015): ratings.csv, movies.csv (title, genres), links.csv (tmdbId).",
        ),
        Source(
            name="KGCN_MOVIE",
            base="https://raw.githubusercontent.com/hwwang55/KGCN/master/data/movie/",
            kind="files",
            files=(RemoteFile("item_index2entity_id.txt"), RemoteFile("kg.txt")),
            doc="KGCN (Wang et al. 2019) Satori KG for MovieLens-20M: movieId -> entity, and the triples.",
        ),
        Source(
            name="RIPPLENET_BOOK",
            base="https://raw.githubusercontent.com/hwwang55/RippleNet/master/data/book/",
            kind="files",
            files=(
                RemoteFile("BX-Book-Ratings.csv"),
                RemoteFile("item_index2entity_id_rehashed.txt"),
                RemoteFile("kg_rehashed.txt"),
            ),
            doc="RippleNet (Wang et al. 2018) Book-Crossing ratings and rehashed Satori KG; KGCN reuses them.",
        ),
        Source(
            name="BX_DUMP",
            # The original host is gone; the Wayback Machine's ``id_`` form returns the bytes as
            # archived.  The original URL stays as a mirror in case it comes back.
            base="https://web.archive.org/web/2021id_/http://www2.informatik.uni-freiburg.de/~cziegler/BX/",
            mirrors=("http://www2.informatik.uni-freiburg.de/~cziegler/BX/",),
            kind="files",
            files=(RemoteFile("BX-CSV-Dump.zip"),),
            doc="Book-Crossing dump (Ziegler et al. 2005): BX-Books.csv gives title, author, year by ISBN.",
        ),
        Source(
            name="GOODREADS",
            base="https://mcauleylab.ucsd.edu/public_datasets/gdrive/goodreads/",
            mirrors=("https://datarepo.eng.ucsd.edu/mcauley_group/gdrive/goodreads/",),
            kind="files",
            files=(RemoteFile("goodreads_books.json.gz"), RemoteFile("goodreads_book_genres_initial.json.gz")),
            doc="UCSD Book Graph (Wan & McAuley 2018; Wan et al. 2019): descriptions and shelf genres by ISBN (~2 GB).",
        ),
        Source(
            name="TMDB",
            base="https://api.themoviedb.org/3/",
            kind="api",
            rate=20.0,
            burst=20,
            key_env="TMDB_API_KEY",
            key_required=True,
            doc="TMDB API v3 /movie/{tmdb_id}: 'overview' is the synopsis. Key: themoviedb.org/settings/api "
            "(a v3 key or a v4 read-access token both work).",
        ),
        Source(
            name="WIKIPEDIA",
            base="https://en.wikipedia.org/api/rest_v1/page/summary/",
            kind="api",
            rate=10.0,
            burst=10,
            doc="Wikipedia REST page summary: 'extract' of the film's article (keyless fallback for synopses).",
        ),
        Source(
            name="GOOGLE_BOOKS",
            base="https://www.googleapis.com/books/v1/",
            kind="api",
            rate=1.0,
            burst=5,
            key_env="GOOGLE_BOOKS_API_KEY",
            key_required=False,
            doc="Google Books volumes?q=isbn:<ISBN>: volumeInfo.categories and .description.",
        ),
    )
}


def resolve(name: str, overrides: dict[str, str] | None = None, environ=None) -> Source:
    """The :class:`Source` ``name`` with any base-URL override applied.

    Precedence: ``overrides[name]`` > ``$KGCL_SOURCE_<NAME>`` > the built-in base.  An
    override also clears ``mirrors``.

    Raises:
        KeyError: unknown source name (the message lists the known ones).
    """
    key = name.upper()
    if key not in SOURCES:
        raise KeyError(f"unknown source {name!r}; known: {sorted(SOURCES)}")
    src = SOURCES[key]
    env = os.environ if environ is None else environ
    base = (overrides or {}).get(key) or (overrides or {}).get(name) or env.get(ENV_PREFIX + key)
    if base:
        if not base.endswith("/"):
            base += "/"
        src = replace(src, base=base, mirrors=(), overridden=True)
    return src


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["TMDB=http://...", ...]`` (the CLI's ``--source``) → ``{"TMDB": "http://..."}``."""
    out = {}
    for item in items:
        name, sep, url = item.partition("=")
        if not sep or not url:
            raise ValueError(f"--source expects NAME=URL, got {item!r}")
        if name.upper() not in SOURCES:
            raise ValueError(f"--source {item!r}: unknown source {name!r}; known: {sorted(SOURCES)}")
        out[name.upper()] = url
    return out


def rate_limits(overrides: dict[str, str] | None = None) -> dict[str, tuple[float, int]]:
    """``{host: (requests per second, burst)}`` for every rate-limited source, after overrides."""
    out = {}
    for name, src in SOURCES.items():
        if src.rate:
            out[resolve(name, overrides).host] = (src.rate, src.burst)
    return out


def user_agent(environ=None) -> str:
    """The User-Agent for every request: ``$KGCL_USER_AGENT`` or :data:`DEFAULT_USER_AGENT`."""
    env = os.environ if environ is None else environ
    return env.get(ENV_USER_AGENT) or DEFAULT_USER_AGENT
