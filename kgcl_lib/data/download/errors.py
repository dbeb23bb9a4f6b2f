"""The download errors, which failures are transient, and URLs with their secrets redacted."""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit


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
