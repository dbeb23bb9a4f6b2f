"""When to retry and how fast to ask: the retry policy, Retry-After parsing, token bucket and per-host
rate limiter."""

from __future__ import annotations

import email.utils
import math
import threading
from dataclasses import dataclass
from datetime import timezone
from typing import Callable
from urllib.parse import urlsplit

import numpy as np


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
