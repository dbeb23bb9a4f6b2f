"""Semantic text: frozen-encoder embeddings of item synopses, encoder resolution, LLM synopses.

Names are imported lazily (PEP 562) so that ``import kgcl_lib.text`` does not load torch,
transformers or sentence-transformers; the first use of a name imports its submodule.

* :func:`item_text_embeddings` / :func:`encode_texts` / :class:`TextEmbeddings` — ``encode.py``
* :func:`resolve_encoder`, :func:`resolve_cross_encoder`, :func:`packaged_model_path`,
  :func:`random_bert` — ``models.py``
* :func:`generate_synopses` — ``generate.py`` (LLM synopsis generation: model resolution and the
  loop), with ``prompts.py`` (prompt wording, cleaning), ``decoding.py`` (settings, one batch),
  ``synopsis_cache.py`` (the resumable JSONL cache) and ``similarity.py`` (LLM vs human text)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TextEmbeddings": "encode",
    "encode_texts": "encode",
    "encode_texts_with_info": "encode",
    "item_text_embeddings": "encode",
    "item_texts": "encode",
    "describe_model": "encode",
    "Encoder": "models",
    "CrossEncoderModel": "models",
    "EncoderLoadError": "models",
    "EncoderFallbackWarning": "models",
    "resolve_encoder": "models",
    "resolve_cross_encoder": "models",
    "load_encoder": "models",
    "locate_model": "models",
    "packaged_model_path": "models",
    "random_bert": "models",
    "PACKAGED_MODEL_ID": "models",
    "PAPER_SYNOPSIS_ENCODER": "models",
    "PAPER_BI_ENCODER": "models",
    "PAPER_CROSS_ENCODER": "models",
    "generate_synopses": "generate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
