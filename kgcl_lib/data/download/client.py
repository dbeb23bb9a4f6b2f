"""The HTTP client: GET with retries, rate limits, resumable downloads checked against a digest, JSON
responses."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

import numpy as np
from tqdm.auto import tqdm

from ..sources import user_agent as default_user_agent
from .errors import (
    _TRANSIENT,
    ChecksumError,
    DownloadError,
    HttpStatusError,
    NoNetworkError,
    QuotaExceeded,
    _dns_failure,
    _ShortRead,
    redact,
)
from .manifest import CHUNK, Manifest, _digests
from .policy import RateLimiter, RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)



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
