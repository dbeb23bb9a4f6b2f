"""Text embeddings from a frozen encoder E (paper Section 4.1): batched, cached, resumable.

The paper embeds every item's synopsis with ``bert-base-uncased`` (mean pooling, 768-d).
:func:`item_text_embeddings` does that for a :class:`~kgcl_lib.data.KGDataset`;
:func:`encode_texts` embeds any list of strings (the pair sampler uses it for verbalised
metadata).

Cache layout (under ``storage.cache_dir("text")``): one folder per (model fingerprint, pooling,
token limit, sha256 of the distinct texts), holding ``part-NNNNN.npy`` chunks while encoding is
in progress (a rerun after a crash encodes only the missing chunks) and ``vectors.npy`` +
``meta.json`` when finished.  Every file is written through :func:`kgcl_lib.storage.atomic_path`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .. import __version__, storage
from ..data import DatasetError
from .models import PAPER_SYNOPSIS_ENCODER, Encoder, resolve_encoder

EMBEDDING_CACHE_VERSION = "kgcl-text-v1"
#: Texts per checkpointed chunk (a crash loses at most one chunk of work).
DEFAULT_CHUNK = 1024


@dataclass(frozen=True, eq=False)
class TextEmbeddings:
    """Per-item text vectors.

    Attributes:
        vectors: ``float32[n_items, D]``; all-zero rows where the item has no text.
        has_text: ``bool[n_items]``, true where a (non-blank) text was encoded.
        model: the encoder actually used (after any offline fallback).
        provenance: requested/used model, fallback reason, fingerprint, pooling, field, text
            checksum, cache folder, date.
    """

    vectors: np.ndarray
    has_text: np.ndarray
    model: str
    provenance: dict


def _folder_name(name: str) -> str:
    """The encoder's part of its cache folder name (the last 60 characters of its slug)."""
    return storage.slug(name.strip("/"), keep="tail", empty="model")


def _embedding_key(encoder: Encoder, uniques: Sequence[str]) -> str:
    # Batch size and chunk size do not change the vectors (up to float noise), so they are not
    # part of the key; everything that does change them is.
    texts_sha = storage.sha256_text(*uniques)
    return storage.sha256_text(EMBEDDING_CACHE_VERSION, encoder.fingerprint, encoder.kind, encoder.pooling, str(encoder.max_length), texts_sha)


def _encode_unique(encoder: Encoder, uniques: list[str], *, batch_size: int, cache: bool, chunk_size: int, show_progress: bool) -> tuple[np.ndarray, dict]:
    """Encode distinct texts, chunk by chunk, reusing/creating the cache. Returns (vectors, info)."""
    from tqdm.auto import tqdm

    info: dict = {"cache": None, "cache_hit": False, "resumed_chunks": 0}
    n = len(uniques)
    folder = None
    if cache:
        key = _embedding_key(encoder, uniques)
        folder = storage.cache_dir("text") / f"{_folder_name(encoder.name)}-{key[:24]}"
        info["cache"] = str(folder)
        final = folder / "vectors.npy"
        if final.is_file():
            vec = np.load(final)
            if vec.shape == (n, encoder.dim):
                info["cache_hit"] = True
                return vec, info
    out = np.zeros((n, encoder.dim), dtype=np.float32)
    starts = range(0, n, chunk_size)
    bar = tqdm(total=n, unit="text", desc=f"encode [{_folder_name(encoder.name)}]", disable=not show_progress or n == 0)
    try:
        for i, start in enumerate(starts):
            stop = min(start + chunk_size, n)
            part = folder / f"part-{i:05d}-{chunk_size}.npy" if folder is not None else None
            if part is not None and part.is_file():
                done = np.load(part)
                if done.shape == (stop - start, encoder.dim):
                    out[start:stop] = done
                    info["resumed_chunks"] += 1
                    bar.update(stop - start)
                    continue
            out[start:stop] = encoder.encode(uniques[start:stop], batch_size=batch_size, progress=bar)
            if part is not None:
                storage.save_npy(part, out[start:stop])
    finally:
        bar.close()
    if folder is not None:
        storage.save_npy(folder / "vectors.npy", out)
        storage.write_json(folder / "meta.json", {**encoder.describe(), "n_texts": n, "created": storage.utc_now(), "kgcl_version": __version__})
        for part in folder.glob("part-*.npy"):
            part.unlink(missing_ok=True)
    return out, info


def encode_texts_with_info(texts: Sequence[str], model: str | Encoder = PAPER_SYNOPSIS_ENCODER, *, batch_size: int = 64,
                           device: str | None = None, pooling: str = "mean", cache: bool = False, offline_fallback: bool = True,
                           chunk_size: int = DEFAULT_CHUNK, show_progress: bool = True) -> tuple[np.ndarray, Encoder, dict]:
    """:func:`encode_texts` that also returns the :class:`Encoder` used and cache info
    (``cache`` folder, ``cache_hit``, ``resumed_chunks``, ``n_unique``)."""
    texts = [str(t) for t in texts]
    if batch_size < 1 or chunk_size < 1:
        raise ValueError(f"batch_size and chunk_size must be >= 1, got {batch_size}, {chunk_size}")
    encoder = resolve_encoder(model, offline_fallback=offline_fallback, device=device, pooling=pooling)
    # Encode each distinct text once (verbalised genres repeat a lot), scatter back after.
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object), sort=False)
    uniq_vec, info = _encode_unique(encoder, list(uniques), batch_size=batch_size, cache=cache, chunk_size=chunk_size, show_progress=show_progress)
    info["n_unique"] = len(uniques)
    vectors = uniq_vec[codes] if len(texts) else np.zeros((0, encoder.dim), dtype=np.float32)
    return np.ascontiguousarray(vectors, dtype=np.float32), encoder, info


def encode_texts(texts: Sequence[str], model: str | Encoder = PAPER_SYNOPSIS_ENCODER, *, batch_size: int = 64, device: str | None = None,
                 pooling: str = "mean", cache: bool = False, offline_fallback: bool = True, chunk_size: int = DEFAULT_CHUNK,
                 show_progress: bool = True) -> np.ndarray:
    """Embed ``texts`` with encoder ``model`` -> ``float32[len(texts), D]``.

    Args:
        texts: strings; duplicates are encoded once.
        model: hub id, local folder or a loaded :class:`~kgcl_lib.text.models.Encoder`
            (see :func:`~kgcl_lib.text.models.resolve_encoder` for the offline fallback).
        batch_size: texts per forward pass (default 64).
        device: torch device (default: CUDA when available, else CPU).
        pooling: ``"mean"`` (default) or ``"cls"`` for plain transformers encoders;
            sentence-transformers models use their own pooling.
        cache: keep the vectors under ``storage.cache_dir("text")`` and resume from finished
            chunks (default off here; :func:`item_text_embeddings` turns it on).
        chunk_size: texts per checkpointed chunk.
    """
    vectors, _, _ = encode_texts_with_info(texts, model, batch_size=batch_size, device=device, pooling=pooling, cache=cache,
                                           offline_fallback=offline_fallback, chunk_size=chunk_size, show_progress=show_progress)
    return vectors


def item_texts(items: pd.DataFrame, field: str = "synopsis", *, dataset: str = "dataset") -> pd.Series:
    """Column ``field`` of an items table as stripped strings, ``None`` where missing or blank.

    Raises:
        DatasetError: the column does not exist (names the dataset and the columns present).
    """
    if field not in items.columns:
        raise DatasetError(f"{dataset}: items table has no column {field!r} to encode (columns: {', '.join(map(str, items.columns))})")
    col = items[field]
    return pd.Series([v.strip() if isinstance(v, str) and v.strip() else None for v in col.tolist()], index=items.index, dtype=object)


def item_text_embeddings(ds, model: str | Encoder = PAPER_SYNOPSIS_ENCODER, *, field: str = "synopsis", batch_size: int = 64,
                         device: str | None = None, cache: bool = True, pooling: str = "mean", offline_fallback: bool = True,
                         show_progress: bool = True) -> TextEmbeddings:
    """Encode each item's ``field`` (default: synopsis) with encoder ``model``.

    Args:
        ds: a :class:`~kgcl_lib.data.KGDataset`; ``ds.items[field]`` holds str or NA.
        model: the paper's E is ``bert-base-uncased`` with mean pooling (768-d); any
            sentence-transformers model or local folder works.  Falls back to the packaged
            all-MiniLM-L6-v2 (384-d) with a loud warning when unavailable offline.
        cache: reuse/write the on-disk cache (default on).

    Returns:
        :class:`TextEmbeddings` with ``vectors float32[n_items, D]`` (zeros where missing),
        ``has_text bool[n_items]`` and the model actually used.
    """
    texts = item_texts(ds.items, field, dataset=ds.name)
    has_text = texts.notna().to_numpy()
    idx = np.flatnonzero(has_text)
    vec, encoder, info = encode_texts_with_info(texts.iloc[idx].tolist(), model, batch_size=batch_size, device=device, pooling=pooling,
                                                cache=cache, offline_fallback=offline_fallback, show_progress=show_progress)
    vectors = np.zeros((ds.n_items, encoder.dim), dtype=np.float32)
    vectors[idx] = vec
    provenance = {
        "dataset": ds.name,
        "field": field,
        "n_items": int(ds.n_items),
        "n_with_text": int(len(idx)),
        "texts_sha256": storage.sha256_text(*(f"{i}\t{t}" for i, t in zip(idx.tolist(), texts.iloc[idx].tolist()))),
        "model": encoder.name,
        "requested_model": encoder.requested,
        "encoder": encoder.describe(),
        **info,
        "created": storage.utc_now(),
        "kgcl_version": __version__,
    }
    return TextEmbeddings(vectors=vectors, has_text=has_text, model=encoder.name, provenance=provenance)


def describe_model(provenance: dict) -> str:
    """One line for figure/table captions: which text encoder produced the numbers.

    >>> describe_model({"model": "m", "encoder": {"requested": "bert-base-uncased", "fallback": True}})
    'text encoder: m (offline fallback; requested bert-base-uncased)'
    """
    enc = provenance.get("encoder", {})
    line = f"text encoder: {provenance.get('model', enc.get('name', '?'))}"
    if enc.get("fallback"):
        line += f" (offline fallback; requested {enc.get('requested', '?')})"
    return line


__all__ = ["TextEmbeddings", "encode_texts", "encode_texts_with_info", "item_text_embeddings", "item_texts", "describe_model"]
