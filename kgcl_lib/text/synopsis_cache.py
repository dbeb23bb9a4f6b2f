"""The resumable JSONL cache of generated synopses: one record per (generation settings, prompt), torn
last lines dropped."""

from __future__ import annotations

import json
from pathlib import Path

from .. import storage


def prompt_key(group: str, prompt: str) -> str:
    """The cache key of one prompt under generation settings ``group``."""
    return storage.sha256_text(group, prompt)


def read_cache(path: Path) -> tuple[dict[str, dict], int]:
    """``({key: record}, n_bad_lines)`` from a JSONL cache; unparsable lines are skipped."""
    records: dict[str, dict] = {}
    bad = 0
    if not path.exists():
        return records, bad
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                records[rec["key"]] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                bad += 1  # a torn line from an interrupted write
    return records, bad


def _compact_cache(path: Path, records: dict[str, dict]) -> None:
    """Rewrite ``path`` with only the parsable records (atomically)."""
    with storage.atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for rec in records.values():
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
