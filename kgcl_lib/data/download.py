"""HTTP for the acquisition step: resumable verified downloads, polite JSON requests, JSONL cache.

Standard library only (``urllib.request``), so the project does not depend on ``requests``.

* :func:`download` / :meth:`HttpClient.download` — stream into ``<dest>.part``; an interrupted
  transfer resumes with an HTTP ``Range`` request; the finished file is checked (sha256 / md5
  / trust-on-first-use manifest, see :mod:`kgcl_lib.data.sources`) and only then renamed onto
  ``dest``.  A checksum mismatch deletes the part file and raises :class:`ChecksumError`, so
  no unverified file is ever left under the final name.
* :meth:`HttpClient.get_json` — one JSON request with retries: exponential back-off with jitter
  on 5xx / connection errors, ``Retry-After`` (seconds or HTTP date) honoured on 429/503, a
  per-host token bucket (:class:`RateLimiter`), a bounded number of attempts.
* :class:`JsonlCache` — one line per request key with the parsed response or an error marker;
  a rerun answers from it and makes no request.

Clock, sleep and the jitter RNG are injectable so tests run in milliseconds.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import logging
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

import numpy as np
from tqdm.auto import tqdm

from .. import storage
from .sources import user_agent as default_user_agent

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # 1 MiB: big enough for throughput, small enough for a live progress bar


# Errors ------------------------------------------------------------------------------------
class DownloadError(RuntimeError):
    """A transfer failed for good (after retries, or with a non-retryable status)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not match the expected digest; nothing was kept."""


class HttpStatusError(DownloadError):
    """The server answered with a status that retrying will not fix (e.g. 401, 403, 404)."""

    def __init__(self, url: str, status: int, body: bytes = b"", headers=None):
        self.url, self.status, self.body, self.headers = url, status, body, headers or {}
        snippet = body[:200].decode("utf-8", "replace").replace("\n", " ")
        super().__init__(f"HTTP {status} from {redact(url)}: {snippet}")


class QuotaExceeded(DownloadError):
    """The API's quota is spent (a daily limit, or a ``Retry-After`` longer than we wait)."""


class NoNetworkError(DownloadError):
    """The host name cannot be resolved (no network, or no DNS): retrying will not help.

    Raised at once, without back-off; the client remembers the host, so later requests to it
    fail immediately too (one message per host, not one per item of a long loop).
    """

    def __init__(self, host: str, reason: object = ""):
        self.host = host
        super().__init__(f"no network access to {host} (cannot resolve the host name: {reason})")


def _dns_failure(exc: BaseException) -> bool:
    """``exc`` is a name-resolution failure (``socket.gaierror``, e.g. "Name or service not known")."""
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, socket.gaierror) or isinstance(exc, socket.gaierror)


class _ShortRead(Exception):
    """The connection ended before Content-Length bytes arrived (resume with Range)."""


_TRANSIENT = (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException, _ShortRead)


def redact(url: str) -> str:
    """``url`` with ``api_key=…`` / ``key=…`` query values masked (for logs and errors)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    q = "&".join(
        f"{k}=***" if k.lower() in ("api_key", "key", "apikey", "token") else f"{k}={v}" if sep else k
        for k, sep, v in (p.partition("=") for p in parts.query.split("&"))
    )
    return parts._replace(query=q).geturl()


# Retry policy and rate limiting -------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    Attributes:
        max_retries: retries after the first attempt (default 5, so at most 6 requests).
        backoff_base_s: first back-off delay in seconds; doubles each retry (default 1.0).
        backoff_max_s: cap on one back-off delay, seconds (default 60).
        max_retry_after_s: longest ``Retry-After`` we are willing to sleep, seconds (default
            900); a longer one raises :class:`QuotaExceeded` instead of stalling for hours.
        retry_statuses: HTTP statuses that are retried (default 408, 425, 429, 500, 502, 503, 504).
        timeout_s: socket timeout per request, seconds (default 60).
    """

    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 900.0
    retry_statuses: tuple[int, ...] = (408, 425, 429, 500, 502, 503, 504)
    timeout_s: float = 60.0

    def backoff(self, attempt: int, rng: np.random.Generator) -> float:
        """Delay before retry ``attempt`` (0-based): "equal jitter" — half fixed, half random.

        ``d = min(max, base * 2**attempt)``; returns ``d/2 + U(0, d/2)`` seconds, so retries
        of many clients spread out but never fire immediately.
        """
        d = min(self.backoff_max_s, self.backoff_base_s * (2.0**attempt))
        return d / 2 + float(rng.uniform(0.0, d / 2))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    ``now`` is the current Unix time (for the date form).  Returns ``None`` when absent or
    unparseable; never negative.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


class TokenBucket:
    """Token bucket: ``rate`` tokens/s, at most ``burst`` saved; thread-safe reservations.

    :meth:`reserve` takes one token and returns how long the caller must sleep before using it
    (tokens may go negative, which queues later callers behind earlier ones).
    :meth:`block` makes every request wait until ``clock() + seconds`` (a server's
    ``Retry-After`` applies to the whole host, not just the request that got it).
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]):
        if rate <= 0 or burst < 1:
            raise ValueError(f"token bucket needs rate > 0 and burst >= 1, got rate={rate}, burst={burst}")
        self.rate, self.burst, self.clock = float(rate), int(burst), clock
        self.tokens = float(burst)
        self.last = clock()
        self.blocked_until = -math.inf
        self._lock = threading.Lock()

    def reserve(self) -> float:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            self.tokens -= 1.0
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
            return max(wait, self.blocked_until - now, 0.0)

    def block(self, seconds: float) -> None:
        with self._lock:
            self.blocked_until = max(self.blocked_until, self.clock() + seconds)


class RateLimiter:
    """One :class:`TokenBucket` per host; hosts without a limit pass straight through.

    Args:
        limits: ``{host: (requests per second, burst)}`` (see :func:`sources.rate_limits`).
        clock: monotonic clock in seconds.
    """

    def __init__(self, limits: dict[str, tuple[float, int]] | None, clock: Callable[[], float]):
        self.buckets = {h: TokenBucket(r, b, clock) for h, (r, b) in (limits or {}).items()}

    def delay(self, url: str) -> float:
        """Reserve a slot for ``url``'s host; seconds to sleep before sending."""
        b = self.buckets.get(urlsplit(url).netloc)
        return b.reserve() if b else 0.0

    def block(self, url: str, seconds: float) -> None:
        b = self.buckets.get(urlsplit(url).netloc)
        if b:
            b.block(seconds)


# Trust-on-first-use manifest ----------------------------------------------------------------
class Manifest:
    """``{key: {"sha256", "size", "url", "recorded"}}`` in a JSON file (written atomically).

    Keys are ``"<SOURCE>/<file>"`` so every mirror of a file shares one record.
    Default location: ``storage.cache_dir("downloads") / "manifest.json"``.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else storage.cache_dir("downloads") / "manifest.json"
        self._lock = threading.Lock()

    def _read(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())
        except json.JSONDecodeError as e:
            raise DownloadError(f"{self.path}:{e.lineno}: checksum manifest is not valid JSON ({e.msg})") from e

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self._read().get(key)

    def record(self, key: str, sha256: str, size: int, url: str) -> None:
        with self._lock:
            data = self._read()
            data[key] = {
                "sha256": sha256,
                "size": size,
                "url": redact(url),
                "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            storage.write_json(self.path, data)


def _digests(path: Path) -> tuple[str, str]:
    """``(sha256, md5)`` hex digests of a file, one read."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


# JSON responses -------------------------------------------------------------------------------
@dataclass(frozen=True)
class JsonResponse:
    """Outcome of one JSON request that the server answered for good.

    Attributes:
        status: HTTP status.
        data: parsed JSON body (``None`` when absent or malformed).
        error: ``None`` on success; otherwise why there is no usable answer (``"HTTP 404"``,
            ``"malformed JSON: …"``).
    """

    status: int
    data: object = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


#: Statuses that mean "the thing does not exist / the request is wrong": cached as misses.
PERMANENT_MISS = (400, 404, 410, 422)


class HttpClient:
    """HTTP with retries, per-host rate limits, ``Retry-After``, and request counters.

    Args:
        retry: the :class:`RetryPolicy`.
        limits: per-host rate limits, ``{host: (rate/s, burst)}``.
        sleep: sleep function (seconds); inject a fake in tests.
        clock: monotonic clock (seconds) for the rate limiter.
        now: Unix-time clock for ``Retry-After`` HTTP dates.
        rng: ``numpy.random.Generator`` for back-off jitter (default: a fresh one).
        user_agent: User-Agent header (default :func:`sources.user_agent`).

    ``stats`` counts ``requests``, ``retries`` and ``slept_s`` (thread-safe).
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy = RetryPolicy(),
        limits: dict[str, tuple[float, int]] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        rng: np.random.Generator | None = None,
        user_agent: str | None = None,
    ):
        self.retry, self.sleep, self.clock, self.now = retry, sleep, clock, now
        self.rng = rng if rng is not None else np.random.default_rng()
        self.limiter = RateLimiter(limits, clock)
        self.user_agent = user_agent or default_user_agent()
        self.stats = {"requests": 0, "retries": 0, "slept_s": 0.0}
        self._lock = threading.Lock()
        self._unresolvable: dict[str, NoNetworkError] = {}  # host -> the error, raised again at once
        # Own opener (not urllib's global one): proxy settings are read from the environment
        # now, when the client is made, rather than whenever urllib was first used.
        self._opener = urllib.request.build_opener()

    # low level -----------------------------------------------------------------------------
    def _count(self, key: str, value: float = 1) -> None:
        with self._lock:
            self.stats[key] += value

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._count("slept_s", seconds)
            self.sleep(seconds)

    def _open(self, url: str, headers: dict | None = None):
        """One request after waiting for the host's rate limit; urllib raises on 4xx/5xx."""
        self._sleep(self.limiter.delay(url))
        req = urllib.request.Request(url, headers={"User-Agent": self.user_agent, **(headers or {})})
        self._count("requests")
        return self._opener.open(req, timeout=self.retry.timeout_s)

    def _with_retries(self, url: str, attempt: Callable[[], object]):
        """Run ``attempt`` until it returns, retrying transient failures with back-off.

        ``attempt`` may raise ``urllib.error.HTTPError`` (classified here) or a transient
        network error.  Non-retryable statuses become :class:`HttpStatusError` at once.
        """
        host = urlsplit(url).hostname or url
        if host in self._unresolvable:
            raise self._unresolvable[host]
        last: Exception | None = None
        for i in range(self.retry.max_retries + 1):
            try:
                return attempt()
            except urllib.error.HTTPError as e:
                body = _read_body(e)
                status = e.code
                if status in (403, 429) and _is_daily_quota(body):
                    raise QuotaExceeded(f"{redact(url)}: daily quota exhausted (HTTP {status}); rerun later to resume") from e
                if status not in self.retry.retry_statuses:
                    raise HttpStatusError(url, status, body, dict(e.headers or {})) from None
                wait = parse_retry_after((e.headers or {}).get("Retry-After"), self.now()) if status in (429, 503) else None
                if wait is not None:
                    if wait > self.retry.max_retry_after_s:
                        raise QuotaExceeded(
                            f"{redact(url)}: HTTP {status} asks to wait {wait:.0f} s (> {self.retry.max_retry_after_s:.0f} s "
                            "allowed); rerun later to resume"
                        ) from e
                    self.limiter.block(url, wait)  # the whole host is throttled, not just this URL
                else:
                    wait = self.retry.backoff(i, self.rng)
                last = HttpStatusError(url, status, body)
            except _TRANSIENT as e:
                if _dns_failure(e):  # offline or no DNS: six back-offs would only waste a minute
                    err = NoNetworkError(host, getattr(e, "reason", e))
                    self._unresolvable[host] = err
                    log.warning("%s", err)
                    raise err from None
                wait = self.retry.backoff(i, self.rng)
                last = e
            if i == self.retry.max_retries:
                break
            log.info("retry %d/%d for %s in %.2f s after %s", i + 1, self.retry.max_retries, redact(url), wait, last)
            self._count("retries")
            self._sleep(wait)
        raise DownloadError(f"{redact(url)}: gave up after {self.retry.max_retries + 1} attempts; last error: {last}")

    # JSON ------------------------------------------------------------------------------------
    def get_json(self, url: str, headers: dict | None = None) -> JsonResponse:
        """GET ``url`` and parse JSON.

        Returns a :class:`JsonResponse` for a 2xx (``error`` set when the body is not JSON) and
        for :data:`PERMANENT_MISS` statuses.  Raises :class:`HttpStatusError` for other
        non-retryable statuses (401/403: the caller explains keys), :class:`QuotaExceeded`,
        or :class:`DownloadError` when retries run out.
        """

        def attempt():
            with self._open(url, {"Accept": "application/json", **(headers or {})}) as resp:
                return resp.status, resp.read()

        try:
            status, body = self._with_retries(url, attempt)
        except HttpStatusError as e:
            if e.status not in PERMANENT_MISS:
                raise
            return JsonResponse(e.status, _try_json(e.body), f"HTTP {e.status}")
        try:
            return JsonResponse(status, json.loads(body.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            snippet = body[:60].decode("utf-8", "replace")
            log.warning("malformed JSON from %s (%s); body starts %r", redact(url), e, snippet)
            return JsonResponse(status, None, f"malformed JSON: {e}")

    # Files -----------------------------------------------------------------------------------
    def download(
        self,
        urls: str | Iterable[str],
        dest: str | os.PathLike,
        *,
        sha256: str | None = None,
        md5: str | None = None,
        manifest: Manifest | None = None,
        manifest_key: str | None = None,
        retrust: bool = False,
        progress: bool = True,
    ) -> Path:
        """Fetch a static file to ``dest``: resumable, verified, atomic.

        Args:
            urls: one URL or candidates tried in order (mirrors); a mirror switch restarts the
                part file, so bytes from two hosts are never spliced.
            dest: final path. If it already exists and verifies, nothing is requested.
            sha256, md5: expected digests (hex), when known.
            manifest, manifest_key: trust-on-first-use record for files without a known
                digest (see :mod:`kgcl_lib.data.sources`); ignored when ``sha256`` is given.
            retrust: replace the manifest's record instead of failing on a mismatch.
            progress: show a tqdm bytes bar.

        Returns: ``dest``.

        Raises:
            ChecksumError: digest mismatch (the part file is deleted; ``dest`` not created).
            DownloadError: every URL failed.
        """
        dest = Path(dest)
        urls = [urls] if isinstance(urls, str) else list(urls)
        key = manifest_key or dest.name
        if dest.exists():
            self._verify(dest, urls[0], sha256, md5, manifest, key, retrust, delete=False)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        errors = []
        for n, url in enumerate(urls):
            if n and part.exists():
                part.unlink()  # different host: never splice bytes from two servers
            try:
                self._fetch_to_part(url, part, desc=dest.name, progress=progress)
            except (DownloadError, OSError) as e:
                if isinstance(e, QuotaExceeded):
                    raise
                errors.append(str(e) if redact(url) in str(e) else f"{redact(url)}: {e}")
                if not isinstance(e, NoNetworkError):  # already said once, by the client
                    log.warning("download failed: %s", errors[-1])
                continue
            self._verify(part, url, sha256, md5, manifest, key, retrust, delete=True)
            os.replace(part, dest)  # atomic: dest appears only complete and verified
            return dest
        raise DownloadError(f"could not download {dest.name}; tried:\n  " + "\n  ".join(errors))

    def _fetch_to_part(self, url: str, part: Path, *, desc: str, progress: bool) -> None:
        """Stream ``url`` into ``part``, resuming from its current size with ``Range``."""
        bar = tqdm(total=None, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=not progress, leave=False)

        def attempt():
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-", "Accept-Encoding": "identity"} if have else {"Accept-Encoding": "identity"}
            try:
                resp = self._open(url, headers)
            except urllib.error.HTTPError as e:
                if e.code != 416 or not have:
                    raise
                # Range not satisfiable: either the part is already complete or it is stale.
                total = _content_range_total(e.headers.get("Content-Range"))
                _read_body(e)
                if total is not None and total == have:
                    return
                part.unlink()
                raise _ShortRead(f"stale partial file ({have} bytes) for a {total}-byte resource; restarting")
            with resp:
                if resp.status == 206:
                    start = _content_range_start(resp.headers.get("Content-Range"))
                    if start != have:
                        part.unlink()
                        raise _ShortRead(f"server resumed at byte {start}, expected {have}; restarting")
                    mode = "ab"
                else:  # 200: the server ignored Range (or there was none) — start over
                    have, mode = 0, "wb"
                length = resp.headers.get("Content-Length")
                total = have + int(length) if length is not None else None
                bar.reset(total=total)
                bar.update(have)
                got = have
                with open(part, mode) as f:
                    while block := resp.read(CHUNK):
                        f.write(block)
                        got += len(block)
                        bar.update(len(block))
                if total is not None and got < total:
                    raise _ShortRead(f"connection closed after {got} of {total} bytes")

        try:
            self._with_retries(url, attempt)
        finally:
            bar.close()

    def _verify(self, path, url, sha256, md5, manifest, key, retrust, *, delete: bool) -> None:
        got_sha, got_md5 = _digests(path)
        expected, got, what = None, None, None
        if sha256 and got_sha != sha256.lower():
            expected, got, what = sha256, got_sha, "sha256"
        elif md5 and got_md5 != md5.lower():
            expected, got, what = md5, got_md5, "md5"
        elif not sha256 and manifest is not None:
            rec = manifest.get(key)
            if rec is None or retrust:
                if rec is None:
                    log.info("trust on first use: recording sha256 %s for %s in %s", got_sha, key, manifest.path)
                manifest.record(key, got_sha, path.stat().st_size, url)
            elif rec["sha256"] != got_sha:
                expected, got, what = rec["sha256"], got_sha, f"sha256 (recorded on first download {rec.get('recorded')} in {manifest.path})"
        if expected is None:
            return
        if delete:
            path.unlink(missing_ok=True)
        hint = (
            "the partial file was deleted; rerun to download again"
            if delete
            else "delete it to download again"
        )
        raise ChecksumError(
            f"checksum mismatch for {path.name} from {redact(url)}: expected {what} {expected}, got {got}; {hint}"
            + ("; if the upstream file changed on purpose, rerun with retrust=True (--retrust)" if "recorded" in what else "")
        )


def download(url: str | Iterable[str], dest: str | os.PathLike, *, sha256: str | None = None, client: HttpClient | None = None, **kwargs) -> Path:
    """Resumable, verified, atomic download of ``url`` to ``dest`` (see :meth:`HttpClient.download`)."""
    return (client or HttpClient()).download(url, dest, sha256=sha256, **kwargs)


# Helpers ---------------------------------------------------------------------------------------
def _read_body(e: urllib.error.HTTPError) -> bytes:
    try:
        return e.read() or b""
    except Exception:  # the error body is best-effort context only
        return b""
    finally:
        e.close()


def _try_json(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _is_daily_quota(body: bytes) -> bool:
    """Google-style quota errors: ``dailyLimitExceeded`` or "Queries per day" (no point retrying today)."""
    text = body[:4000].decode("utf-8", "replace").lower()
    return "dailylimitexceeded" in text or "per day" in text or "quotaexceeded" in text


def _content_range_start(value: str | None) -> int | None:
    """First byte of ``Content-Range: bytes START-END/TOTAL``."""
    try:
        return int(value.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _content_range_total(value: str | None) -> int | None:
    """TOTAL of ``Content-Range: bytes */TOTAL`` (or ``START-END/TOTAL``)."""
    try:
        return int(value.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None


# JSONL cache -------------------------------------------------------------------------------------
class JsonlCache:
    """Append-only JSONL file: one ``{"key": ..., "status", "data" | "error"}`` object per line.

    The last record for a key wins.  A line cut short by an interruption (no trailing newline
    or not valid JSON) is dropped with a warning and the file is rewritten without it
    (atomically) before anything is appended, so the cache never holds a half-written record.
    Thread-safe.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: dict[str, dict] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        good, bad = [], 0
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            complete = n < len(lines)  # the piece after the last "\n" was never terminated
            try:
                rec = json.loads(line) if complete else None
            except json.JSONDecodeError:
                rec = None
            if not isinstance(rec, dict) or "key" not in rec:
                bad += 1
                log.warning("%s:%d: dropping an unreadable cache line (interrupted write?)", self.path, n)
                continue
            self._records[rec["key"]] = rec
            good.append(line)
        if bad:
            with storage.atomic_path(self.path) as tmp:
                tmp.write_bytes(b"".join(g + b"\n" for g in good))

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self._records.get(key)

    def put(self, key: str, record: dict) -> dict:
        """Append ``record`` under ``key``; returns the stored record (with ``key``)."""
        rec = {"key": key, **record}
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write() of a whole line in append mode: a crash leaves at most one torn line,
            # which _load() drops.
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
            self._records[key] = rec
        return rec

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: str) -> bool:
        return key in self._records


def cached_json(
    client: HttpClient,
    cache: JsonlCache,
    key: str,
    url: str,
    headers: dict | None = None,
    *,
    refresh_errors: bool = False,
) -> dict:
    """The cached record for ``key``, or GET ``url`` and cache the outcome.

    Successful answers and permanent misses (404, malformed JSON, …) are cached; transient
    failures raise (:class:`DownloadError`) and are not, so a rerun retries them.  With
    ``refresh_errors`` a cached miss is requested again.

    Returns: ``{"key", "status", "data", "error"}`` plus ``"cached": True`` when it came from
    the cache.
    """
    rec = cache.get(key)
    if rec is not None and (rec.get("error") is None or not refresh_errors):
        return {**rec, "cached": True}
    resp = client.get_json(url, headers)
    return cache.put(key, {"status": resp.status, "data": resp.data, "error": resp.error})
