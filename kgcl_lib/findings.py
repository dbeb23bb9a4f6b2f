"""Sentences for each notebook's closing "What this run shows" cell, generated from its results.

Every function takes the frames a notebook already has and returns a list of plain sentences
(no hand-typed numbers anywhere), so the closing cell is true for every profile;
:func:`as_markdown` turns them into a bullet list. Where the paper makes a claim that the
numbers can confirm or contradict, the sentence says which.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from . import report
from .constants import BASELINE



def as_markdown(sentences: Iterable[str]) -> str:
    """``["a.", "b."] -> "- a.\\n- b."`` (a Markdown bullet list; "-" alone when empty)."""
    lines = [f"- {s}" for s in sentences]
    return "\n".join(lines) if lines else "- (no results to describe)"


def model_name(text: str, variant: str) -> str:
    """``("with", "cl_genre") -> "+CL genre with semantic text"``."""
    return f"{report.VARIANT_LABELS.get(variant, variant)} {report.TEXT_LABELS.get(text, text).lower()}"


def _metric(m: str) -> str:
    return report.METRIC_LABELS.get(m, m.replace("recall", "Recall").replace("ndcg", "NDCG"))


# --------------------------------------------------------------------------------------------
# 01–04
# --------------------------------------------------------------------------------------------
def datasets(stats: dict[str, dict], skipped: dict[str, str] | Sequence[str]) -> list[str]:
    """Notebook 01: size and density of every loaded dataset; which were skipped."""
    out = []
    for name, st in stats.items():
        users, items, rows = st.get("users"), st.get("contents"), st.get("uc_rows")
        line = f"{name} has {users:,} users, {items:,} contents and {rows:,} user–content rows"
        if users and items:
            line += f" (density {rows / (users * items):.2%})"
        if st.get("kg_triples") is not None:
            line += f", and a knowledge graph of {st['kg_triples']:,} triples over {st.get('relations', '?')} relations"
        out.append(line + ".")
    skipped = list(skipped)
    out.append(f"Skipped (not available here): {', '.join(skipped)}." if skipped else "No dataset was skipped.")
    return out


def table1_counts(cmp: pd.DataFrame) -> list[str]:
    """Notebooks 01/03: how our counts relate to the paper's Table 1 (``report.table1_comparison``)."""
    out = []
    for name, d in cmp.groupby("dataset", sort=False):
        both = d[d["paper"].notna()]
        if both.empty:
            out.append(f"{name} is not one of the paper's datasets: Table 1 has no number to compare with.")
            continue
        equal = both[both["difference"] == 0]
        line = f"{name} vs the paper's {both['paper dataset'].iloc[0]}: {len(equal)} of {len(both)} counts are equal"
        if len(equal) < len(both):
            r = both.loc[both["difference"] != 0, "ratio"]
            line += f"; the others are {r.min():.3g}–{r.max():.3g} times the paper's"
        out.append(line + ".")
    return out


def text(summary: dict[str, dict]) -> list[str]:
    """Notebook 02: how many items carry semantic text, and how it was encoded."""
    out = []
    for name, s in summary.items():
        share = s["n_with_text"] / s["n_items"] if s["n_items"] else 0.0
        out.append(f"{name}: {s['n_with_text']:,} of {s['n_items']:,} contents ({share:.0%}) have semantic text, "
                   f"encoded by {s['model']} into {s['dim']}-dimensional vectors; the rest keep learned "
                   f"embeddings only.")
    return out


def pairs(counts: dict[str, dict[str, dict]]) -> list[str]:
    """Notebook 03: positive content–content pairs per template (the paper's Table 1 row c-c)."""
    out = []
    for name, by_template in counts.items():
        for template, c in by_template.items():
            per = c["positives"] / c["anchors"] if c["anchors"] else 0.0
            out.append(f"{name}, {template.replace('_', '+')} pairs: {c['positives']:,} positive pairs over "
                       f"{c['anchors']:,} anchor contents ({per:.1f} per anchor) in {c['rows']:,} rows "
                       f"(positives plus sampled negatives).")
    return out


def training(df: pd.DataFrame, n_specs: int) -> list[str]:
    """Notebook 04: how many runs finished, their cost, and the best test AUC per dataset."""
    out = [f"{len(df)} of {n_specs} runs are finished and stored."]
    for name, d in df.groupby("dataset"):
        secs = d["train_seconds"].dropna()
        if len(secs):
            out.append(f"{name}: a run trains in {secs.mean():.1f} s on average ({secs.sum() / 60:.1f} min in total).")
        means = d.groupby(["text", "variant"])["test_auc"].mean()
        (t, v), best = means.idxmax(), means.max()
        base = means.get(BASELINE, np.nan)
        out.append(f"{name}: the highest mean test AUC is {best:.4f} ({model_name(t, v)}), "
                   f"the baseline's is {base:.4f}.")
    return out


# --------------------------------------------------------------------------------------------
# Tables 2–5
# --------------------------------------------------------------------------------------------
def _best(frame: pd.DataFrame, column: str, metric: str):
    d = frame[frame[column].notna()]
    if d.empty:
        return None
    lower = metric in report.LOWER_IS_BETTER
    row = d.loc[d[column].idxmin() if lower else d[column].idxmax()]
    return row


def comparison(cmp: pd.DataFrame, metrics: Sequence[str] | None = None) -> list[str]:
    """Tables 2–5: per dataset and metric, our best model and its gain over the baseline, the
    paper's best model, and how far our numbers are from the paper's.

    Args:
        cmp: :func:`kgcl_lib.report.paper_comparison` (``dataset, paper dataset, text,
            variant, metric, ours, ours sd, paper, difference``).
        metrics: which metrics to describe (default: all in ``cmp``).
    """
    out = []
    for name, d in cmp.groupby("dataset", sort=False):
        for metric in (metrics or list(dict.fromkeys(d["metric"]))):
            m = d[d["metric"] == metric]
            best = _best(m, "ours", metric)
            if best is None:
                continue
            base = m[(m["text"] == BASELINE[0]) & (m["variant"] == BASELINE[1])]["ours"]
            line = f"{name}, {_metric(metric)}: best is {model_name(best['text'], best['variant'])} ({best['ours']:.4f}"
            if (best["text"], best["variant"]) == BASELINE:
                line += ", the baseline itself"
            elif len(base):
                line += f", {best['ours'] - base.iloc[0]:+.4f} over the baseline's {base.iloc[0]:.4f}"
            line += ")"
            pbest = _best(m, "paper", metric)
            if pbest is not None:
                same = (pbest["text"], pbest["variant"]) == (best["text"], best["variant"])
                line += (f"; the paper's best on {pbest['paper dataset']} is "
                         f"{'the same model' if same else model_name(pbest['text'], pbest['variant'])} "
                         f"({pbest['paper']:.4f})")
            out.append(line + ".")
        diffs = d["difference"].dropna()
        if len(diffs):
            out.append(f"{name}: our numbers differ from the paper's ({d['paper dataset'].dropna().iloc[0]}) by "
                       f"{diffs.abs().mean():.4f} on average (largest {diffs.abs().max():.4f}) over {len(diffs)} "
                       f"numbers; ours are higher in {int((diffs > 0).sum())} of them.")
        else:
            out.append(f"{name} is not one of the paper's datasets: there is no paper number to compare with.")
    return out


def significance(ours: pd.DataFrame, paper: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """Table 2: which models beat the baseline significantly (higher mean, p < ``alpha``), ours
    beside the paper's count.

    ``ours``: :func:`kgcl_lib.report.table2`'s long frame (``dataset, text, variant, metric,
    value, p_value``); ``paper``: ``paper_table("table2")``.
    """
    out = []
    for (name, metric), d in ours[ours["metric"].isin(["auc", "f1"])].groupby(["dataset", "metric"], sort=False):
        base = d[(d["text"] == BASELINE[0]) & (d["variant"] == BASELINE[1])]["value"]
        if base.empty:
            continue
        better = d[(d["p_value"] < alpha) & (d["value"] > base.iloc[0])]
        n = len(d) - 1
        line = (f"{name}, {_metric(metric)}: {len(better)} of {n} models beat the baseline significantly "
                f"(p < {alpha:g}, {int(d['n'].max())} seeds)")
        dom = report.domain_of(name)
        p = paper[(paper["domain"] == dom) & (paper["metric"] == metric)]
        if len(p):
            pb = p[(p["text"] == BASELINE[0]) & (p["variant"] == BASELINE[1])]["value"].iloc[0]
            pn = int(((p["p_value"] < alpha) & (p["value"] > pb)).sum())
            line += f"; in the paper, {pn} of {len(p) - 1} on {report.PAPER_DATASET_LABELS.get(p['dataset'].iloc[0])}"
        out.append(line + ".")
    if ours["p_value"].isna().sum() > ours["dataset"].nunique() * 2:  # more NaN than the baseline rows
        out.append("Some models have no p-value (fewer than two seeds).")
    return out


# --------------------------------------------------------------------------------------------
# Figures 1/5 and 6
# --------------------------------------------------------------------------------------------
def cold_start(cold: pd.DataFrame, baseline_label: str) -> list[str]:
    """Figures 1/5: NDCG@100 of all test users vs the least active bucket, per model, and whether
    the best model's relative drop is smaller than the baseline's (the paper's claim).

    ``cold``: :func:`kgcl_lib.experiments.cold_start_frame` (``dataset, model, seed, percentile,
    value``); ``baseline_label``: the baseline's ``model`` value.
    """
    out = []
    for name, d in cold.groupby("dataset", sort=False):
        lo = d["percentile"].min()
        means = d.groupby(["model", "percentile"])["value"].mean()
        drops = {}
        for model in dict.fromkeys(d["model"]):
            everyone, coldest = means.get((model, 100.0), np.nan), means.get((model, lo), np.nan)
            drops[model] = 1 - coldest / everyone if everyone else np.nan
            out.append(f"{name}, {model}: NDCG@100 {everyone:.4f} over all test users, {coldest:.4f} for the "
                       f"bottom {lo:g}% ({-drops[model]:+.0%}).")
        others = [m for m in drops if m != baseline_label]
        if baseline_label in drops and others:
            m = others[0]
            smaller = drops[m] < drops[baseline_label]
            out.append(f"{name}: the {'best model' if len(others) == 1 else m} loses "
                       f"{'less' if smaller else 'more'} of its NDCG@100 in the coldest bucket than the baseline "
                       f"({drops[m]:.0%} vs {drops[baseline_label]:.0%}); the paper reports a smaller drop for its "
                       f"best model, so this run {'agrees' if smaller else 'does not agree'}.")
    return out


def gamma(points: pd.DataFrame) -> list[str]:
    """Figure 6: the best γ by NDCG@20, whether semantic text gives better (lower) uniformity at
    each γ, and whether alignment falls as γ falls — the paper's two observations (movie domain).

    ``points``: ``dataset, text, gamma, alignment, uniformity, ndcg@20`` (means over seeds).
    """
    out = []
    for name, d in points.groupby("dataset", sort=False):
        best = d.loc[d["ndcg@20"].idxmax()]
        out.append(f"{name}: the highest NDCG@20 ({best['ndcg@20']:.4f}) is at γ = {best['gamma']:g} "
                   f"{report.TEXT_LABELS.get(best['text'], best['text']).lower()} (the paper's best: γ = 0.8).")
        wide = d.pivot_table(index="gamma", columns="text", values="uniformity")
        if {"with", "without"} <= set(wide.columns):
            both = wide.dropna()
            n = int((both["with"] < both["without"]).sum())
            out.append(f"{name}: semantic text gives the lower (better) uniformity at {n} of {len(both)} γ values; "
                       f"the paper observes this for most γ on movies.")
        for text, t in d.groupby("text"):
            if t["gamma"].nunique() >= 3:
                rho = t[["gamma", "alignment"]].corr(method="spearman").iloc[0, 1]
                trend = "falls" if rho > 0 else "rises" if rho < 0 else "does not change"
                out.append(f"{name}, {report.TEXT_LABELS.get(text, text).lower()}: alignment {trend} as γ decreases "
                           f"(Spearman ρ(γ, ℓ_align) = {rho:+.2f}); the paper sees it fall.")
    return out
