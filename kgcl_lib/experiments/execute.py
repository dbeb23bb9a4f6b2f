"""Executing one run: :class:`RunInputs` (what a run needs besides its spec; picklable for Ray
workers), :func:`execute_run` (train, evaluate, write the run folder atomically),
:func:`prepare_inputs` and :func:`expected_keys` (what the executors call first).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..constants import VARIANT_TEMPLATE
from ..storage import atomic_dir, save_npy, write_json
from ..train import train
from .evaluation import evaluate, _positive_pairs
from .inputs import (
    content_pairs,
    dataset_key,
    llm_synopses,
    make_split,
    open_dataset,
    resolve_run_text,
    text_embeddings,
)
from ..locks import describe, hold
from .spec import EvalConfig, RunSpec, RunText, config_key, is_finished, mark_complete, resolve_device_type, run_dir, train_config


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
    #: The :class:`RunText` of every (dataset, arm) of the grid, resolved once by
    #: :func:`~kgcl_lib.experiments.grid.run_grid`; an arm missing here is resolved on first use.
    texts: tuple[RunText, ...] = ()


#: Per-process memo of the last opened dataset and its text/pairs (a Ray worker reuses it
#: across the tasks it runs; one dataset at a time bounds the memory).
_OPENED: dict = {}
_DATASET: dict = {}


def forget_opened() -> None:
    """Empty this process's memo of the last opened dataset and its text / pairs (so the next
    run opens them again, e.g. to time an executor from a cold start)."""
    _OPENED.clear()
    _DATASET.clear()


def _dataset_for(name: str, inputs: RunInputs):
    """The dataset ``name`` as ``inputs`` opens it, memoised per process (the last one only)."""
    memo_key = (name, inputs.data_dir, json.dumps(inputs.dataset_options or {}, sort_keys=True, default=str))
    if _DATASET.get("key") != memo_key:
        _DATASET.clear()
        _DATASET.update(key=memo_key, ds=open_dataset(name, inputs.data_dir, **(inputs.dataset_options or {}).get(name, {})))
    return _DATASET["ds"]


def run_text(ds, arm: str, inputs: RunInputs) -> RunText:
    """The :class:`RunText` of arm ``arm`` on ``ds``: the one ``inputs`` carries, else resolved
    (:func:`resolve_run_text` with ``inputs.text_fallback``) once per process and dataset."""
    for t in inputs.texts:
        if (t.dataset, t.arm) == (ds.name, arm):
            return t
    memo = _DATASET.setdefault("texts", {})  # emptied with the dataset memo
    if (arm, inputs.text_fallback) not in memo:
        memo[(arm, inputs.text_fallback)] = resolve_run_text(ds, arm, inputs.text_fallback)
    return memo[(arm, inputs.text_fallback)]


def _opened_inputs(results_dir, name: str, inputs: RunInputs):
    """``(ds, text_for, pairs_for)`` for dataset ``name``, memoised per process."""
    ds = _dataset_for(name, inputs)
    memo_key = (str(results_dir), id(ds), inputs.text_model, inputs.pair_n, inputs.text_fallback)
    if _OPENED.get("key") != memo_key:
        _OPENED.clear()
        _OPENED.update(key=memo_key, cache={})
    cache = _OPENED["cache"]

    def text_for(record: RunText):
        if record.train_text == "none":
            return None
        if record.arm not in cache:
            if record.arm == "llm":
                cache[record.arm] = text_embeddings(results_dir, ds, "llm", inputs.text_model,
                                                    synopses=llm_synopses(results_dir, ds))
            else:
                cache[record.arm] = text_embeddings(results_dir, ds, "with", inputs.text_model,
                                                    text_fallback=inputs.text_fallback)
        return cache[record.arm]

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
        ds, text_for, pairs_for = _opened_inputs(results_dir, name, inputs)
        pairs_for("title_genre")  # ℓ_align of every run
        for s in group:
            pairs_for(VARIANT_TEMPLATE[s.variant])
            text_for(run_text(ds, s.text, inputs))


def execute_run(spec: RunSpec, results_dir, inputs: RunInputs = RunInputs(), *,
                device_type: str | None = None, force: bool = False) -> dict:
    """Train and evaluate one run and write its folder atomically; return a small summary.

    Self-contained (the executors call it in this process or in a Ray worker): the dataset is
    opened by name and the text embeddings / content pairs come from the stored caches under
    ``results_dir`` (built on first use). Files are written into a hidden sibling folder
    (:func:`kgcl_lib.storage.atomic_dir`), :data:`COMPLETE_MARKER` (with the config key) last, and
    the folder is then renamed onto ``runs/<run_id>``, replacing a previous complete run as a
    whole. An interrupted run (Ctrl-C, SIGKILL, a lost worker) therefore leaves the previous
    complete run — or none — in place; its staging folder is removed on exception, or, after a
    SIGKILL, by the next attempt at the same run on that host.

    A run being trained by another process (two runners on one results folder) is waited for
    (its lock ``locks/<run_id>.lock``, :func:`run_lock`), then skipped if that finished it; without
    ``force`` a run found finished once the lock is ours (another process trained it since the
    executor listed it) is skipped too.

    Returns ``{"run_id", "config_key", "test_auc", "train_seconds", "eval_seconds", "threads",
    "device", "pid", "host"}`` (+ ``"skipped"`` when another process trained it).
    """
    ds, text_for, pairs_for = _opened_inputs(results_dir, spec.dataset, inputs)
    record = run_text(ds, spec.text, inputs)
    cfg = train_config(spec, ds.name, text_model=inputs.text_model, pair_n=inputs.pair_n, threads=inputs.threads,
                       run_text=record)
    key = config_key(cfg, inputs.ev, device_type, record.source)
    # One process at a time trains a run (two runners on one results folder): a second one waits
    # for the lock, then finds the run finished and skips it. A dead owner's lock is broken.
    waited = []

    def waiting(owner):
        waited.append(owner)
        print(f"[kgcl] run {spec.run_id} is being trained by {describe(owner)}; waiting for it", flush=True)

    max_age = float(os.environ.get(RUN_LOCK_MAX_AGE_ENV) or 300)
    with hold(run_lock(results_dir, spec), timeout=None, poll=1.0, max_age=max_age, on_wait=waiting):
        if (waited or not force) and is_finished(results_dir, spec, key):
            return _stored_summary(results_dir, spec, key)
        return _train_and_store(spec, results_dir, inputs, ds, text_for, pairs_for, record, cfg, key, device_type)


def _train_and_store(spec, results_dir, inputs, ds, text_for, pairs_for, record: RunText, cfg, key,
                     device_type) -> dict:
    """The body of :func:`execute_run` under the run's lock."""
    # atomic_dir: written into a hidden sibling, renamed onto runs/<run_id> when the block ends;
    # removed on exception; a SIGKILLed writer's staging folder is deleted by the next attempt.
    with atomic_dir(run_dir(results_dir, spec)) as tmp:
        split = make_split(ds, spec.seed)
        pairs, text = pairs_for(VARIANT_TEMPLATE[spec.variant]), text_for(record)
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
        config = _run_record(spec, key, cfg, record, inputs, ds, text, pairs, t_train,
                             time.perf_counter() - t0 - t_train, device)
        write_json(tmp / "config.json", config)
        for name, arr in arrays.items():
            save_npy(tmp / f"{name}.npy", arr)
        write_json(tmp / "metrics.json", metrics)
        mark_complete(tmp, spec.run_id, key)  # last, with the sha256 of every file written above
    return {"run_id": spec.run_id, "config_key": key, "test_auc": metrics["test_auc"],
            "train_seconds": config["train_seconds"], "eval_seconds": config["eval_seconds"],
            "threads": config["threads"], "device": device, "pid": os.getpid(), "host": socket.gethostname()}


#: A run lock of another host not touched for this long (s; its owner touches it every 10 s) is
#: taken for a crashed owner's and broken (on this host: as soon as its owner process is gone).
RUN_LOCK_MAX_AGE_ENV = "KGCL_RUN_LOCK_MAX_AGE"


def run_lock(results_dir, spec: RunSpec) -> Path:
    """``locks/<run_id>.lock`` under the results folder: held while a process trains ``spec``
    (:mod:`kgcl_lib.locks`; outside ``runs/``, which holds run folders and their staging folders only)."""
    return Path(results_dir) / "locks" / f"{spec.run_id}.lock"


def _stored_summary(results_dir, spec: RunSpec, key: str) -> dict:
    """:func:`execute_run`'s summary of a run another process has just trained (``skipped``)."""
    d = run_dir(results_dir, spec)
    cfg, met = json.loads((d / "config.json").read_text()), json.loads((d / "metrics.json").read_text())
    return {"run_id": spec.run_id, "config_key": key, "test_auc": met.get("test_auc"),
            "train_seconds": cfg.get("train_seconds"), "eval_seconds": cfg.get("eval_seconds"),
            "threads": cfg.get("threads"), "device": cfg.get("device"), "pid": os.getpid(),
            "host": socket.gethostname(), "skipped": "trained by another process meanwhile"}


def _run_record(spec: RunSpec, key: str, cfg, record: RunText, inputs: RunInputs, ds, text, pairs,
                train_seconds: float, eval_seconds: float, device: str) -> dict:
    """A run's ``config.json``: spec, exact TrainConfig, evaluation settings, the run's
    :class:`RunText` (``text_source``; ``synopses``: its description when the item nodes got text
    vectors), text / pairs provenance, dataset key and stats, timings (seconds, rounded to 0.01),
    threads and device."""
    import torch

    return {
        "run_id": spec.run_id, "config_key": key, "spec": spec.key(),
        "train_config": _jsonable(cfg.to_dict()),
        "text_source": record.source,
        "synopses": None if text is None else record.description,
        "eval": _jsonable(dataclasses.asdict(inputs.ev)), "scoring": inputs.ev.scoring,
        "text_model": getattr(text, "model", None),
        "text_provenance": getattr(text, "provenance", None),
        "pairs_provenance": getattr(pairs, "provenance", None),
        "n_pairs": None if pairs is None else int(len(pairs.table)),
        "dataset": {"name": ds.name, "key": dataset_key(ds), "stats": ds.stats(), "provenance": ds.provenance},
        "train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2),
        "threads": torch.get_num_threads(), "device": device,
    }


def expected_keys(specs: Sequence[RunSpec], inputs: RunInputs, device_type: str | None = None) -> dict:
    """``{spec: config_key}`` the runs of ``specs`` would get (what :func:`is_finished` compares)."""
    out = {}
    for s in specs:
        record = run_text(_dataset_for(s.dataset, inputs), s.text, inputs)
        cfg = train_config(s, s.dataset, text_model=inputs.text_model, pair_n=inputs.pair_n, threads=inputs.threads,
                           run_text=record)
        out[s] = config_key(cfg, inputs.ev, device_type, record.source)
    return out


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))
