"""Reading the results store: :func:`load_results` flattens ``runs/`` into one DataFrame,
:func:`summarize`, :func:`ttests`, :func:`cold_start_frame` and :func:`best_model` turn it into the
frames :mod:`kgcl_lib.report` renders; notebook plumbing (:func:`resolve_dirs`, manifests,
captions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..metrics import ttest_vs_baseline
from ..storage import REPO_ROOT, results_root, write_json
from ..model import DEFAULT_BACKBONE
from .inputs import kg_caption_notes
from .spec import COMPLETE_MARKER, EVAL_MASKS, NOT_APPLICABLE, RunSpec, run_dir, verify_run


def load_results(results_dir, specs: Iterable[RunSpec] | None = None) -> pd.DataFrame:
    """One row per finished run (complete and verified, :func:`verify_run`) or n/a cell: ``run_id, backbone,
    dataset, variant, text, text_source, seed, gamma, na_reason`` + every metric (``backbone``: ``"kgcn"``
    for runs stored before backbones existed).

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
            rows.append({"run_id": na["run_id"], "backbone": spec.get("backbone", DEFAULT_BACKBONE),
                         "dataset": spec["dataset"], "variant": spec["variant"],
                         "spec_variant": spec["variant"], "text": spec["text"], "text_source": None,
                         "seed": spec["seed"], "gamma": spec["gamma"], "gamma_set": spec["gamma"] is not None,
                         "overrides": json.dumps(spec["overrides"]), "na_reason": na["reason"],
                         "na_detail": na.get("detail"), "same_as": na.get("same_as")})
            continue
        if not (d / COMPLETE_MARKER).exists():  # missing, in progress, or interrupted: not a run yet
            continue
        verify_run(d)  # a file changed or truncated since the run was written: one line naming both
        cfg = json.loads((d / "config.json").read_text())
        met = json.loads((d / "metrics.json").read_text())
        spec = cfg["spec"]
        prov = cfg.get("pairs_provenance") or {}
        kg_pairs = isinstance(prov, dict) and prov.get("sampler") == "kg"
        rows.append({"run_id": cfg["run_id"], "backbone": spec.get("backbone", DEFAULT_BACKBONE), "dataset": spec["dataset"],
                     "variant": "cl_kg" if kg_pairs else spec["variant"], "spec_variant": spec["variant"],
                     "text": spec["text"], "text_source": cfg["text_source"], "seed": spec["seed"],
                     "backbone": spec.get("backbone", "kgcn"),
                     "gamma": cfg["train_config"].get("gamma", spec["gamma"]),
                     "gamma_set": spec["gamma"] is not None, "overrides": json.dumps(spec["overrides"]),
                     "na_reason": None, "na_detail": None, "same_as": None,
                     "scoring": cfg.get("scoring"), "text_model": cfg.get("text_model"), "synopses": cfg.get("synopses"),
                     "pairs": pairs_source(spec["dataset"], cfg.get("pairs_provenance")),
                     "train_seconds": cfg.get("train_seconds"), **met})
    cols = ["run_id", "backbone", "dataset", "variant", "spec_variant", "text", "text_source", "seed", "gamma", "gamma_set",
            "overrides", "na_reason", "scoring", "text_model", "train_seconds"]
    return pd.DataFrame(rows, columns=None if rows else cols)


def trained(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` that are trained runs (drops the n/a cells of :func:`load_results`)."""
    return df[df["na_reason"].isna()] if "na_reason" in df.columns else df


def load_run(results_dir, run_id: str) -> dict:
    """A stored run: ``config``, ``metrics`` and the arrays ``topk``, ``test_users``, ``content_emb``."""
    d = Path(results_dir) / "runs" / run_id
    if not (d / COMPLETE_MARKER).exists():
        raise FileNotFoundError(f"run {run_id} is not finished: {d / COMPLETE_MARKER} missing")
    verify_run(d)
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


def resolve_dirs(profile: str, results_dir=None, figures_dir=None) -> tuple[Path, Path]:
    """``(results_dir, figures_dir)`` for a notebook: the runner's values, or — interactively —
    ``<runs>/<profile>`` and ``figures/<profile>`` of the checkout (created)."""
    res = Path(results_dir) if results_dir else results_root(profile)
    fig = Path(figures_dir) if figures_dir else REPO_ROOT / "figures" / profile
    res.mkdir(parents=True, exist_ok=True)
    fig.mkdir(parents=True, exist_ok=True)
    return res, fig


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
                     tuple((k, v) for k, v in r["overrides"]), r.get("text_source"), backbone=r.get("backbone", "kgcn"))
             for r in data.pop("runs")]
    df = load_results(results_dir, specs)
    datasets_json = Path(results_dir) / "datasets.json"  # notebook 01: where each KG comes from (captions)
    if datasets_json.exists():
        data.setdefault("kg", json.loads(datasets_json.read_text()).get("kg", {}))
    if len(df) < len(specs):
        print(f"[kgcl] manifest {name!r}: {len(specs) - len(df)} of {len(specs)} runs are not finished")
    return df, data


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
    kg_text = kg_caption_notes(info.get("kg") or {}, sorted(df["dataset"].unique()) if len(df) else [])
    extra = ". ".join(x for x in (mask_text, kg_text, extra) if x)
    return {"datasets": sorted(df["dataset"].unique()) if len(df) else [],
            "seeds": info.get("seeds", sorted(df["seed"].unique()) if len(df) else []),
            "scoring": info.get("scoring", "kgcn"),
            "text_model": "; ".join(models) or None, "synopses": "; ".join(syn) or None,
            "extra": ". ".join(x for x in (extra, "CL pairs: " + "; ".join(pairs) if pairs else "") if x)}
