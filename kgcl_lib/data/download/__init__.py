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

Modules (every public name is importable from ``kgcl_lib.data.download``): ``errors``, ``policy``
(retries, Retry-After, rate limits), ``manifest`` (trust on first use), ``client``
(:class:`HttpClient`, :func:`download`), ``jsonl_cache`` (:class:`JsonlCache`, :func:`cached_json`).
"""

from __future__ import annotations

from .errors import ChecksumError, DownloadError, HttpStatusError, NoNetworkError, QuotaExceeded, redact  # noqa: F401
from .policy import RateLimiter, RetryPolicy, TokenBucket, parse_retry_after  # noqa: F401
from .manifest import CHUNK, Manifest  # noqa: F401
from .client import HttpClient, JsonResponse, PERMANENT_MISS, download  # noqa: F401
from .jsonl_cache import JsonlCache, cached_json  # noqa: F401

