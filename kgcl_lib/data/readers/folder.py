"""A dataset folder: which format it holds, its source files, and reading it."""

from __future__ import annotations

from pathlib import Path

from ..dataset import DatasetError, KGDataset
from .kgcn import KGCN_ITEM_MAP_GLOB, KGCN_KG, KGCN_RATINGS, read_kgcn
from .metadata import BOOKS, SYNOPSES
from .ml20m import ML20M_ITEM_MAP, ML20M_KG, ML20M_LINKS, ML20M_MOVIES, ML20M_RATINGS, read_ml20m_raw
from .plain import PLAIN_ITEMS, PLAIN_KG, PLAIN_RATINGS, read_plain
from .recbole import read_recbole

# ---------------------------------------------------------------------------------------
# Format detection
# ---------------------------------------------------------------------------------------
FORMATS = ("recbole", "plain", "ml20m-raw", "kgcn")


def _is_plain(ratings_csv: Path) -> bool:
    """A ``ratings.csv`` that is not ML-20M's (header ``userId,movieId,...``): the plain format,
    whose reader names a missing ``user`` / ``item`` column."""
    with open(ratings_csv, encoding="utf-8", errors="replace", newline="") as f:
        header = [h.strip().strip('"').lower() for h in f.readline().rstrip("\r\n").split(",")]
    return not {"userid", "movieid"} <= set(header)


def detect_format(folder: Path) -> str | None:
    """Which format ``folder`` holds: ``"recbole"`` (a ``*.inter``), ``"plain"`` (``ratings.csv``
    with any header but ML-20M's, docs/your-data.md), ``"ml20m-raw"`` (``userId,movieId,...``),
    ``"kgcn"`` (``ratings_final.txt``), checked in that order; ``None``."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if any(folder.glob("*.inter")):
        return "recbole"
    if (folder / PLAIN_RATINGS).is_file() and _is_plain(folder / PLAIN_RATINGS):
        return "plain"
    if (folder / ML20M_RATINGS).is_file():
        return "ml20m-raw"
    if (folder / KGCN_RATINGS).is_file():
        return "kgcn"
    return None


def source_files(folder: Path, fmt: str) -> list[Path]:
    """The files a reader of ``fmt`` consumes from ``folder`` (those that exist), for checksums."""
    folder = Path(folder)
    if fmt == "kgcn":
        names = [KGCN_RATINGS, KGCN_KG] + [p.name for p in sorted(folder.glob(KGCN_ITEM_MAP_GLOB))[:1]] + [BOOKS]
    elif fmt == "recbole":
        stem = sorted(folder.glob("*.inter"))[0].stem
        names = [f"{stem}.{e}" for e in ("inter", "item", "kg", "link")] + [SYNOPSES]
    elif fmt == "plain":
        names = [PLAIN_RATINGS, PLAIN_ITEMS, PLAIN_KG]
    elif fmt == "ml20m-raw":
        names = [ML20M_RATINGS, ML20M_ITEM_MAP, ML20M_KG, ML20M_MOVIES, ML20M_LINKS, SYNOPSES]
    else:
        raise DatasetError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return [folder / n for n in names if (folder / n).is_file()]


def read_folder(
    folder: Path, name: str | None = None, *, threshold: float = 4, seed=0, synopses=None, how: str = "",
    kg_columns=None,
) -> KGDataset:
    """Read whatever format ``folder`` holds (see :func:`detect_format`).

    ``name`` is used by the ML-20M and KGCN readers (default: the folder name); RecBole
    datasets are named after their ``*.inter`` file.  ``threshold``/``seed``/``synopses`` go
    to the converting readers, ``how`` into missing-file errors, ``kg_columns`` to the plain reader.
    """
    fmt = detect_format(folder)
    if fmt == "plain":
        return read_plain(folder, name or Path(folder).name, threshold=threshold, seed=seed, kg_columns=kg_columns,
                          how=how)
    if fmt == "recbole":
        return read_recbole(folder, None, threshold=threshold, seed=seed, synopses=synopses, how=how)
    if fmt == "ml20m-raw":
        return read_ml20m_raw(folder, name or Path(folder).name, threshold=threshold, seed=seed, how=how)
    if fmt == "kgcn":
        return read_kgcn(folder, name, how=how)
    raise DatasetError(
        f"{folder}: no dataset files found (need RecBole *.inter/.kg/.link, a plain ratings.csv with a user,item header "
        f"(docs/your-data.md), or ratings.csv + "
        f"{ML20M_ITEM_MAP} + {ML20M_KG}, or {KGCN_RATINGS} + {KGCN_KG}). {how}"
    )
