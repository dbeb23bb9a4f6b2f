"""Dataset names -> files -> cached :class:`KGDataset`.

:func:`load_dataset` finds a dataset's files in this order:

1. the explicit ``data_dir`` argument: ``data_dir/<name>/`` or ``data_dir`` itself (an explicit
   folder that holds neither is an error, never silently skipped);
2. ``$KGCL_DATA_DIR/<name>/``;
3. the raw-data cache ``<cache>/data/<name>/`` (``<cache>`` = ``$KGCL_CACHE_DIR`` or
   ``~/.cache/kgcl``), where acquisition puts files;
4. a processed-cache entry of ``<name>`` built earlier with the same parameters (used only
   when the raw files are gone);
5. acquisition into ``<cache>/data/<name>/``: ML-100K from the RecBole wheel
   (:mod:`kgcl_lib.data.embedded`), the others via ``kgcl_lib.data.acquire.fetch_dataset``.

The files are then read by format (:func:`kgcl_lib.data.readers.detect_format`) and the result
is cached under ``<cache>/datasets/<name>-<key>/``, ``key`` = sha256 of the source files'
checksums + conversion parameters (:mod:`kgcl_lib.data.cache`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import storage
from .acquire import fetch_dataset
from .cache import DATASET_CACHE_VERSION, cached_build, load_saved
from .dataset import DatasetError, KGDataset
from .embedded import fetch_ml100k
from .readers import BOOKS, SYNOPSES, detect_format, read_folder, source_files
from .synthetic import SHAPES, make_synthetic


@dataclass(frozen=True)
class DatasetSpec:
    """What a named dataset looks like on disk and how to get it."""

    name: str
    formats: tuple[str, ...]  # accepted on-disk formats, see readers.FORMATS
    files: str  # human description of the files, for error messages
    how: str  # how to obtain them, for error messages


DATASETS = {
    "ml-100k": DatasetSpec(
        "ml-100k",
        ("recbole",),
        "ml-100k.inter, ml-100k.item, ml-100k.kg, ml-100k.link (RecBole atomic files) [+ synopses.tsv]",
        "It is extracted automatically from the PyPI wheel recbole==1.2.1 (needs a reachable package "
        "index; see kgcl_lib.data.embedded), or run `python -m kgcl_lib.data fetch --dataset ml-100k`.",
    ),
    "book-crossing": DatasetSpec(
        "book-crossing",
        ("kgcn",),
        "ratings_final.txt, kg_final.txt, item_index2entity_id_rehashed.txt (KGCN/RippleNet format) [+ books.tsv]",
        "Run `python -m kgcl_lib.data fetch --dataset book-crossing` (downloads RippleNet's files).",
    ),
    "ml-20m": DatasetSpec(
        "ml-20m",
        ("ml20m-raw", "kgcn"),
        "ratings.csv, movies.csv, links.csv (GroupLens ml-20m.zip) + item_index2entity_id.txt, kg.txt (KGCN repo)",
        "Run `python -m kgcl_lib.data fetch --dataset ml-20m` (GroupLens + KGCN's KG files).",
    ),
}
ALIASES = {
    "movielens-100k": "ml-100k",
    "movielens-20m": "ml-20m",
    "movie": "ml-20m",
    "book": "book-crossing",
    "bx": "book-crossing",
}
#: Conversion parameters that matter per format (the processed-cache key uses only these).
_PARAMS = {"recbole": ("threshold", "seed"), "ml20m-raw": ("threshold", "seed"), "kgcn": ()}


def canonical(name: str) -> str:
    """Registry name for ``name`` (aliases and case folded); unknown names pass through."""
    low = name.strip().lower()
    if low in ALIASES:
        return ALIASES[low]
    return low if low in DATASETS else name.strip()


def _how(name: str, tried: list[Path]) -> str:
    spec = DATASETS.get(name)
    where = ", ".join(str(p) for p in tried) or "nowhere"
    if spec is None:
        return f"Looked in: {where}. Known datasets: {sorted(DATASETS)} and synthetic:<shape>."
    return f"Needs {spec.files}. Looked in: {where}. {spec.how} Or set KGCL_DATA_DIR to a folder holding {name}/."


def raw_cache_dir(name: str) -> Path:
    """``<cache>/data/<name>``: where acquired raw files live."""
    return storage.cache_dir("data") / name


def find_source(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The first folder in the search order that holds ``name``'s files, or ``None``.

    An explicit ``data_dir`` that holds neither ``<name>/`` nor the files raises
    :class:`DatasetError`.
    """
    if data_dir is not None:
        base = Path(data_dir)
        for cand in (base / name, base):
            if detect_format(cand):
                return cand
        raise DatasetError(f"{name}: no dataset files in {base / name} or {base}. {_how(name, [base / name, base])}")
    env = storage.data_dir()
    cands = ([env / name] if env else []) + [raw_cache_dir(name)]
    for cand in cands:
        if detect_format(cand):
            return cand
    return None


def _params(fmt: str, threshold: float, seed: int) -> dict:
    values = {"threshold": float(threshold), "seed": int(seed)}
    return {"format": fmt, **{k: values[k] for k in _PARAMS[fmt]}}


def _find_processed(name: str, threshold: float, seed: int) -> Path | None:
    """Newest processed-cache entry of ``name`` whose parameters match (raw files gone)."""
    root = storage.cache_dir("datasets")
    best = None
    for meta_path in root.glob(f"{name}-*/meta.json"):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        params = meta.get("params") or {}
        fmt = params.get("format")
        stale = meta.get("cache_version") != DATASET_CACHE_VERSION
        if fmt not in _PARAMS or params != _params(fmt, threshold, seed) or stale:
            continue
        if best is None or meta_path.stat().st_mtime > best.stat().st_mtime:
            best = meta_path
    return best.parent if best else None


def _acquire(name: str, tried: list[Path]) -> Path:
    dest = raw_cache_dir(name)
    if name == "ml-100k":
        return fetch_ml100k(dest)
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}. {_how(name, tried)}")
    try:
        return Path(fetch_dataset(name, dest))
    except NotImplementedError as e:
        raise DatasetError(f"{name}: not found and automatic download is not implemented ({e}). {_how(name, tried)}") from e


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    threshold: float = 4,
    seed: int = 0,
    force: bool = False,
    cache: bool = True,
    acquire: bool = True,
) -> KGDataset:
    """Load a dataset by name (see the module docstring for the search order).

    Args:
        name: ``"ml-100k"``, ``"book-crossing"``, ``"ml-20m"`` (aliases ``movie``, ``bx``, ...),
            ``"synthetic:<preset>"`` (:data:`kgcl_lib.data.synthetic.SHAPES`), or any other
            name whose folder is found under ``data_dir`` / ``$KGCL_DATA_DIR``.
        data_dir: explicit folder holding ``<name>/`` (or the files themselves).
        threshold: rating ``>= threshold`` is a positive (raw-rating formats only; KGCN files
            are already labelled).
        seed: negative-sampling seed (raw-rating formats; synthetic data).
        force: rebuild the processed cache entry.
        cache: read/write the processed cache (``False``: always build, write nothing).
        acquire: allow downloading when the files are not found.
    """
    name = canonical(name)
    if name.startswith(("synthetic:", "synthetic-")):
        return _load_synthetic(name, seed=seed, force=force, cache=cache)
    folder = find_source(name, data_dir)
    env = storage.data_dir()
    tried = [Path(data_dir)] if data_dir is not None else ([env / name] if env else []) + [raw_cache_dir(name)]
    if folder is None and cache and not force:
        hit = _find_processed(name, threshold, seed)
        if hit is not None:
            return load_saved(hit)
    if folder is None:
        if not acquire:
            raise DatasetError(f"{name}: dataset files not found. {_how(name, tried)}")
        folder = _acquire(name, tried)
    fmt = detect_format(folder)
    spec = DATASETS.get(name)
    if fmt is None or (spec is not None and fmt not in spec.formats):
        expected = spec.formats if spec else "any"
        raise DatasetError(f"{name}: {folder} holds {fmt or 'no known'} format, expected {expected}. {_how(name, tried)}")
    sources = source_files(folder, fmt)
    synopses = None
    if fmt == "recbole" and not (folder / SYNOPSES).is_file():
        # Synopses are not in the RecBole wheel: take them from $KGCL_DATA_DIR/<name>/ or from
        # where `fetch --dataset ml-100k` put them (the raw-data cache), if there.
        for cand in ([env / name / SYNOPSES] if env else []) + [raw_cache_dir(name) / SYNOPSES]:
            if cand.is_file():
                synopses = cand
                sources.append(synopses)
                break
    text_source = text_source_of(synopses.parent if synopses is not None else folder, fmt)
    sources += [p for p in (folder / TEXT_RECORD, folder / "coverage.json") if p.is_file() and p not in sources]
    params = _params(fmt, threshold, seed)

    def build() -> KGDataset:
        ds = read_folder(folder, name, threshold=threshold, seed=seed, synopses=synopses, how=_how(name, tried))
        ds.provenance["source"] = str(folder)
        ds.provenance["text_source"] = text_source if ds.items["synopsis"].notna().any() else "none"
        return ds if ds.name == name else dataclasses.replace(ds, name=name)

    ds = build() if not cache else cached_build(name, sources, params, build, force=force)
    if ds.provenance.get("text_source", "none") == "none" and name in TEXT_HINTS:
        say_once(f"{name}: no synopses found ({BOOKS if fmt == 'kgcn' else SYNOPSES} absent in {folder}"
                 + (f" and {env / name}" if env and env / name != folder else "") + "). "
                 f"Runs 'with semantic text' have no human text. {TEXT_HINTS[name]}")
    return ds


#: How to get a dataset's synopses, for the one-time notice when they are absent.
TEXT_HINTS = {
    "ml-100k": "Online: `python -m kgcl_lib.data fetch --dataset ml-100k` adds synopses.tsv (TMDB by title + year "
               "with TMDB_API_KEY, else Wikipedia page summaries); or set KGCL_DATA_DIR to a folder whose ml-100k/ "
               "holds synopses.tsv.",
    "ml-20m": "Run `python -m kgcl_lib.data fetch --dataset ml-20m` (synopses.tsv from TMDB / Wikipedia).",
    "book-crossing": "Online: `python -m kgcl_lib.data fetch --dataset book-crossing` adds books.tsv (titles, genres, "
                     "synopses from BX-Books / Google Books / Goodreads).",
}
#: Per-item record of where fetched synopses came from (written by kgcl_lib.data.acquire).
TEXT_RECORD = "synopses_source.tsv"
_SAID: set[str] = set()


def say_once(message: str) -> None:
    """Warn (``UserWarning`` + stderr line) the first time ``message`` comes up in this process."""
    if message in _SAID:
        return
    _SAID.add(message)
    import sys
    import warnings

    print(f"[kgcl] {message}", file=sys.stderr)
    warnings.warn(message, UserWarning, stacklevel=3)


def text_source_of(folder: Path, fmt: str | None = None) -> str:
    """Where the synopses in ``folder`` came from: a key of :data:`kgcl_lib.constants.TEXT_SOURCES`.

    A fetch leaves a record: ``synopses_source.tsv`` (ML-100K: one source per item) or
    ``coverage.json`` (``fields.synopsis.by_source``: ML-20M, Book-Crossing).  Sources with at
    least one item are joined with ``+`` in a fixed order (``tmdb+wikipedia``).  A synopsis
    file without such a record is taken as supplied human text (``"human"``, e.g. the IMDb
    plot lines of the shared ML-100K copy).
    """
    order = ("tmdb", "wikipedia", "goodreads", "google_books")
    counts: dict[str, int] = {}
    if (folder / TEXT_RECORD).is_file():
        import pandas as pd

        rec = pd.read_csv(folder / TEXT_RECORD, sep="\t", dtype=str, keep_default_na=False)
        counts = rec["source"].value_counts().to_dict() if "source" in rec else {}
    elif (folder / "coverage.json").is_file():
        try:
            cov = json.loads((folder / "coverage.json").read_text())
            counts = (cov.get("fields", {}).get("synopsis") or {}).get("by_source") or {}
        except (OSError, ValueError):
            counts = {}
    used = [s for s in order if counts.get(s)]
    return "+".join(used) if used else "human"


def _load_synthetic(name: str, *, seed: int, force: bool, cache: bool) -> KGDataset:
    preset = name.split(":", 1)[1] if ":" in name else name.split("-", 1)[1]
    if preset not in SHAPES:
        raise DatasetError(f"unknown synthetic shape {preset!r}; presets: {sorted(SHAPES)}")
    shape = SHAPES[preset]
    build = lambda: make_synthetic(shape, np.random.default_rng(seed))  # noqa: E731
    if not cache:
        return build()
    params = {"format": "synthetic", "seed": int(seed), "shape": dataclasses.asdict(shape)}
    return cached_build(f"synthetic-{preset}", [], params, build, force=force)


def stats(name: str, data_dir: str | Path | None = None, **kwargs) -> dict:
    """The paper's Table 1 row of a dataset: ``users, contents, uc_rows, entities, relations,
    kg_triples`` (``entities`` = distinct entity indices used by the KG or by an item)."""
    return load_dataset(name, data_dir, **kwargs).stats()
