"""The trust-on-first-use manifest of downloaded files' sha256 (and md5) digests."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from ... import storage
from .errors import DownloadError, redact

CHUNK = 1 << 20  # 1 MiB: big enough for throughput, small enough for a live progress bar


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
