"""The paper's grid of runs and the results store the notebooks share.

A run is named by a :class:`RunSpec` — dataset, variant (``base`` = L_base, ``cl_genre``,
``cl_title_genre``), text arm (``without`` / ``with`` the dataset's own text / ``llm`` synopses),
optionally the text source it must use (``human``, ``tmdb``, ``wikipedia``, ``metadata``, … see
:data:`kgcl_lib.constants.TEXT_SOURCES`), seed, γ and free ``TrainConfig`` overrides — whose
:attr:`RunSpec.run_id` is a stable hash.  :func:`run_grid` trains the runs that are not finished
yet and stores, under ``<results_dir>/runs/<run_id>/``:

* ``config.json``   — the spec, the exact ``TrainConfig``, evaluation settings, encoder model,
  pairs provenance, dataset checksum/provenance and timings;
* ``metrics.json``  — test AUC/F1, Recall/NDCG@K, Inter/Intra@20, alignment/uniformity,
  NDCG@100 by user-activity percentile;
* ``complete.json`` — ``{"run_id", "config_key", "finished_at"}``, written last: a run is
  finished when it holds this marker with the config key the caller expects (:func:`is_finished`);
* ``topk.npy``      — ``int64[n_test_users, 100]`` top-100 items per test user, best first;
* ``test_users.npy``— ``int64[n_test_users]`` the users those rows belong to;
* ``content_emb.npy`` — ``float32[n_items, d]`` the trained content embeddings;
* ``user_ndcg.npy`` / ``user_recall.npy`` — ``float64[n_test_users, len(user_metric_ks)]``
  per-user NDCG@K / Recall@K, ``user_metric_ks.npy`` their K, ``user_activity.npy`` each test
  user's training positives (runs stored before these existed: :mod:`kgcl_lib.claims` rebuilds them).

A run is written into a temporary sibling folder (``runs/.<run_id>.<host>-<pid>-<ns>.partial``)
and renamed onto ``runs/<run_id>`` only when complete, so an interrupted run (Ctrl-C, SIGKILL, a
lost Ray worker) never leaves a folder mixing two runs: the previous complete run, or none, stays
(:func:`execute_run`). The config key covers the ``TrainConfig``, the evaluation settings, the
effective thread count and the device type, because results at 1 and 2 threads (or CPU and GPU)
differ at ≈1e-6 (:func:`config_key`). :func:`run_grid` runs the unfinished specs in this process
or as Ray tasks (``executor="ray"``, :mod:`kgcl_lib.executors`).

**No duplicate runs.**  When a dataset lacks what a cell of the grid needs — no text at all
(the "with" arm would equal "without"), or too few genres/titles (both CL templates fall back to
the same KG-attribute pairs) — :func:`plan_grid` maps the cell to the one configuration it
equals; that configuration is trained once and the cell gets ``not_applicable.json`` (reason,
``same_as``) instead of results.  :func:`load_results` returns such cells with ``na_reason`` set
and NaN metrics, so tables print "n/a (reason)" and no p-value is computed for them.  A CL run
whose pairs came from KG attributes is reported as variant ``cl_kg`` ("+CL KG attributes").

Work that notebooks hand to each other also lives under ``results_dir`` (``text/``, ``pairs/``):
:func:`text_embeddings` and :func:`content_pairs` load a stored file when present and build and
store it otherwise, so any notebook reruns alone.  :func:`load_results` flattens the store into
one DataFrame; :func:`summarize` and :func:`ttests` turn it into the long frames
:mod:`kgcl_lib.report` renders.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .constants import KS, NO_TEXT_VARIANTS, PERCENTILES, TEXT_ARMS, TEXT_SOURCES, VARIANT_TEMPLATE, VARIANTS  # noqa: F401
from .storage import atomic_dir, atomic_path, write_json

#: Marker file of a grid cell that is a copy of another configuration (see the module docstring).
NOT_APPLICABLE = "not_applicable.json"


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One training run of the grid.

    Attributes:
        dataset: name understood by :func:`open_dataset` (``"ml-100k"``, ``"synthetic-tiny"`` …).
        variant: ``"base"`` (L_base only, the paper's Table 1 settings), ``"cl_genre"``,
            ``"cl_title_genre"`` or ``"kgcn_original"`` (L_base with KGCN's own published settings,
            :func:`kgcl_lib.train.kgcn_settings`; text ``"without"`` only).
        text: the text arm: ``"without"`` (free item embeddings), ``"with"`` (the dataset's own
            text) or ``"llm"`` (LLM-generated synopses).
        seed: split, neighbour sampling and initialisation seed.
        gamma: weight of L_base against the contrastive loss (default: ``None`` = the
            dataset's paper setting).
        overrides: ``((field, value), ...)`` applied to the ``TrainConfig`` (e.g. epochs).
        text_source: where the text must come from (a key of
            :data:`~kgcl_lib.constants.TEXT_SOURCES`; ``None``: whatever the dataset has, see
            :func:`text_source`). ``run_grid`` refuses a dataset whose text is another source.
            The source actually used is always recorded with the run and labels its table rows.
    """

    dataset: str
    variant: str
    text: str = "without"
    seed: int = 0
    gamma: float | None = None
    overrides: tuple = ()
    text_source: str | None = None

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"RunSpec.variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.text not in TEXT_ARMS:
            raise ValueError(f"RunSpec.text must be one of {TEXT_ARMS}, got {self.text!r}")
        if self.text_source is not None and self.text_source not in TEXT_SOURCES:
            raise ValueError(f"RunSpec.text_source must be None or one of {sorted(TEXT_SOURCES)}, got {self.text_source!r}")
        fixed = {"without": "none", "llm": "llm"}.get(self.text)
        if fixed and self.text_source not in (None, fixed):
            raise ValueError(f"RunSpec(text={self.text!r}) has text_source {fixed!r}, not {self.text_source!r}")
        if self.variant in NO_TEXT_VARIANTS and self.text != "without":
            raise ValueError(f"RunSpec.variant {self.variant!r} has no text; got text={self.text!r}")
        object.__setattr__(self, "overrides", tuple(sorted((str(k), v) for k, v in dict(self.overrides).items())))

    def key(self) -> dict:
        key = {"dataset": self.dataset, "variant": self.variant, "text": self.text, "seed": int(self.seed),
               "gamma": None if self.gamma is None else float(self.gamma), "overrides": [list(o) for o in self.overrides]}
        if self.text_source is not None:  # unpinned specs keep the hashes they always had
            key["text_source"] = self.text_source
        return key

    @property
    def run_id(self) -> str:
        """``<dataset>-<variant>-<text>-s<seed>-<8 hex>``: readable, and stable across sessions."""
        digest = hashlib.sha256(json.dumps(self.key(), sort_keys=True, default=str).encode()).hexdigest()[:8]
        return f"{self.dataset}-{self.variant}-{self.text}-s{self.seed}-{digest}"


def grid_specs(datasets: Sequence[str], variants: Sequence[str] = VARIANTS, texts: Sequence[str] = ("without", "with"),
               seeds: Sequence[int] = (0,), gammas: Sequence[float | None] = (None,),
               overrides: dict | None = None, text_sources: dict | None = None) -> list[RunSpec]:
    """The cartesian product datasets × texts × variants × γ × seeds as :class:`RunSpec` s.

    ``overrides`` maps a dataset name (or ``"*"`` for all) to TrainConfig overrides;
    ``text_sources`` maps a dataset name to the source its ``"with"`` runs must use (default:
    the dataset's own, recorded per run). Cells a dataset cannot fill are resolved by
    :func:`run_grid` (see :func:`plan_grid`): they are never trained twice.
    """
    overrides, text_sources = overrides or {}, text_sources or {}
    out = []
    for ds in datasets:
        ov = {**overrides.get("*", {}), **overrides.get(ds, {})}
        for text in texts:
            src = text_sources.get(ds) if text == "with" else None
            for variant in variants:
                if variant in NO_TEXT_VARIANTS and text != "without":
                    continue
                for gamma in gammas:
                    for seed in seeds:
                        out.append(RunSpec(ds, variant, text, int(seed), gamma, tuple(ov.items()), src))
    return out


#: Top-K ranking masks of :class:`EvalConfig` and how captions name them.
EVAL_MASKS = {
    "train_records": "top-K ranking excludes each user's training rows (positives and sampled negatives), as KGCN's code",
    "train_valid_positives": "top-K ranking excludes each user's train and valid positives",
}


@dataclass(frozen=True)
class EvalConfig:
    """How every run is evaluated (saved in ``config.json``).

    Attributes:
        ks: cut-offs of Recall/NDCG@K (Table 3).
        diversity_k: cut-off of Inter/Intra-list diversity (Table 4).
        topk: length of the stored top lists (≥ max(ks)).
        scoring: ``"kgcn"`` (the KGCN score of every user–item pair) or ``"dot"``.
        ndcg: ``"jurity"`` (the paper's library) or ``"standard"``.
        percentiles: cumulative activity buckets of the cold-start analysis.
        cold_k: cut-off of the cold-start NDCG (Figures 1/5 use NDCG@100).
        mask: which items are removed from a user's top-K ranking (:data:`EVAL_MASKS`):
            ``"train_records"`` (default; KGCN's reference code, ``topk_eval``: every item of the
            user's *training* rows, positives and sampled negatives) or ``"train_valid_positives"``
            (the user's train and valid positives; this project's earlier choice).  Valid rows
            are not masked by default because KGCN does not mask them.
    """

    ks: tuple = KS
    diversity_k: int = 20
    topk: int = 100
    scoring: str = "kgcn"
    ndcg: str = "jurity"
    percentiles: tuple = PERCENTILES
    cold_k: int = 100
    mask: str = "train_records"

    def __post_init__(self):
        if self.mask not in EVAL_MASKS:
            raise ValueError(f"EvalConfig.mask={self.mask!r}: expected one of {sorted(EVAL_MASKS)}")


# --------------------------------------------------------------------------------------------
# Inputs: datasets, splits, text, pairs
# --------------------------------------------------------------------------------------------
def open_dataset(name: str, data_dir: str | os.PathLike | None = None, **options):
    """A :class:`~kgcl_lib.data.KGDataset` by name.

    ``"synthetic-<preset>"`` builds :func:`kgcl_lib.data.synthetic.make_synthetic` data (offline,
    used by the smoke profile); anything else goes to :func:`kgcl_lib.data.load_dataset`.
    ``options`` are passed through (e.g. ``seed`` for synthetic data).
    """
    if name.startswith("synthetic"):
        from .data.synthetic import SyntheticShape, make_synthetic

        options = dict(options)
        shape = options.pop("shape", None)  # a literal mapping of SyntheticShape fields (profiles)
        shape = SyntheticShape(**shape) if isinstance(shape, dict) else (name.split("-", 1)[1] if "-" in name else "tiny")
        ds = make_synthetic(shape, **options)
        return ds if ds.name == name else dataclasses.replace(ds, name=name)
    from .data import load_dataset

    return load_dataset(name, data_dir=data_dir, **options)


def make_split(ds, seed: int):
    """The seeded 6:2:2 split every run of ``seed`` uses (so the inspector can rebuild it)."""
    from .data import split_ratings

    return split_ratings(ds.ratings, np.random.default_rng(seed))


def _dataset_key(ds) -> str:
    """Content checksum of a dataset's arrays (cache key for text/pairs files)."""
    h = hashlib.sha256()
    for arr in (ds.ratings, ds.kg):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(pd.util.hash_pandas_object(ds.items[["raw_id", "title", "synopsis"]].astype(str), index=False)
             .to_numpy().tobytes())
    return h.hexdigest()[:12]


def text_embeddings(results_dir, ds, source: str = "with", model: str | None = None, force: bool = False,
                    synopses: pd.Series | None = None, text_fallback: str = "metadata"):
    """The item text embeddings of the ``source`` arm (``"with"`` the dataset's text / ``"llm"``), cached.

    Stored as ``<results_dir>/text/<dataset>__<source>.npz`` (vectors, has_text, model,
    provenance) keyed by the dataset checksum, the requested model and the text source.
    ``synopses`` replaces ``ds.items.synopsis`` (the LLM texts of Table 5). Without synopses the
    ``"with"`` arm uses the *metadata substitute* (verbalised title + genres) when
    ``text_fallback="metadata"`` — said once, and recorded as ``provenance["text_source"] =
    "metadata"`` — or no text (``"none"``). Returns a :class:`kgcl_lib.text.encode.TextEmbeddings`.
    """
    from .text.encode import TextEmbeddings, item_text_embeddings

    src = "llm" if synopses is not None else text_source(ds, source, text_fallback)
    path = Path(results_dir) / "text" / f"{ds.name}__{source}.npz"
    key = f"{_dataset_key(ds)}:{model}:{source}:{src}"
    if path.exists() and not force:
        z = np.load(path, allow_pickle=False)
        if str(z["key"]) == key:
            return TextEmbeddings(vectors=z["vectors"], has_text=z["has_text"], model=str(z["model"]),
                                  provenance=json.loads(str(z["provenance"])))
    if synopses is None:
        if src == "metadata":
            from .data.registry import say_once

            say_once(f"{ds.name}: no synopses; the 'with semantic text' runs use the metadata substitute "
                     f"(verbalised title + genres), labelled '{TEXT_SOURCES['metadata']}' in every table")
            ds = with_substitute_text(ds)
    else:
        items = ds.items.copy()
        items["synopsis"] = synopses.reindex(items.index).astype("object")
        ds = dataclasses.replace(ds, items=items)
    kwargs = {"model": model} if model else {}
    emb = item_text_embeddings(ds, **kwargs)
    emb.provenance["text_source"] = src
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, vectors=emb.vectors, has_text=emb.has_text, model=np.array(emb.model),
                     provenance=np.array(json.dumps(emb.provenance, default=str)), key=np.array(key))
    return emb


def content_pairs(results_dir, ds, template: str, n: int = 10, force: bool = False, **options):
    """Content–content pairs of ``template`` (``"genre"`` / ``"title_genre"``), cached.

    Stored as ``<results_dir>/pairs/<dataset>__<template>.parquet`` with the provenance in the
    parquet metadata, keyed by the dataset checksum, template, ``n`` and ``options``. Returns a
    :class:`kgcl_lib.pairs.ContentPairs`.
    """
    from .pairs import ContentPairs, build_pairs

    path = Path(results_dir) / "pairs" / f"{ds.name}__{template}.parquet"
    options.setdefault("domain", _domain(ds.name))
    key = json.dumps({"ds": _dataset_key(ds), "template": template, "n": n, **options}, sort_keys=True, default=str)
    if path.exists() and not force:
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        meta = t.schema.metadata or {}
        if meta.get(b"kgcl_key", b"").decode() == key:
            prov = json.loads(meta[b"kgcl_provenance"].decode())
            return ContentPairs(table=t.to_pandas(), provenance=prov)
    from .data import DatasetError

    try:
        pairs = build_pairs(ds, template=template, n=n, **options)
    except DatasetError as exc:  # too little metadata (Book-Crossing offline): KG-attribute pairs
        print(f"[kgcl] {ds.name}/{template}: {exc}; falling back to sampler='kg'")
        pairs = build_pairs(ds, template=template, n=n, **{**options, "sampler": "kg"})
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(pairs.table, preserve_index=False)
    t = t.replace_schema_metadata({**(t.schema.metadata or {}), b"kgcl_key": key.encode(),
                                   b"kgcl_provenance": json.dumps(pairs.provenance, default=str).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(t, tmp)
    return pairs


# --------------------------------------------------------------------------------------------
# Training and evaluation of one run
# --------------------------------------------------------------------------------------------
def train_config(spec: RunSpec, ds_name: str, *, text_model: str | None = None, pair_n: int = 10,
                 threads: int | None = None, text_source: str | None = None):
    """The exact ``TrainConfig`` of ``spec``: the paper's settings for the dataset
    (:func:`kgcl_lib.train.paper_settings`; the trainer's defaults for synthetic data), then the
    spec's variant/text/seed/γ, then its overrides. ``text_source="none"`` (a dataset without
    any text) trains without text vectors whatever the arm."""
    from .train import TrainConfig, kgcn_settings, paper_settings

    settings = kgcn_settings if spec.variant == "kgcn_original" else paper_settings
    try:
        kw = dict(settings(ds_name))
    except ValueError:  # synthetic / unknown datasets: the TrainConfig defaults
        kw = {"aggregator": "sum"} if spec.variant == "kgcn_original" else {}
    variant = "base" if spec.variant == "kgcn_original" else spec.variant
    no_text = spec.text == "without" or text_source == "none"
    kw.update(dataset=ds_name, variant=variant, text="none" if no_text else "synopsis",
              seed=int(spec.seed), text_model=text_model, n_pairs=int(pair_n))
    if threads is not None:
        kw["threads"] = int(threads)
    if spec.gamma is not None:
        kw["gamma"] = float(spec.gamma)
    kw.update(dict(spec.overrides))
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(kw) - fields)
    if unknown:
        raise ValueError(f"{spec.run_id}: TrainConfig has no field(s) {unknown}; fields are {sorted(fields)}")
    return TrainConfig(**kw)


def test_users_and_truth(split, n_users: int, n_items: int, mask: str = "train_records"):
    """Test users (≥ 1 positive test row), their ground truth and the items to exclude.

    Returns ``(users int64[n], truth csr[n, n_items] (row i = users[i]'s test positives),
    exclude csr[n_users, n_items] (masked before ranking))``.  ``mask`` (see
    :class:`EvalConfig`): ``"train_records"`` excludes every item of the user's training rows,
    labels 0 and 1 (KGCN's ``topk_eval``); ``"train_valid_positives"`` the train and valid
    positives.
    """
    if mask not in EVAL_MASKS:
        raise ValueError(f"mask={mask!r}: expected one of {sorted(EVAL_MASKS)}")
    import scipy.sparse as sp

    from .metrics import truth_matrix

    pos = split.test[split.test[:, 2] == 1, :2]
    users = np.unique(pos[:, 0])
    truth = truth_matrix(np.searchsorted(users, pos[:, 0]), pos[:, 1], len(users), n_items)
    if mask == "train_records":
        seen = np.asarray(split.train)
    else:
        seen = np.concatenate([split.train, split.valid])
        seen = seen[seen[:, 2] == 1]
    exclude = sp.csr_matrix((np.ones(len(seen)), (seen[:, 0], seen[:, 1])), shape=(n_users, n_items))
    return users, truth, exclude


def evaluate(ds, split, model, ev: EvalConfig, align_pairs: np.ndarray | None = None) -> tuple[dict, dict]:
    """All metrics of one trained model; returns ``(metrics, arrays)``.

    Test AUC/F1 come from the trainer (:class:`kgcl_lib.train.TrainResult`); this adds the
    top-K, diversity, embedding-quality and cold-start metrics. ``arrays`` holds ``topk``,
    ``test_users``, ``content_emb`` and the per-user ``user_ndcg`` / ``user_recall``
    (``[n_test_users, len(user_metric_ks)]``) and ``user_activity`` for the store. ``align_pairs`` (``int64[p, 2]`` positive
    content pairs) are the pairs ℓ_align is measured on.
    """
    import torch

    from . import metrics as M
    from .data import user_train_counts
    from .scoring import topk

    out: dict[str, Any] = {}

    users, truth, exclude = test_users_and_truth(split, ds.n_users, ds.n_items, ev.mask)
    out["eval_mask"] = ev.mask
    model.eval()
    top = topk(model.cpu(), users, ev.topk, exclude, mode=ev.scoring).numpy().astype(np.int64)
    rk = M.ranking_metrics(top, truth, ks=ev.ks, ndcg=ev.ndcg)
    out.update({k: float(v) for k, v in rk.items() if k.startswith(("recall@", "ndcg@"))})
    out["n_test_users"] = int(rk["n_users"])
    with torch.no_grad():
        emb = model.content_embeddings().detach().numpy().astype(np.float32)
    k = ev.diversity_k
    out[f"inter@{k}"] = float(M.inter_list_diversity(top, ds.n_items, k=k))
    out[f"intra@{k}"] = float(M.intra_list_diversity(top, emb, k=k))
    out["alignment"] = float(M.alignment(emb[align_pairs[:, 0]], emb[align_pairs[:, 1]])) \
        if align_pairs is not None and len(align_pairs) else float("nan")
    out["uniformity"] = float(M.uniformity(emb))
    activity = user_train_counts(split.train, ds.n_users)[users]
    cold = M.cold_start_ndcg(top, truth, activity, k=ev.cold_k, percentiles=ev.percentiles, ndcg=ev.ndcg)
    for p, v in zip(cold["percentile"], cold[f"ndcg@{ev.cold_k}"]):
        out[f"cold_ndcg@{ev.cold_k}_p{p:g}"] = float(v)
    out["ndcg_convention"] = ev.ndcg
    # Per-user numbers for kgcl_lib.claims (bootstrap over users within seeds): columns follow
    # user_metric_ks; activity = training positives of each test user (the cold-start axis).
    ks_user = np.array(sorted({*ev.ks, ev.cold_k}), dtype=np.int64)
    per = M.ranking_per_user(top, truth, ks=ks_user.tolist(), ndcg=ev.ndcg)
    return out, {"topk": top, "test_users": users.astype(np.int64), "content_emb": emb,
                 "user_metric_ks": ks_user, "user_activity": activity.astype(np.int64),
                 "user_ndcg": np.stack([per[f"ndcg@{k}"] for k in ks_user], axis=1),
                 "user_recall": np.stack([per[f"recall@{k}"] for k in ks_user], axis=1)}


def run_dir(results_dir, spec: RunSpec) -> Path:
    return Path(results_dir) / "runs" / spec.run_id


#: Written last into a run folder: ``{"run_id", "config_key", "finished_at"}``. Only a folder
#: holding it (with the expected key) counts as a finished run.
COMPLETE_MARKER = "complete.json"
#: Suffix of the hidden staging folder a run is written into
#: (``runs/.<run_id>.<host>-<pid>.<random>.tmp``, :func:`kgcl_lib.storage.atomic_dir`).
PARTIAL_SUFFIX = ".tmp"


def resolve_device_type(device: str) -> str:
    """``"cuda"`` or ``"cpu"``: what ``TrainConfig.device`` resolves to in this process."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device).split(":", 1)[0]


def config_key(cfg, ev: EvalConfig, device_type: str | None = None, text_source: str | None = None) -> str:
    """Hash of everything that changes a run's numbers: the TrainConfig, the evaluation settings,
    the effective torch thread count, the device type (``"cpu"`` / ``"cuda"``) and (runs with
    text) the text source — e.g. "with" runs are retrained once synopses replace the metadata
    substitute.

    Threads and device are part of the identity because results made at 1 and 2 threads (or on
    CPU and GPU) differ at ≈1e-6 (floating-point summation order): a run made under other
    settings is stale and retrained rather than mixed into a table. ``cfg.threads == 0`` (torch's
    default) counts as the current ``torch.get_num_threads()``; ``device_type`` defaults to what
    ``cfg.device`` resolves to here (:func:`resolve_device_type`) — pass it when the run executes
    elsewhere (a Ray worker with a GPU).
    """
    import torch

    d = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("threads", "device")}
    d["threads"] = int(cfg.threads) if cfg.threads else int(torch.get_num_threads())
    d["device_type"] = device_type or resolve_device_type(cfg.device)
    parts = [d, dataclasses.asdict(ev)] + ([{"text_source": text_source}] if text_source not in (None, "none") else [])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_finished(results_dir, spec: RunSpec, key: str | None = None) -> bool:
    """The run folder holds :data:`COMPLETE_MARKER` (and, with ``key``, the marker's
    ``config_key`` equals it). Folders from before the marker existed count as unfinished."""
    marker = run_dir(results_dir, spec) / COMPLETE_MARKER
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return key is None or data.get("config_key") == key


@dataclass(frozen=True)
class RunInputs:
    """Everything :func:`execute_run` needs besides the spec; picklable, so a run can execute in
    another process (a Ray worker) that opens the dataset and reads text/pairs from the stored
    caches under ``results_dir``."""

    data_dir: str | None = None
    dataset_options: dict | None = None
    text_model: str | None = None
    pair_n: int = 10
    ev: EvalConfig = EvalConfig()
    threads: int | None = None
    text_fallback: str = "metadata"


#: Per-process memo of the last opened dataset and its text/pairs (a Ray worker reuses it
#: across the tasks it runs; one dataset at a time bounds the memory).
_OPENED: dict = {}


_DATASET: dict = {}


def _dataset_for(name: str, inputs: RunInputs):
    """The dataset ``name`` as ``inputs`` opens it, memoised per process (the last one only)."""
    memo_key = (name, inputs.data_dir, json.dumps(inputs.dataset_options or {}, sort_keys=True, default=str))
    if _DATASET.get("key") != memo_key:
        _DATASET.clear()
        _DATASET.update(key=memo_key, ds=open_dataset(name, inputs.data_dir, **(inputs.dataset_options or {}).get(name, {})))
    return _DATASET["ds"]


def _opened_inputs(results_dir, name: str, inputs: RunInputs):
    """``(ds, text_for, pairs_for)`` for dataset ``name``, memoised per process."""
    ds = _dataset_for(name, inputs)
    memo_key = (str(results_dir), id(ds), inputs.text_model, inputs.pair_n, inputs.text_fallback)
    if _OPENED.get("key") != memo_key:
        _OPENED.clear()
        _OPENED.update(key=memo_key, cache={})
    cache = _OPENED["cache"]

    def text_for(kind):
        if kind == "without" or text_source(ds, kind, inputs.text_fallback) == "none":
            return None
        if kind not in cache:
            if kind == "llm":
                cache[kind] = text_embeddings(results_dir, ds, "llm", inputs.text_model,
                                              synopses=llm_synopses(results_dir, ds))
            else:
                cache[kind] = text_embeddings(results_dir, ds, "with", inputs.text_model,
                                              text_fallback=inputs.text_fallback)
        return cache[kind]

    def pairs_for(template):
        if template is None:
            return None
        if ("pairs", template) not in cache:
            cache[("pairs", template)] = content_pairs(results_dir, ds, template, inputs.pair_n)
        return cache[("pairs", template)]

    return ds, text_for, pairs_for


def prepare_inputs(specs: Iterable[RunSpec], results_dir, inputs: RunInputs) -> None:
    """Build (or check) the stored text embeddings and content pairs ``specs`` need, once, so that
    parallel runs only read them (no two workers build the same cache file)."""
    by_ds: dict[str, set] = {}
    for s in specs:
        by_ds.setdefault(s.dataset, set()).add(s)
    for name, group in by_ds.items():
        _, text_for, pairs_for = _opened_inputs(results_dir, name, inputs)
        pairs_for("title_genre")  # ℓ_align of every run
        for s in group:
            pairs_for(VARIANT_TEMPLATE[s.variant])
            text_for(s.text)


def execute_run(spec: RunSpec, results_dir, inputs: RunInputs = RunInputs(), *,
                device_type: str | None = None) -> dict:
    """Train and evaluate one run and write its folder atomically; return a small summary.

    Self-contained (the executors call it in this process or in a Ray worker): the dataset is
    opened by name and the text embeddings / content pairs come from the stored caches under
    ``results_dir`` (built on first use). Files are written into a hidden sibling folder
    (:func:`kgcl_lib.storage.atomic_dir`), :data:`COMPLETE_MARKER` (with the config key) last, and
    the folder is then renamed onto ``runs/<run_id>``, replacing a previous complete run as a
    whole. An interrupted run (Ctrl-C, SIGKILL, a lost worker) therefore leaves the previous
    complete run — or none — in place; its staging folder is removed on exception, or, after a
    SIGKILL, by the next attempt at the same run on that host.

    Returns ``{"run_id", "config_key", "test_auc", "train_seconds", "eval_seconds", "threads",
    "device", "pid", "host"}``.
    """
    import socket

    import torch

    from .train import train

    ds, text_for, pairs_for = _opened_inputs(results_dir, spec.dataset, inputs)
    source = text_source(ds, spec.text, inputs.text_fallback)
    cfg = train_config(spec, ds.name, text_model=inputs.text_model, pair_n=inputs.pair_n, threads=inputs.threads,
                       text_source=source)
    key = config_key(cfg, inputs.ev, device_type, source)
    # atomic_dir: written into a hidden sibling, renamed onto runs/<run_id> when the block ends;
    # removed on exception; a SIGKILLed writer's staging folder is deleted by the next attempt.
    with atomic_dir(run_dir(results_dir, spec)) as tmp:
        split = make_split(ds, spec.seed)
        pairs, text = pairs_for(VARIANT_TEMPLATE[spec.variant]), text_for(spec.text)
        t0 = time.perf_counter()
        result = train(ds, split, cfg, pairs=pairs, text=text, progress=False)
        t_train = time.perf_counter() - t0
        # ℓ_align on the title+genre positives; datasets without metadata (Book-Crossing
        # offline) get KG-attribute pairs from content_pairs' fallback instead.
        align = _positive_pairs(pairs_for("title_genre"))
        metrics, arrays = evaluate(ds, split, result.model, inputs.ev, align)
        metrics = {"test_auc": float(result.test_auc), "test_f1": float(result.test_f1),
                   "valid_auc": float(result.valid_auc), "best_epoch": int(result.best_epoch), **metrics}
        device = str(result.info.get("device", resolve_device_type(cfg.device)))
        config = {
            "run_id": spec.run_id, "config_key": key, "spec": spec.key(),
            "train_config": _jsonable(dataclasses.asdict(cfg)),
            "text_source": source,
            "synopses": None if text is None else synopsis_source(ds, source) if spec.text == "with" else "LLM-generated",
            "eval": _jsonable(dataclasses.asdict(inputs.ev)), "scoring": inputs.ev.scoring,
            "text_model": getattr(text, "model", None),
            "text_provenance": getattr(text, "provenance", None),
            "pairs_provenance": getattr(pairs, "provenance", None),
            "n_pairs": None if pairs is None else int(len(pairs.table)),
            "dataset": {"name": ds.name, "key": _dataset_key(ds), "stats": ds.stats(), "provenance": ds.provenance},
            "train_seconds": round(t_train, 2), "eval_seconds": round(time.perf_counter() - t0 - t_train, 2),
            "threads": torch.get_num_threads(), "device": device,
        }
        write_json(tmp / "config.json", config)
        for name, arr in arrays.items():
            _save_npy(tmp / f"{name}.npy", arr)
        write_json(tmp / "metrics.json", metrics)
        write_json(tmp / COMPLETE_MARKER, {"run_id": spec.run_id, "config_key": key,
                                           "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return {"run_id": spec.run_id, "config_key": key, "test_auc": metrics["test_auc"],
            "train_seconds": config["train_seconds"], "eval_seconds": config["eval_seconds"],
            "threads": config["threads"], "device": device, "pid": os.getpid(), "host": socket.gethostname()}


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr)


def expected_keys(specs: Sequence[RunSpec], inputs: RunInputs, device_type: str | None = None) -> dict:
    """``{spec: config_key}`` the runs of ``specs`` would get (what :func:`is_finished` compares)."""
    out = {}
    for s in specs:
        source = text_source(_dataset_for(s.dataset, inputs), s.text, inputs.text_fallback)
        cfg = train_config(s, s.dataset, text_model=inputs.text_model, pair_n=inputs.pair_n, threads=inputs.threads,
                           text_source=source)
        out[s] = config_key(cfg, inputs.ev, device_type, source)
    return out


def text_source(ds, arm: str = "with", text_fallback: str = "metadata") -> str:
    """Where the text of arm ``arm`` comes from on ``ds``: a key of :data:`~kgcl_lib.constants.TEXT_SOURCES`.

    ``"without"`` → ``"none"``; ``"llm"`` → ``"llm"``; ``"with"`` → the dataset's synopses
    (``ds.provenance["text_source"]``, set by :func:`kgcl_lib.data.load_dataset`: ``human``,
    ``tmdb``, ``wikipedia``, …; synthetic data: ``synthetic``), else — items have a title and
    genres to verbalise and ``text_fallback="metadata"`` — the metadata substitute, else ``"none"``.
    """
    if arm == "without":
        return "none"
    if arm == "llm":
        return "llm"
    if ds.items["synopsis"].notna().any():
        src = ds.provenance.get("text_source")
        if src in TEXT_SOURCES and src != "none":
            return src
        return "synthetic" if str(ds.name).startswith("synthetic") else "human"
    if text_fallback == "metadata" and ds.items["title"].notna().any():
        from .pairs.templates import verbalize

        if verbalize(ds, "title_genre", domain=_domain(ds.name)).notna().any():  # titles alone verbalise to nothing
            return "metadata"
    return "none"


def _templates_collapse(ds, pair_n: int) -> bool:
    """Both CL templates fall back to the same KG-attribute pairs: too few items (< 2n+1) have
    the metadata either template needs (the rule of :func:`kgcl_lib.pairs.build_pairs`)."""
    from .pairs.templates import verbalize

    need = 2 * int(pair_n) + 1
    return all(int(verbalize(ds, t, _domain(ds.name)).notna().sum()) < need for t in ("genre", "title_genre"))


def plan_grid(specs: Sequence[RunSpec], ds, *, pair_n: int = 10, text_fallback: str = "metadata") -> dict:
    """Map every spec of dataset ``ds`` to the configuration it really trains.

    Two specs are the same configuration when they differ only in what ``ds`` cannot supply:
    the text arm when the ``"with"`` text source is ``"none"``, and the CL template when both
    templates fall back to KG-attribute pairs. Per group, the *canonical* spec (the one whose
    arm is the effective one, earliest variant) is trained; the others are "n/a".

    Returns: ``{spec: (canonical spec, reason or None, detail or None)}``; ``reason`` is the
    short text of the table cell ("no text", "same KG pairs").

    Raises: ``ValueError`` when a spec pins a ``text_source`` the dataset does not have.
    """
    from .constants import VARIANT_LABELS

    src_with = text_source(ds, "with", text_fallback)
    collapse = _templates_collapse(ds, pair_n)
    groups: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        if s.text == "with" and s.text_source is not None and s.text_source != src_with:
            raise ValueError(f"{s.run_id}: pinned text_source {s.text_source!r}, but {ds.name}'s text is {src_with!r} "
                             f"({TEXT_SOURCES.get(src_with)}); fetch the text or drop the pin")
        eff_text = "without" if s.text == "with" and src_with == "none" else s.text
        template = VARIANT_TEMPLATE[s.variant]
        eff_pairs = "kg" if template and collapse else template
        settings = s.variant if s.variant in NO_TEXT_VARIANTS else "paper"  # kgcn_original: other hyper-parameters
        groups.setdefault((eff_text, eff_pairs, settings, s.seed, s.gamma, s.overrides), []).append(s)
    plan = {}
    for (eff_text, eff_pairs, *_), members in groups.items():
        canon = min(members, key=lambda s: (s.text != eff_text, VARIANTS.index(s.variant)))
        for s in members:
            if s == canon:
                plan[s] = (s, None, None)
                continue
            if s.text != canon.text:
                reason = "no text"
                detail = (f"{ds.name} has no synopses, titles or genres: 'with semantic text' trains exactly "
                          f"'without' ({canon.run_id})")
            else:
                reason = "same KG pairs"
                detail = (f"{ds.name}: too few items with genres/titles for {VARIANT_LABELS[s.variant]}; both CL "
                          f"templates use the same KG-attribute pairs, trained once as {canon.run_id} (+CL KG attributes)")
            plan[s] = (canon, reason, detail)
    return plan


def _mark(results_dir, spec: RunSpec, canon: RunSpec, reason: str | None, detail: str | None, ds_key: str) -> None:
    """Write (or remove, when the cell is applicable again) ``spec``'s not-applicable marker."""
    path = run_dir(results_dir, spec) / NOT_APPLICABLE
    if reason is None:
        if path.exists():
            path.unlink()
        return
    write_json(path, {"run_id": spec.run_id, "spec": spec.key(), "reason": reason, "detail": detail,
                      "same_as": canon.run_id, "dataset_key": ds_key})


def run_grid(specs: Iterable[RunSpec], results_dir, *, data_dir=None, dataset_options: dict | None = None,
             text_model: str | None = None, pair_n: int = 10, ev: EvalConfig = EvalConfig(),
             force: bool = False, threads: int | None = None, progress: bool = True,
             executor: str = "local", ray_address: str | None = None,
             resources_per_run: dict | None = None, text_fallback: str = "metadata") -> pd.DataFrame:
    """Train and evaluate every distinct configuration among ``specs`` that is not finished yet;
    return :func:`load_results` of ``specs`` (cells that copy another configuration come back
    with ``na_reason`` set, see :func:`plan_grid`).

    Args:
        specs: the runs (duplicates are run once).
        results_dir: the profile's results folder (``runs/<profile>/``).
        data_dir: passed to :func:`open_dataset` (default: ``$KGCL_DATA_DIR``).
        dataset_options: ``{dataset: {option: value}}`` for :func:`open_dataset`.
        text_model: text encoder requested for the ``"with"`` embeddings (default: the
            library's choice; the model actually used is recorded).
        pair_n: pairs per anchor for the contrastive variants.
        ev: evaluation settings.
        force: retrain finished runs too.
        threads: torch threads of every run (``TrainConfig.threads``; default: its default, 1),
            with either executor — part of the run identity (:func:`config_key`).
        executor: ``"local"`` (this process, one run after another) or ``"ray"`` (one Ray task
            per run; :mod:`kgcl_lib.executors`).
        ray_address: ``None`` (start a local Ray instance), ``"auto"`` or ``"HOST:PORT"``.
        resources_per_run: Ray resources of each task, e.g. ``{"num_cpus": 2, "num_gpus": 0.5}``.
        text_fallback: ``"metadata"`` (default): datasets without synopses use the verbalised
            title + genres as the "with" text, labelled as such; ``"none"``: no text, so the
            "with" cells become n/a.

    A run counts as finished when its folder holds the completion marker with the config key
    this call would give it (:func:`is_finished`, :func:`config_key`).
    """
    from .executors import get_executor

    specs = list(dict.fromkeys(specs))
    inputs = RunInputs(data_dir=None if data_dir is None else str(data_dir), dataset_options=dataset_options,
                       text_model=text_model, pair_n=int(pair_n), ev=ev, threads=threads, text_fallback=text_fallback)
    by_ds: dict[str, list[RunSpec]] = {}
    for s in specs:
        by_ds.setdefault(s.dataset, []).append(s)
    canonical: list[RunSpec] = []
    for name, group in by_ds.items():
        ds = _dataset_for(name, inputs)
        plan = plan_grid(group, ds, pair_n=pair_n, text_fallback=text_fallback)
        ds_key = _dataset_key(ds)
        for s, (canon, reason, detail) in plan.items():
            _mark(results_dir, s, canon, reason, detail, ds_key)
        canonical += list(dict.fromkeys(c for c, _, _ in plan.values()))
    get_executor(executor, ray_address=ray_address, resources_per_run=resources_per_run).run(
        canonical, results_dir, inputs, force=force, progress=progress)
    return load_results(results_dir, specs)


def _positive_pairs(pairs) -> np.ndarray | None:
    if pairs is None:
        return None
    t = pairs.table
    return t.loc[t["label"] == 1, ["anchor", "other"]].to_numpy(dtype=np.int64)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def llm_synopses_path(results_dir, ds_name: str) -> Path:
    """Where notebook 10 looks for LLM-generated synopses: ``<results_dir>/text/<ds>__llm.tsv``."""
    return Path(results_dir) / "text" / f"{ds_name}__llm.tsv"


def llm_synopses(results_dir, ds) -> pd.Series:
    """The stored LLM synopses of ``ds`` as a Series indexed by item; raise if there are none."""
    path = llm_synopses_path(results_dir, ds.name)
    if not path.exists():
        raise FileNotFoundError(f"no LLM synopses for {ds.name}: {path} is missing (see notebook 10)")
    df = pd.read_csv(path, sep="\t", dtype={"item": "int64", "synopsis": "string"})
    return df.set_index("item")["synopsis"]


# --------------------------------------------------------------------------------------------
# Reading the store
# --------------------------------------------------------------------------------------------
def load_results(results_dir, specs: Iterable[RunSpec] | None = None) -> pd.DataFrame:
    """One row per finished run or n/a cell: ``run_id, dataset, variant, text, text_source, seed,
    gamma, na_reason`` + every metric.

    ``gamma`` is the effective value (from the saved ``TrainConfig``); ``scoring`` and
    ``text_model`` are copied from ``config.json``; ``text_source`` is where the run's text came
    from (:data:`~kgcl_lib.constants.TEXT_SOURCES`). A CL run whose pairs are KG attributes
    reads ``variant = "cl_kg"`` (``spec_variant`` keeps the requested one). Cells that copy
    another configuration (:func:`plan_grid`) have ``na_reason`` (e.g. ``"no text"``),
    ``same_as`` (the run that was trained) and NaN metrics. With ``specs`` only those are read.
    """
    root = Path(results_dir) / "runs"
    dirs = [root / s.run_id for s in specs] if specs is not None else \
        sorted(d for d in root.glob("*") if not d.name.startswith(".")) if root.exists() else []  # skip partials
    rows = []
    for d in dirs:
        if (d / NOT_APPLICABLE).exists():
            na = json.loads((d / NOT_APPLICABLE).read_text())
            spec = na["spec"]
            rows.append({"run_id": na["run_id"], "dataset": spec["dataset"], "variant": spec["variant"],
                         "spec_variant": spec["variant"], "text": spec["text"], "text_source": None,
                         "seed": spec["seed"], "gamma": spec["gamma"], "gamma_set": spec["gamma"] is not None,
                         "overrides": json.dumps(spec["overrides"]), "na_reason": na["reason"],
                         "na_detail": na.get("detail"), "same_as": na.get("same_as")})
            continue
        if not (d / "metrics.json").exists():
            continue
        cfg = json.loads((d / "config.json").read_text())
        met = json.loads((d / "metrics.json").read_text())
        spec = cfg["spec"]
        prov = cfg.get("pairs_provenance") or {}
        kg_pairs = isinstance(prov, dict) and prov.get("sampler") == "kg"
        src = cfg.get("text_source") or ("none" if spec["text"] == "without" else "llm" if spec["text"] == "llm" else None)
        rows.append({"run_id": cfg["run_id"], "dataset": spec["dataset"],
                     "variant": "cl_kg" if kg_pairs else spec["variant"], "spec_variant": spec["variant"],
                     "text": spec["text"], "text_source": src, "seed": spec["seed"],
                     "gamma": cfg["train_config"].get("gamma", spec["gamma"]),
                     "gamma_set": spec["gamma"] is not None, "overrides": json.dumps(spec["overrides"]),
                     "na_reason": None, "na_detail": None, "same_as": None,
                     "scoring": cfg.get("scoring"), "text_model": cfg.get("text_model"), "synopses": cfg.get("synopses"),
                     "pairs": pairs_source(spec["dataset"], cfg.get("pairs_provenance")),
                     "train_seconds": cfg.get("train_seconds"), **met})
    cols = ["run_id", "dataset", "variant", "spec_variant", "text", "text_source", "seed", "gamma", "gamma_set",
            "overrides", "na_reason", "scoring", "text_model", "train_seconds"]
    return pd.DataFrame(rows, columns=None if rows else cols)


def trained(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` that are trained runs (drops the n/a cells of :func:`load_results`)."""
    return df[df["na_reason"].isna()] if "na_reason" in df.columns else df


def load_run(results_dir, run_id: str) -> dict:
    """A stored run: ``config``, ``metrics`` and the arrays ``topk``, ``test_users``, ``content_emb``."""
    d = Path(results_dir) / "runs" / run_id
    if not (d / "metrics.json").exists():
        raise FileNotFoundError(f"run {run_id} is not finished: {d / 'metrics.json'} missing")
    out = {"config": json.loads((d / "config.json").read_text()), "metrics": json.loads((d / "metrics.json").read_text())}
    for key in ("topk", "test_users", "content_emb"):
        out[key] = np.load(d / f"{key}.npy")
    return out


def summarize(df: pd.DataFrame, metrics: Sequence[str], by: Sequence[str] = ("dataset", "text", "variant")) -> pd.DataFrame:
    """Long frame ``by…, metric, value (mean), std, n`` over seeds, for :func:`report.format_table`."""
    if df.empty:
        return pd.DataFrame(columns=[*by, "metric", "value", "std", "n"])
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        if trained(df).empty:  # only n/a cells: no metric columns at all
            df = df.assign(**{m: np.nan for m in missing})
        else:
            raise ValueError(f"summarize: results have no column(s) {missing}")
    long = df.melt(id_vars=list(by), value_vars=list(metrics), var_name="metric", value_name="v")
    g = long.groupby([*by, "metric"], sort=False)["v"]
    out = g.agg(value="mean", std="std", n="count").reset_index()
    return out


def ttests(df: pd.DataFrame, metrics: Sequence[str], baseline: tuple = ("without", "base"),
           test: str = "welch") -> pd.DataFrame:
    """Per dataset, a t-test of every (text, variant)'s seeds against the baseline's seeds.

    Uses :func:`kgcl_lib.metrics.ttest_vs_baseline` (Welch by default). Returns long
    ``dataset, text, variant, metric, p_value`` (NaN for the baseline itself, for groups
    with fewer than two seeds, and for configurations identical to the baseline). n/a cells
    (:func:`load_results`' ``na_reason``) are not tested: they are copies of another cell.
    """
    from .metrics import ttest_vs_baseline

    rows = []
    df = trained(df)
    for ds, g in df.groupby("dataset", sort=False):
        frame = g.assign(variant=g["text"] + "|" + g["variant"])[["variant", "seed", *metrics]]
        base = "|".join(baseline)
        if base not in set(frame["variant"]):
            continue
        res = ttest_vs_baseline(frame, base, metrics, test=test)
        # Never a p-value between identical configurations (the very same values on the same seeds).
        base_vals = frame[frame["variant"] == base].set_index("seed")[list(metrics)].sort_index()
        for key, sub in frame.groupby("variant", sort=False):
            vals = sub.set_index("seed")[list(metrics)].sort_index()
            if key != base and vals.index.equals(base_vals.index) and np.array_equal(vals.to_numpy(), base_vals.to_numpy()):
                res.loc[res["variant"] == key, "p"] = np.nan
        text_variant = res["variant"].str.split("|", n=1, expand=True)
        rows.append(pd.DataFrame({"dataset": ds, "text": text_variant[0], "variant": text_variant[1],
                                  "metric": res["metric"], "p_value": res["p"].astype(float)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["dataset", "text", "variant", "metric", "p_value"])


def cold_start_frame(df: pd.DataFrame, models: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Long ``dataset, model, seed, percentile, value`` of NDCG by activity bucket (Figs 1/5).

    ``models`` maps a legend label to ``(text, variant)``.
    """
    df = trained(df)
    cols = [c for c in df.columns if c.startswith("cold_ndcg@")]
    rows = []
    for label, (text, variant) in models.items():
        sub = df[(df["text"] == text) & (df["variant"] == variant)]
        for c in cols:
            p = float(c.rsplit("_p", 1)[1])
            rows.append(sub[["dataset", "seed"]].assign(model=label, percentile=p, value=sub[c].to_numpy()))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["dataset", "model", "seed",
                                                                                  "percentile", "value"])


def best_model(df: pd.DataFrame, metric: str = "ndcg@100") -> dict[str, tuple[str, str]]:
    """Per dataset, the ``(text, variant)`` with the highest mean ``metric`` (excluding the baseline)."""
    df = trained(df)
    sub = df[~((df["text"] == "without") & (df["variant"] == "base"))]
    means = sub.groupby(["dataset", "text", "variant"])[metric].mean().reset_index()
    return {ds: tuple(g.sort_values(metric).iloc[-1][["text", "variant"]]) for ds, g in means.groupby("dataset")}


# --------------------------------------------------------------------------------------------
# Notebook plumbing: folders, datasets of a profile, manifests
# --------------------------------------------------------------------------------------------
def resolve_dirs(profile: str, results_dir=None, figures_dir=None) -> tuple[Path, Path]:
    """``(results_dir, figures_dir)`` for a notebook: the runner's values, or — interactively —
    ``<runs>/<profile>`` and ``figures/<profile>`` of the checkout (created)."""
    from .runner import REPO_ROOT, results_root

    res = Path(results_dir) if results_dir else results_root(profile)
    fig = Path(figures_dir) if figures_dir else REPO_ROOT / "figures" / profile
    res.mkdir(parents=True, exist_ok=True)
    fig.mkdir(parents=True, exist_ok=True)
    return res, fig


def open_datasets(names: Sequence[str], data_dir=None, options: dict | None = None,
                  results_dir=None) -> tuple[dict, dict]:
    """Open every dataset that is available; ``({name: KGDataset}, {name: reason skipped})``.

    Prints each dataset's semantic-text source (:func:`synopsis_source`) and records it in
    ``datasets.json`` under ``text``.

    A dataset whose files are neither local nor downloadable is skipped with the reason (the
    default profile lists Book-Crossing "when available"). With ``results_dir`` the outcome is
    written to ``<results_dir>/datasets.json`` for later notebooks (:func:`available_datasets`).
    """
    loaded, skipped, texts = {}, {}, {}
    for name in names:
        try:
            loaded[name] = open_dataset(name, data_dir, **(options or {}).get(name, {}))
        except (OSError, ValueError, RuntimeError) as exc:  # missing files / no network
            skipped[name] = f"{type(exc).__name__}: {exc}"
            print(f"[kgcl] skipping dataset {name!r}: {skipped[name]}")
            continue
        texts[name] = {"text_source": text_source(loaded[name], "with"), "text": synopsis_source(loaded[name])}
        print(f"[kgcl] {name}: semantic text = {texts[name]['text']}")
    if results_dir is not None:
        write_json(Path(results_dir) / "datasets.json", {"available": list(loaded), "skipped": skipped, "text": texts})
    return loaded, skipped


def available_datasets(results_dir, names: Sequence[str]) -> list[str]:
    """``names`` minus the datasets notebook 01 recorded as unavailable (all when not run)."""
    path = Path(results_dir) / "datasets.json"
    if not path.exists():
        return list(names)
    skipped = json.loads(path.read_text()).get("skipped", {})
    return [n for n in names if n not in skipped]


def save_manifest(results_dir, name: str, specs: Sequence[RunSpec], **info) -> Path:
    """Record which runs make up a notebook's grid: ``<results_dir>/manifests/<name>.json``.

    Also counts them: ``n_cells`` (specs), ``n_trained`` (distinct configurations trained),
    ``n_not_applicable`` (cells that copy another configuration, with their reasons under
    ``not_applicable``), per dataset under ``counts``.
    """
    specs = list(dict.fromkeys(specs))
    na, counts = {}, {}
    for s in specs:
        c = counts.setdefault(s.dataset, {"n_cells": 0, "n_trained": 0, "n_not_applicable": 0})
        c["n_cells"] += 1
        marker = run_dir(results_dir, s) / NOT_APPLICABLE
        if marker.exists():
            rec = json.loads(marker.read_text())
            na[s.run_id] = {"reason": rec["reason"], "same_as": rec["same_as"]}
            c["n_not_applicable"] += 1
        else:
            c["n_trained"] += 1
    totals = {k: sum(c[k] for c in counts.values()) for k in ("n_cells", "n_trained", "n_not_applicable")}
    return write_json(Path(results_dir) / "manifests" / f"{name}.json",
                      {"runs": [s.key() for s in specs], **totals, "counts": counts, "not_applicable": na, **info})


def load_manifest(results_dir, name: str) -> tuple[pd.DataFrame, dict]:
    """``(load_results of the manifest's runs, the manifest's extra info)``.

    Raises ``FileNotFoundError`` naming the notebook to run first when the manifest is missing.
    """
    path = Path(results_dir) / "manifests" / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the notebook that trains the {name!r} grid first "
                                f"(04_train for 'grid', 09 for 'gamma', 10 for 'llm')")
    data = json.loads(path.read_text())
    specs = [RunSpec(r["dataset"], r["variant"], r["text"], r["seed"], r["gamma"],
                     tuple((k, v) for k, v in r["overrides"]), r.get("text_source")) for r in data.pop("runs")]
    df = load_results(results_dir, specs)
    if len(df) < len(specs):
        print(f"[kgcl] manifest {name!r}: {len(specs) - len(df)} of {len(specs)} runs are not finished")
    return df, data


# --------------------------------------------------------------------------------------------
# Synopses: provenance, substitute, LLM
# --------------------------------------------------------------------------------------------
def synopsis_source(ds, source: str | None = None) -> str:
    """One caption phrase naming where the dataset's semantic text comes from (``source``: a
    :data:`~kgcl_lib.constants.TEXT_SOURCES` key; default :func:`text_source` of the "with" arm)."""
    source = source or text_source(ds, "with")
    n = int(ds.items["synopsis"].notna().sum())
    if source == "metadata":
        from .pairs.templates import verbalize

        m = int(verbalize(ds, "title_genre", domain=_domain(ds.name)).notna().sum())
        return f"no synopses for {ds.name}; {TEXT_SOURCES['metadata']} for {m:,}/{ds.n_items:,} items"
    if source == "none":
        return f"no synopses, titles or genres for {ds.name}: no text"
    return f"{TEXT_SOURCES.get(source, source)} for {n:,}/{ds.n_items:,} items"


def _domain(name: str) -> str:
    """Prompt/verbalisation domain of a dataset; synthetic data reads as movies."""
    from .pairs.templates import infer_domain

    try:
        return infer_domain(name)
    except ValueError:
        return "movie"


def with_substitute_text(ds):
    """``ds`` unchanged when it has synopses; else a copy whose ``synopsis`` column holds the best
    available substitute — the verbalised title + genres (see :func:`synopsis_source`)."""
    if ds.items["synopsis"].notna().any() or not ds.items["title"].notna().any():
        return ds
    from .pairs.templates import verbalize

    items = ds.items.copy()
    items["synopsis"] = verbalize(ds, "title_genre", domain=_domain(ds.name)).reindex(items.index).astype("object")
    return dataclasses.replace(ds, items=items)


def ensure_llm_synopses(results_dir, ds, model: str | None = "auto", *, max_items: int | None = None,
                        force: bool = False, executor: str = "local", ray_address: str | None = None,
                        resources_per_run: dict | None = None, shard_size: int = 256) -> dict:
    """Generate (or reuse) LLM synopses for ``ds`` into :func:`llm_synopses_path`.

    With ``executor="ray"`` the items are generated in shards of ``shard_size`` as Ray tasks
    (:func:`kgcl_lib.executors.generate_synopses_ray`; ``resources_per_run`` per shard), their
    JSONL caches under ``<results_dir>/text/llm-cache/<dataset>/`` merged.

    Returns ``{"ok": bool, "model": str, "n_synopses": int, "message": str}``; ``ok`` is False
    — with the reason — when no LLM is available or the items have no titles, so notebook 10
    can say what is missing and stop cleanly.
    """
    path = llm_synopses_path(results_dir, ds.name)
    meta_path = path.with_suffix(".json")
    want = {"model": model, "max_items": max_items, "dataset": _dataset_key(ds)}
    if path.exists() and meta_path.exists() and not force:
        meta = json.loads(meta_path.read_text())
        if meta.get("request") == want:
            return {"ok": True, **meta["result"]}
    if model in (None, "none"):
        return {"ok": False, "model": None, "n_synopses": 0,
                "message": "LLM generation disabled in this profile (llm_model: none); Table 5 needs LLM synopses"}
    if not ds.items["title"].notna().any():
        return {"ok": False, "model": None, "n_synopses": 0,
                "message": f"{ds.name} has no item titles to prompt an LLM with (metadata not available offline)"}
    try:
        from .text.generate import generate_synopses

        items = ds.items if max_items is None else ds.items.iloc[: int(max_items)]
        if executor == "ray":
            from .executors import generate_synopses_ray

            gen = generate_synopses_ray(items, model, domain=_domain(ds.name), shard_size=shard_size,
                                        cache_dir=Path(results_dir) / "text" / "llm-cache" / ds.name,
                                        address=ray_address, resources=resources_per_run)
        else:
            gen = generate_synopses(items, model, domain=_domain(ds.name), progress=True)
    except (RuntimeError, ImportError, OSError, ValueError) as exc:
        return {"ok": False, "model": None, "n_synopses": 0, "message": f"no LLM synopses: {type(exc).__name__}: {exc}"}
    t = gen.table[gen.table["synopsis"].notna()]
    with atomic_path(path) as tmp:
        pd.DataFrame({"item": t["item"].astype("int64"), "synopsis": t["synopsis"]}).to_csv(tmp, sep="\t", index=False)
    result = {"model": gen.model, "n_synopses": int(len(t)), "n_prompted": int(len(items)),
              "message": f"{len(t)} of {len(items)} prompted items kept"}
    write_json(meta_path, {"request": want, "result": result, "provenance": gen.provenance})
    return {"ok": True, **result}


def pairs_source(dataset: str, provenance: dict | None) -> str | None:
    """One caption phrase naming how a run's CL pairs were made (``None`` for L_base runs)."""
    if not provenance:
        return None
    if provenance.get("sampler") == "kg":
        return f"{dataset}: KG-attribute pairs (Jaccard; no text metadata)"

    def name(entry, default):
        if isinstance(entry, str):  # stored as the repr of a dict by older runs
            import ast

            try:
                entry = ast.literal_eval(entry)
            except (ValueError, SyntaxError):
                return entry
        return (entry or {}).get("name") or default

    bi = name(provenance.get("bi_encoder"), "bi-encoder")
    cross = provenance.get("cross_encoder")
    cross_name = name(cross, None)
    rerank = f"cross-encoder {cross_name}" if cross_name else "no cross-encoder (bi-encoder ranking)"
    return f"{dataset}: pairs from bi-encoder {bi}, {rerank}"


def caption_info(df: pd.DataFrame, info: dict, extra: str = "") -> dict:
    """Keyword arguments for :func:`kgcl_lib.report.caption` from a results frame + manifest info
    (``extra``: a further caption sentence, placed before the CL-pairs sentence)."""
    models = sorted({m for m in df.get("text_model", pd.Series(dtype=object)).dropna()}) if len(df) else []
    syn = sorted({s for s in df.get("synopses", pd.Series(dtype=object)).dropna()}) if len(df) else []
    pairs = sorted({s for s in df.get("pairs", pd.Series(dtype=object)).dropna()}) if len(df) else []
    masks = sorted({s for s in df.get("eval_mask", pd.Series(dtype=object)).dropna()}) if len(df) else []
    mask_text = "; ".join(EVAL_MASKS.get(m, m) for m in masks)
    extra = ". ".join(x for x in (mask_text, extra) if x)
    return {"datasets": sorted(df["dataset"].unique()) if len(df) else [],
            "seeds": info.get("seeds", sorted(df["seed"].unique()) if len(df) else []),
            "scoring": info.get("scoring", "kgcn"),
            "text_model": "; ".join(models) or None, "synopses": "; ".join(syn) or None,
            "extra": ". ".join(x for x in (extra, "CL pairs: " + "; ".join(pairs) if pairs else "") if x)}
