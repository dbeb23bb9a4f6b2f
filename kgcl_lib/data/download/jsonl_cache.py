"""An append-only JSONL cache of API responses that survives interruption, and the cached JSON GET
built on it."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from ... import storage
from .client import HttpClient

log = logging.getLogger(__name__)


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
