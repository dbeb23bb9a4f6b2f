"""The work handed to an executor (:mod:`kgcl_lib.experiments.executors`): :func:`plan_grid` maps each cell of
the grid to the one configuration it equals (no duplicate runs), :func:`run_grid` trains the
unfinished ones and returns :func:`~kgcl_lib.experiments.store.load_results`;
:func:`ensure_llm_synopses` generates LLM synopses, in this process or in Ray shards.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ..constants import NO_TEXT_VARIANTS, TEXT_SOURCES, VARIANTS, VARIANT_LABELS, VARIANT_TEMPLATE
from ..pairs.templates import verbalize
from ..storage import atomic_path, write_json
from ..text.generate import generate_synopses
from .execute import RunInputs, _dataset_for
from .executors import generate_synopses_ray, get_executor
from .inputs import dataset_key, _domain, llm_synopses_path, resolve_run_text
from .spec import NOT_APPLICABLE, EvalConfig, RunSpec, RunText, run_dir
from .store import load_results


def _templates_collapse(ds, pair_n: int) -> bool:
    """Both CL templates fall back to the same KG-attribute pairs: too few items (< 2n+1) have
    the metadata either template needs (the rule of :func:`kgcl_lib.pairs.build_pairs`)."""
    need = 2 * int(pair_n) + 1
    return all(int(verbalize(ds, t, _domain(ds.name)).notna().sum()) < need for t in ("genre", "title_genre"))


def plan_grid(specs: Sequence[RunSpec], ds, *, pair_n: int = 10, with_text: RunText | None = None) -> dict:
    """Map every spec of dataset ``ds`` to the configuration it really trains.

    Two specs are the same configuration when they differ only in what ``ds`` cannot supply:
    the text arm when the ``"with"`` text source is ``"none"``, the CL template when both
    templates fall back to KG-attribute pairs, and the CL loss itself when there are no pairs at
    all (no KG and no metadata, e.g. a plain dataset with only ratings.csv). Per group, the *canonical* spec (the one whose
    arm is the effective one, earliest variant) is trained; the others are "n/a".

    ``with_text`` is the ``"with"`` arm's :class:`RunText` on ``ds`` (default:
    :func:`resolve_run_text` with the metadata substitute).

    Returns: ``{spec: (canonical spec, reason or None, detail or None)}``; ``reason`` is the
    short text of the table cell ("no text", "same KG pairs", "no content pairs").

    Raises: ``ValueError`` when a spec pins a ``text_source`` the dataset does not have.
    """
    src_with = (with_text or resolve_run_text(ds, "with")).source
    collapse = _templates_collapse(ds, pair_n)
    groups: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        if s.text == "with" and s.text_source is not None and s.text_source != src_with:
            raise ValueError(f"{s.run_id}: pinned text_source {s.text_source!r}, but {ds.name}'s text is {src_with!r} "
                             f"({TEXT_SOURCES.get(src_with)}); fetch the text or drop the pin")
        eff_text = "without" if s.text == "with" and src_with == "none" else s.text
        template = VARIANT_TEMPLATE[s.variant]
        eff_pairs = "kg" if template and collapse else template
        if eff_pairs == "kg" and len(ds.kg) == 0:  # no metadata and no KG: no content pairs, CL is L_base
            eff_pairs = None
        settings = s.variant if s.variant in NO_TEXT_VARIANTS else "paper"  # kgcn_original: other hyper-parameters
        # the backbone too: two backbones with the same overrides (e.g. none) are different models
        groups.setdefault((eff_text, eff_pairs, settings, s.seed, s.gamma, s.overrides, s.backbone), []).append(s)
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
            elif VARIANT_TEMPLATE[canon.variant] is None:
                reason = "no content pairs"
                detail = (f"{ds.name} has no KG and too few items with genres/titles: {VARIANT_LABELS[s.variant]} "
                          f"has no content pairs and trains exactly {canon.run_id}")
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
            per run; :mod:`kgcl_lib.experiments.executors`).
        ray_address: ``None`` (start a local Ray instance), ``"auto"`` or ``"HOST:PORT"``.
        resources_per_run: Ray resources of each task, e.g. ``{"num_cpus": 2, "num_gpus": 0.5}``.
        text_fallback: ``"metadata"`` (default): datasets without synopses use the verbalised
            title + genres as the "with" text, labelled as such; ``"none"``: no text, so the
            "with" cells become n/a.

    A run counts as finished when its folder holds the completion marker with the config key
    this call would give it (:func:`is_finished`, :func:`config_key`).
    """
    specs = list(dict.fromkeys(specs))
    inputs = RunInputs(data_dir=None if data_dir is None else str(data_dir), dataset_options=dataset_options,
                       text_model=text_model, pair_n=int(pair_n), ev=ev, threads=threads, text_fallback=text_fallback)
    by_ds: dict[str, list[RunSpec]] = {}
    for s in specs:
        by_ds.setdefault(s.dataset, []).append(s)
    canonical: list[RunSpec] = []
    texts: list[RunText] = []  # each (dataset, arm)'s text, resolved here once for every run
    for name, group in by_ds.items():
        ds = _dataset_for(name, inputs)
        arms = {arm: resolve_run_text(ds, arm, text_fallback) for arm in dict.fromkeys(["with", *(s.text for s in group)])}
        texts += arms.values()
        plan = plan_grid(group, ds, pair_n=pair_n, with_text=arms["with"])
        ds_key = dataset_key(ds)
        for s, (canon, reason, detail) in plan.items():
            _mark(results_dir, s, canon, reason, detail, ds_key)
        canonical += list(dict.fromkeys(c for c, _, _ in plan.values()))
    inputs = dataclasses.replace(inputs, texts=tuple(texts))
    get_executor(executor, ray_address=ray_address, resources_per_run=resources_per_run).run(
        canonical, results_dir, inputs, force=force, progress=progress)
    return load_results(results_dir, specs)


def ensure_llm_synopses(results_dir, ds, model: str | None = "auto", *, max_items: int | None = None,
                        force: bool = False, executor: str = "local", ray_address: str | None = None,
                        resources_per_run: dict | None = None, shard_size: int = 256) -> dict:
    """Generate (or reuse) LLM synopses for ``ds`` into :func:`llm_synopses_path`.

    With ``executor="ray"`` the items are generated in shards of ``shard_size`` as Ray tasks
    (:func:`kgcl_lib.experiments.executors.generate_synopses_ray`; ``resources_per_run`` per shard), their
    JSONL caches under ``<results_dir>/text/llm-cache/<dataset>/`` merged.

    Returns ``{"ok": bool, "model": str, "n_synopses": int, "message": str}``; ``ok`` is False
    — with the reason — when no LLM is available or the items have no titles, so notebook 10
    can say what is missing and stop cleanly.
    """
    path = llm_synopses_path(results_dir, ds.name)
    meta_path = path.with_suffix(".json")
    want = {"model": model, "max_items": max_items, "dataset": dataset_key(ds)}
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
        items = ds.items if max_items is None else ds.items.iloc[: int(max_items)]
        if executor == "ray":
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
