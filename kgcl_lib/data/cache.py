"""Processed-dataset cache: build once, keyed by source checksums + conversion parameters.

Layout: ``storage.cache_dir("datasets")/<name>-<key>/`` holding

* ``arrays.npz`` — ``ratings``, ``kg``, ``user_raw_ids``, ``relation_names`` and, when known,
  ``entity_raw_ids`` (string arrays are stored as unicode, no pickle);
* ``items.parquet`` — the items table;
* ``meta.json`` — sizes, key, the key's inputs (source file names + sha256, parameters) and
  the dataset's provenance.

A build writes into a hidden temporary folder next to the target and renames it into place
only when complete, so an interrupted or failed build leaves no partial cache entry.
"""

from __future__ import annotations

import errno
import json
import shutil
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .. import storage
from .dataset import ITEM_COLUMNS, DatasetError, KGDataset, make_items

#: Bump when the saved layout or a reader's output changes, to invalidate old entries.
DATASET_CACHE_VERSION = 1


def cache_key(sources: dict[str, str], params: dict) -> str:
    """16 hex chars of sha256 over ``{file name: sha256}``, parameters and :data:`DATASET_CACHE_VERSION`."""
    blob = json.dumps({"sources": sources, "params": params, "version": DATASET_CACHE_VERSION},
                      sort_keys=True, default=str)
    return storage.sha256_text(blob)[:16]


def checksums(files: Iterable[Path]) -> dict[str, str]:
    """``{file name: sha256}`` of the given files."""
    return {Path(f).name: storage.sha256_file(f) for f in files}


def entry_dir(name: str, key: str, root: Path | None = None) -> Path:
    """Folder of one cache entry (``name`` made filesystem-safe, e.g. ``synthetic:tiny``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return (root or storage.cache_dir("datasets")) / f"{safe}-{key}"


def save_dataset(ds: KGDataset, folder: Path, meta: dict | None = None) -> Path:
    """Write ``ds`` to ``folder`` atomically (temp folder + rename); replaces an existing one."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = storage.make_temp_dir(folder.parent, f".{folder.name}.")
    try:
        arrays = {
            "ratings": ds.ratings.astype(np.int64),
            "kg": ds.kg.astype(np.int64),
            "user_raw_ids": np.asarray(ds.user_raw_ids).astype(str),
            "relation_names": np.asarray(ds.relation_names).astype(str),
        }
        if ds.entity_raw_ids is not None:
            arrays["entity_raw_ids"] = np.asarray(ds.entity_raw_ids).astype(str)
        with storage.atomic_path(tmp / "arrays.npz") as p:
            with open(p, "wb") as f:
                np.savez(f, **arrays)
        items = ds.items.copy()
        items["genres"] = items["genres"].map(list)
        with storage.atomic_path(tmp / "items.parquet") as p:
            items.to_parquet(p, index=False)
        info = {
            "name": ds.name,
            "n_users": ds.n_users,
            "n_items": ds.n_items,
            "n_entities": ds.n_entities,
            "n_relations": ds.n_relations,
            "provenance": ds.provenance,
            "cache_version": DATASET_CACHE_VERSION,
            **(meta or {}),
        }
        storage.write_json(tmp / "meta.json", info)  # written last: marks the entry complete
        storage.replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_saved(folder: Path) -> KGDataset:
    """Read a dataset written by :func:`save_dataset`."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise DatasetError(f"{folder}: not a saved dataset (no meta.json)")
    meta = json.loads(meta_path.read_text())
    with np.load(folder / "arrays.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    raw = pd.read_parquet(folder / "items.parquet")
    extra = {c: raw[c].to_numpy(dtype=object) if raw[c].dtype.kind in "OUT" or str(raw[c].dtype) == "str" else raw[c].array
             for c in raw.columns if c not in ITEM_COLUMNS}
    items = make_items(
        raw["raw_id"].to_numpy(dtype=object),
        title=raw["title"].to_numpy(dtype=object),
        year=raw["year"].to_numpy(dtype=object),
        genres=raw["genres"].map(tuple).tolist(),
        synopsis=raw["synopsis"].to_numpy(dtype=object),
        **extra,
    )
    return KGDataset(
        name=meta["name"],
        ratings=arrays["ratings"],
        kg=arrays["kg"],
        n_users=int(meta["n_users"]),
        n_items=int(meta["n_items"]),
        n_entities=int(meta["n_entities"]),
        n_relations=int(meta["n_relations"]),
        items=items,
        user_raw_ids=arrays["user_raw_ids"].astype(object),
        relation_names=arrays["relation_names"].astype(object),
        entity_raw_ids=arrays["entity_raw_ids"].astype(object) if "entity_raw_ids" in arrays else None,
        provenance={**meta.get("provenance", {}), "cache": str(folder)},
    )


def cached_build(
    name: str,
    sources: Iterable[Path],
    params: dict,
    build: Callable[[], KGDataset],
    *,
    force: bool = False,
    root: Path | None = None,
) -> KGDataset:
    """Return the cached dataset for ``(sources' checksums, params)``, building it once.

    Args:
        name: dataset name (first part of the entry folder).
        sources: the raw files the build reads; their sha256 goes into the key.
        params: conversion parameters (threshold, seed, reader format, ...), JSON-able.
        build: zero-argument function producing the dataset on a miss.
        force: rebuild and replace the entry even if it exists.
        root: cache root (default ``storage.cache_dir("datasets")``).

    A cache location that cannot be written (read-only, another user's, full disk) does not
    stop the build: the dataset is returned uncached with a one-line warning naming the path
    and what to do.
    """
    sums = checksums(sources)
    key = cache_key(sums, params)
    try:
        folder = entry_dir(name, key, root)
    except OSError as e:  # the cache root itself cannot be created
        if e.errno not in _UNWRITABLE:
            raise
        folder = None
        _warn_unwritable(e)
    if folder is not None and not force and (folder / "meta.json").is_file():
        try:
            return load_saved(folder)
        except Exception as e:  # a damaged entry is rebuilt rather than trusted
            warnings.warn(f"ignoring unreadable dataset cache {folder}: {e}")
    ds = build()
    if folder is None:
        return ds
    ds.provenance["cache_key"] = key
    try:
        save_dataset(ds, folder, meta={"key": key, "sources": sums, "params": params})
    except OSError as e:
        if e.errno not in _UNWRITABLE:
            raise
        _warn_unwritable(e, folder)
        return ds
    ds.provenance["cache"] = str(folder)
    return ds


#: errno values meaning "this location cannot be written".
_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC)


def _warn_unwritable(e: OSError, folder: Path | None = None) -> None:
    where = e.filename or folder
    warnings.warn(
        f"dataset cache {where} is not writable ({e.strerror}); continuing without caching. "
        "Set KGCL_CACHE_DIR to a writable folder, or pass --no-cache to skip the cache.",
        stacklevel=3,
    )
