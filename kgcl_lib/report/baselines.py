"""The simple-baselines block of Tables 2–4 and Figure 5 (issue 29).

The simple baselines (popularity, biased MF, LightGCN; :mod:`kgcl_lib.model`) are trained by
notebook 04 into the ``baselines`` manifest with the settings their tuner chose
(:mod:`kgcl_lib.tune`).  Here they become a block *under* each of Tables 2–4: one row per model
and dataset -- KGCN L_base and the best KGCN text/CL variant of our runs, then each baseline --
one column per metric, ``mean ± sd`` over seeds; the caption states the tuning budget (trials per
baseline, KGCN with the paper's settings, untuned).

Frames: :func:`baseline_frame` relabels a ``baselines`` results frame so that ``variant`` names
the backbone (``"pop"``, ``"mf"``, ``"lightgcn"``); every other column is as
:func:`kgcl_lib.experiments.load_results` makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..constants import BASELINE, TEXT_ARM_LABELS, VARIANT_LABELS
from ..experiments import load_manifest, summarize, trained
from .formatting import fmt_number, format_table

#: Result-store metric column -> the metric name in the tables and the paper's CSVs.
RESULT_METRICS = {"test_auc": "auc", "test_f1": "f1"}
#: Display names of the simple baselines (``RunSpec.backbone`` -> label).
BASELINE_LABELS = {"pop": "Popularity", "mf": "MF (biases)", "lightgcn": "LightGCN"}
def baseline_label(backbone: str) -> str:
    """Row / legend label of a simple baseline: its name, and "tuned" unless it has no
    hyper-parameters (popularity)."""
    name = BASELINE_LABELS.get(backbone, backbone)
    return f"{name} (no hyper-parameters)" if backbone == "pop" else f"{name} (tuned)"


#: Order of the baselines in tables.
BASELINE_ORDER = ("pop", "mf", "lightgcn")
#: Row label of the best KGCN text/CL variant.
BEST_KGCN = "KGCN best text/CL variant"


def baseline_frame(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """``df`` (a ``baselines`` results frame) with ``variant`` = the backbone name; ``None`` stays ``None``."""
    if df is None or df.empty:
        return None
    if "backbone" not in df.columns:
        raise ValueError("baselines frame has no 'backbone' column (load it with kgcl_lib.experiments.load_manifest)")
    out = trained(df)
    return out.assign(variant=out["backbone"], spec_variant=out["backbone"])


def _kgcn_label(text: str, variant: str) -> str:
    return f"{VARIANT_LABELS.get(variant, variant)}, {TEXT_ARM_LABELS.get(text, text).lower()}"


def block_long(results: pd.DataFrame, baselines: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Long ``dataset, model, metric, value, std, n, display`` of the block (see module docstring).

    ``results``: notebook 04's KGCN grid frame; ``baselines``: :func:`baseline_frame`'s frame.
    The best KGCN text/CL variant is chosen per dataset and metric by its mean (its name is
    shown in the cell).  Metrics a model does not define (popularity's Intra-list diversity:
    no embeddings) read ``–``.
    """
    rows = []
    kg = trained(results)
    kg = kg[kg["variant"] != "kgcn_original"]
    for ds in sorted(set(baselines["dataset"])):
        k = kg[kg["dataset"] == ds]
        b = baselines[baselines["dataset"] == ds]
        if len(k):
            s = summarize(k, [m for m in metrics if m in k.columns])
            for m in metrics:
                sm = s[s["metric"] == m]
                base = sm[(sm["text"] == BASELINE[0]) & (sm["variant"] == BASELINE[1])]
                if len(base):
                    rows.append(_cell(ds, "KGCN L_base (paper settings)", base.iloc[0]))
                others = sm[~((sm["text"] == BASELINE[0]) & (sm["variant"] == BASELINE[1]))].dropna(subset=["value"])
                if len(others):
                    best = others.sort_values("value").iloc[-1]
                    rows.append(_cell(ds, BEST_KGCN, best, f" ({_kgcn_label(best['text'], best['variant'])})"))
        s = summarize(b, [m for m in metrics if m in b.columns], by=("dataset", "variant"))
        for _, r in s.iterrows():
            rows.append(_cell(ds, baseline_label(r["variant"]), r))
    out = pd.DataFrame(rows, columns=["dataset", "model", "metric", "value", "std", "n", "display"])
    out["metric"] = out["metric"].map(lambda m: RESULT_METRICS.get(m, m))  # test_auc -> auc (the tables' names)
    out["text"], out["variant"] = "", ""
    return out


def _cell(ds: str, model: str, r, suffix: str = "") -> dict:
    value, std = float(r["value"]), float(r["std"]) if pd.notna(r["std"]) else float("nan")
    text = "–" if not np.isfinite(value) else fmt_number(value) + (f" ± {fmt_number(std)}" if np.isfinite(std) else "")
    return {"dataset": ds, "model": model, "metric": r["metric"], "value": value, "std": std, "n": int(r["n"]),
            "display": text + suffix}


def budget_caption(ledgers: pd.DataFrame | None) -> str:
    """One caption sentence on the tuning budget from :func:`kgcl_lib.tune.ledger_frame` rows."""
    if ledgers is None or ledgers.empty:
        return "Simple baselines: untuned (no tuning ledger found)"
    tuned = ledgers[ledgers["trials"] > 0]
    trials = sorted(set(tuned["trials"]))
    parts = [f"{BASELINE_LABELS.get(r.backbone, r.backbone)} on {r.dataset}: {r.trials} trials, "
             f"{r.cpu_seconds:.0f} CPU-s" for r in tuned.itertuples()]
    untuned = sorted({BASELINE_LABELS.get(b, b) for b in ledgers.loc[ledgers["trials"] == 0, "backbone"]})
    budget = f"{'/'.join(map(str, trials))} TPE trials each" if trials else "no trials"
    text = (f"Simple baselines tuned with an equal declared budget ({budget}; objective: validation AUC, test rows "
            f"never read; python -m kgcl_lib.tune): " + "; ".join(parts))
    if untuned:
        text += f"; {', '.join(untuned)}: no hyper-parameters (0 trials)"
    return text + ". KGCN rows keep the paper's settings (Table 1), untuned"


def baselines_block(results: pd.DataFrame, baselines: pd.DataFrame, metrics: Sequence[str], caption: str = "",
                    label: str = "") -> tuple[str, str, pd.DataFrame]:
    """The block under a table: ``(markdown, latex, long)``; best value per dataset and metric in
    bold (:func:`~kgcl_lib.report.format_table`)."""
    long = block_long(results, baselines, metrics)
    order = ["KGCN L_base (paper settings)", BEST_KGCN] + [baseline_label(b) for b in BASELINE_ORDER]
    md, tex = format_table(long, None, index=("dataset", "model"), columns=("metric",),
                           compare_within=("dataset", "metric"), caption=caption, label=label,
                           row_order={"model": order, "metric": [RESULT_METRICS.get(m, m) for m in metrics]})
    return md, tex, long


def with_block(md: str, tex: str, results: pd.DataFrame, baselines: Baselines | None, metrics: Sequence[str],
               table: str, label: str) -> tuple[str, str, pd.DataFrame | None]:
    """Table ``md`` / ``tex`` with the simple-baselines block of ``baselines`` (:func:`load_baselines`)
    appended; unchanged (and ``None`` for the block) without baselines."""
    if baselines is None or baselines.frame.empty:
        return md, tex, None
    bmd, btex, long = baselines_block(results, baselines.frame, metrics, baselines.caption(table), label)
    return md + "\n**Simple baselines**\n\n" + bmd, tex + "\n" + btex, long


def best_baseline(baselines: pd.DataFrame, metric: str) -> dict[str, str]:
    """Per dataset, the baseline (backbone name) with the highest mean ``metric``."""
    means = baselines.groupby(["dataset", "variant"])[metric].mean().dropna().reset_index()
    return {ds: str(g.sort_values(metric).iloc[-1]["variant"]) for ds, g in means.groupby("dataset")}


# --------------------------------------------------------------------------------------------
# Reading notebook 04's baselines
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Baselines:
    """Notebook 04's simple-baseline runs: ``frame`` (:func:`baseline_frame`), ``ledger`` (one row
    per tuning study, :func:`kgcl_lib.tune.ledger_frame`'s columns) and the manifest's ``info``."""
    frame: pd.DataFrame
    ledger: pd.DataFrame
    info: dict

    @property
    def seeds(self) -> list:
        return sorted(self.frame["seed"].unique().tolist())

    def caption(self, table: str) -> str:
        """The block's caption: what it holds and the tuning budget."""
        return (f"{table}, simple baselines: mean ± sd over {len(self.seeds)} seed(s) ({', '.join(map(str, self.seeds))}); "
                f"same splits, labelled rows, masks and metrics as KGCN; L_base only, no semantic text. "
                + budget_caption(self.ledger) + ".")


def load_baselines(results_dir) -> Baselines | None:
    """The ``baselines`` manifest of notebook 04, or ``None`` when it trained none."""
    try:
        df, info = load_manifest(results_dir, "baselines")
    except FileNotFoundError:
        return None
    frame = baseline_frame(df)
    if frame is None:
        return None
    ledger = pd.DataFrame(info.get("tuning") or [], columns=["dataset", "backbone", "trials", "cpu_seconds",
                                                             "best_valid_auc", "settings"])
    return Baselines(frame, ledger, info)
