"""Filesystem helpers shared by every stage: where caches live, atomic writes, checksums.

Nothing here knows about recommendation; it only makes sure that a crash or Ctrl-C never
leaves a half-written file where a later run would take it for a finished one.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

ENV_DATA_DIR = "KGCL_DATA_DIR"
ENV_CACHE_DIR = "KGCL_CACHE_DIR"
ENV_RUNS_DIR = "KGCL_RUNS_DIR"
#: Set to "1" by :mod:`kgcl_lib.runner` while notebooks execute (no frontend); read by :mod:`kgcl_lib.inspector`.
HEADLESS_ENV = "KGCL_HEADLESS"
#: The checkout (the folder holding ``kgcl_lib/``, ``notebooks/``, ``params/``).
REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_dir(sub: str | None = None) -> Path:
    """The processed-data / model-output cache: ``$KGCL_CACHE_DIR`` or ``~/.cache/kgcl``.

    ``sub`` names a sub-folder (created on demand).
    """
    root = Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "kgcl")
    path = root / sub if sub else root
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    """``$KGCL_DATA_DIR`` as a path, or ``None`` when unset or empty."""
    value = os.environ.get(ENV_DATA_DIR)
    return Path(value) if value else None


def runs_dir() -> Path:
    """Where experiment results go: ``$KGCL_RUNS_DIR`` or ``runs/`` under the current folder."""
    path = Path(os.environ.get(ENV_RUNS_DIR) or "runs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_root(profile: str, runs_dir: str | os.PathLike | None = None) -> Path:
    """``<runs>/<profile>``: ``runs_dir``, else ``$KGCL_RUNS_DIR``, else ``runs/`` in the checkout."""
    base = Path(runs_dir or os.environ.get(ENV_RUNS_DIR) or REPO_ROOT / "runs")
    return (base / profile).resolve()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is untouched, so readers
    never see a partial file.  Usage::

        with atomic_path(out) as tmp:
            df.to_parquet(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():
            # mkstemp creates 0600 files; give the result the usual umask-based mode instead.
            os.chmod(tmp, umask_mode(0o666))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def umask_mode(mode: int = 0o777) -> int:
    """``mode`` with the process umask applied (what ``open``/``mkdir`` would give)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def make_temp_dir(parent: str | os.PathLike, prefix: str, suffix: str = ".tmp") -> Path:
    """``tempfile.mkdtemp`` in ``parent``, but with the umask's permissions instead of 0700.

    Cache entries and runs are renamed from such folders into place; with 0700 a cache built by
    one user would be unreadable by the others sharing it.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(path, umask_mode(0o777))
    return path


def replace_dir(src: Path, target: Path) -> None:
    """Rename folder ``src`` onto ``target``, replacing an existing ``target``.

    The old ``target`` is first renamed aside, then ``src`` renamed into place, then the old
    one deleted: a reader sees the old complete folder or the new complete one, never a mix.
    (A crash between the two renames -- microseconds -- leaves the old folder in a hidden
    ``.NAME.*.old`` sibling and no ``target``.)
    """
    src, target = Path(src), Path(target)
    if not target.exists():
        os.replace(src, target)
        return
    trash = make_temp_dir(target.parent, f".{target.name}.", ".old")
    os.replace(target, trash / "old")
    os.replace(src, target)
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty hidden folder next to ``target``; on success it replaces ``target``.

    On any exception (including ``KeyboardInterrupt``) the temporary folder is removed and
    ``target`` is untouched; after a ``SIGKILL`` only a hidden ``.NAME.HOST-PID.*.tmp`` sibling
    remains, which the next ``atomic_dir`` of the same target on this host deletes.
    Usage::

        with atomic_dir(run_folder) as tmp:
            write_json(tmp / "config.json", cfg)
            ...
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    owner = f"{socket.gethostname()}-"
    _remove_orphans(target, owner)
    tmp = make_temp_dir(target.parent, f".{target.name}.{owner}{os.getpid()}.")
    try:
        yield tmp
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_orphans(target: Path, owner: str) -> None:
    """Delete staging folders of ``target`` left by killed processes of this host.

    Their names hold ``host-pid``; only those of this host whose process is gone are removed
    (another host's, or a live process's, staging folder is left alone).
    """
    for stale in target.parent.glob(f".{glob_escape(target.name)}.{glob_escape(owner)}*.tmp"):
        pid = stale.name[len(target.name) + len(owner) + 2 :].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def write_json(path: str | os.PathLike, obj, **kwargs) -> Path:
    """Write ``obj`` as indented JSON atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str, **kwargs) + "\n")
    return Path(path)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(*parts: str) -> str:
    """Hex sha256 of the given strings joined with NUL separators (for cache keys)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` atomically (:func:`atomic_path`; through a handle: ``np.save`` would append
    ``.npy`` to the temporary name)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def utc_now() -> str:
    """The current UTC time as ISO 8601 to the second (``2026-12-03T18:00:00+00:00``)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def slug(text: str, *, allowed: str = "A-Za-z0-9._-", keep: str = "head", limit: int = 60, empty: str = "") -> str:
    """``text`` as a file-name part: runs of characters outside ``allowed`` (a regex class body)
    become ``_``; the first (``keep="head"``) or last (``"tail"``) ``limit`` characters are kept;
    ``empty`` when nothing is left.  Cache folders are named with it, so a change renames them."""
    s = re.sub(f"[^{allowed}]+", "_", text)
    return (s[:limit] if keep == "head" else s[-limit:]) or empty
