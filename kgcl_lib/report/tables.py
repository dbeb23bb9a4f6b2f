"""The paper's Tables 1-5 from a results frame (kgcl_lib.experiments.load_results / load_manifest), the
comparison with the paper, and headline numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..constants import KS, TEXT_SOURCES, VARIANT_LABELS
from ..experiments import summarize, trained, ttests
from ..storage import write_json
from .baselines import RESULT_METRICS, with_block
from .formatting import (
    PAPER_DATASET_LABELS,
    TEXT_LABELS,
    combine_with_paper,
    domain_of,
    fmt_number,
    fmt_p,
    format_table,
    paper_table,
    stars,
)


# --------------------------------------------------------------------------------------------
# Headline numbers
# --------------------------------------------------------------------------------------------
def _plain(obj):
    """Make numpy scalars/arrays and NaN JSON-friendly (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def save_headlines(path: str | Path | None, numbers: dict) -> dict:
    """Record a notebook's headline numbers (for tests) as JSON at ``path``; print them.

    ``path`` is the ``headlines_path`` parameter the runner injects (next to the executed
    notebook); ``None`` — an interactive session — only prints. Returns the JSON-ready dict.
    """
    numbers = _plain(numbers)
    print(json.dumps(numbers, indent=1, sort_keys=True)[:4000])
    if path:
        write_json(path, numbers)
    return numbers


# --------------------------------------------------------------------------------------------
# The paper's tables from a results frame (kgcl_lib.experiments.load_results / load_manifest)
# --------------------------------------------------------------------------------------------


def _ours_long(df: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Means over seeds, long, with the dataset's text source and "n/a (reason)" cells.

    n/a cells are the grid's copies (``na_reason`` of :func:`kgcl_lib.experiments.load_results`)
    and the cells a dataset has no run for while another dataset does (e.g. "+CL genre" on a
    dataset whose CL pairs are KG attributes, reported as "+CL KG attributes").
    """
    keys = ["dataset", "text", "variant"]
    long = summarize(df, metrics)
    if "na_reason" in df.columns and len(df):
        na = df[df["na_reason"].notna()].groupby(keys)["na_reason"].first().rename("na_reason").reset_index()
        long = long.merge(na, on=keys, how="left")
        cells = long[keys].drop_duplicates()
        combos = cells[["text", "variant"]].drop_duplicates()
        full = cells[["dataset"]].drop_duplicates().merge(combos, how="cross")
        absent = full.merge(cells, on=keys, how="left", indicator=True).query("_merge == 'left_only'")[keys]
        if len(absent):
            has_kg = set(long.loc[long["variant"] == "cl_kg", "dataset"])
            absent = absent.assign(na_reason=[
                "CL pairs from genres/titles" if v == "cl_kg" else
                "no genres/titles: see +CL KG attributes" if v in ("cl_genre", "cl_title_genre") and d in has_kg else "not run"
                for d, v in zip(absent["dataset"], absent["variant"])])
            fill = absent.merge(pd.DataFrame({"metric": list(metrics)}), how="cross").assign(value=np.nan, std=np.nan, n=0)
            long = pd.concat([long, fill], ignore_index=True)
        is_na = long["na_reason"].notna()
        long["display"] = np.where(is_na, "n/a (" + long["na_reason"].fillna("") + ")", None)
        long["value"] = long["value"].where(~is_na)
    if "text_source" in df.columns:
        ok = trained(df)
        with_src = ok[ok["text"] == "with"].groupby("dataset")["text_source"].first()
        long["text_source"] = [with_src.get(d, "none") for d in long["dataset"]]
    long["metric"] = long["metric"].map(lambda m: RESULT_METRICS.get(m, m))
    long["domain"] = long["dataset"].map(domain_of)
    return long


def table1_long(stats: dict[str, dict]) -> pd.DataFrame:
    """Table 1 as a long frame: ours ``{dataset: {quantity: value}}`` beside the paper's rows."""
    rows = [{"domain": domain_of(ds), "dataset": ds, "metric": q, "value": float("nan"),
             "display": f"{v:,}" if isinstance(v, (int, np.integer)) else str(v), "text": "", "variant": ""}
            for ds, st in stats.items() for q, v in st.items()]
    ours = pd.DataFrame(rows)
    paper = paper_table("table1").rename(columns={"quantity": "metric", "value": "display"})
    paper["display"] = [f"{int(v):,}" if str(v).isdigit() else str(v) for v in paper["display"]]
    paper["value"] = float("nan")
    paper["text"] = paper["variant"] = ""
    return combine_with_paper(ours, paper)


def table1_comparison(stats: dict[str, dict]) -> pd.DataFrame:
    """Our numeric Table 1 quantities beside the paper's for the same domain.

    Args:
        stats: ``{dataset: {quantity: number}}`` with the paper's quantity names (``users``,
            ``contents``, ``uc_rows``, ``entities``, ``relations``, ``kg_triples``,
            ``cc_genre``, ``cc_title_genre``, …); other quantities are ignored.
    Returns:
        DataFrame ``dataset, paper dataset, quantity, ours, paper, difference (ours − paper),
        ratio (ours / paper)``; ``paper`` is NaN where the paper has no such number.
    """
    paper = paper_table("table1")
    rows = []
    for ds, st in stats.items():
        p = paper[paper["domain"] == domain_of(ds)]
        name = PAPER_DATASET_LABELS.get(p["dataset"].iloc[0]) if len(p) else None
        numbers = pd.to_numeric(p.set_index("quantity")["value"], errors="coerce")
        for q, v in st.items():
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                rows.append({"dataset": ds, "paper dataset": name, "quantity": q, "ours": v,
                             "paper": float(numbers.get(q, np.nan))})
    out = pd.DataFrame(rows, columns=["dataset", "paper dataset", "quantity", "ours", "paper"])
    out["difference"] = out["ours"] - out["paper"]
    out["ratio"] = out["ours"] / out["paper"]
    return out


def table1(stats: dict[str, dict], caption_text: str = "") -> tuple[str, str]:
    """Table 1 (dataset statistics; the paper's hyper-parameters for its datasets)."""
    long = table1_long(stats)
    return format_table(long, index=("metric",), columns=("source",), compare_within=(),
                        caption=caption_text, label="tab:table1")


def table2_long(df: pd.DataFrame, test: str = "welch") -> pd.DataFrame:
    """Ours for Table 2: AUC / F1 means with significance stars, and p-value rows."""
    long = _ours_long(df, ["test_auc", "test_f1"])
    p = ttests(df, ["test_auc", "test_f1"], test=test)
    p["metric"] = p["metric"].map(RESULT_METRICS)
    long = long.merge(p, on=["dataset", "text", "variant", "metric"], how="left")
    na = long["display"] if "display" in long.columns else pd.Series(None, index=long.index, dtype=object)
    long["display"] = [d if isinstance(d, str) else fmt_number(v) + stars(pv)
                       for d, v, pv in zip(na, long["value"], long["p_value"])]
    prow = long.assign(metric=long["metric"] + " p-value", value=float("nan"),
                       display=[d if isinstance(d, str) else fmt_p(pv) for d, pv in zip(na, long["p_value"])])
    return pd.concat([long, prow], ignore_index=True)


def paper_with_p(paper: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 2 in the same shape: stars on values, p-value rows."""
    paper = paper.copy()
    paper["display"] = [fmt_number(v) + stars(pv) for v, pv in zip(paper["value"], paper["p_value"])]
    prow = paper.assign(metric=paper["metric"] + " p-value", value=float("nan"), display=paper["p_value"].map(fmt_p))
    return pd.concat([paper, prow], ignore_index=True)


_T2_ORDER = {"metric": ["auc", "auc p-value", "f1", "f1 p-value"]}


def table2(df: pd.DataFrame, caption_text: str = "", test: str = "welch", baselines=None) -> tuple[str, str, pd.DataFrame]:
    """Table 2: AUC and F1 with t-test p-values against the baseline. Returns (md, tex, ours).

    ``baselines``: notebook 04's simple baselines (:func:`kgcl_lib.report.load_baselines`), shown
    as a block under the table (:func:`kgcl_lib.report.baselines.with_block`), or ``None``."""
    ours = table2_long(df, test)
    md, tex = format_table(ours, paper_with_p(paper_table("table2")), caption=caption_text, label="tab:table2",
                           row_order=_T2_ORDER)
    md, tex, _ = with_block(md, tex, df, baselines, ["test_auc", "test_f1"], "Table 2", "tab:table2-baselines")
    return md, tex, ours


def table3(df: pd.DataFrame, caption_text: str = "", ks: Sequence[int] = KS, baselines=None):
    """Table 3: Recall@K and NDCG@K (+ the simple-baselines block, see :func:`table2`). Returns (md, tex, ours)."""
    metrics = [f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks]
    ours = _ours_long(df, metrics)
    md, tex = format_table(ours, paper_table("table3"), index=("text", "domain", "variant", "source"),
                           columns=("metric",), compare_within=("domain", "metric", "source"),
                           caption=caption_text, label="tab:table3", row_order={"metric": metrics})
    md, tex, _ = with_block(md, tex, df, baselines, metrics, "Table 3", "tab:table3-baselines")
    return md, tex, ours


def table4(df: pd.DataFrame, caption_text: str = "", k: int = 20, baselines=None):
    """Table 4: Inter- and Intra-list diversity@k (+ the simple-baselines block, see :func:`table2`;
    popularity has no embeddings, so no Intra-list diversity). Returns (md, tex, ours)."""
    ours = _ours_long(df, [f"inter@{k}", f"intra@{k}"])
    md, tex = format_table(ours, paper_table("table4"), caption=caption_text, label="tab:table4")
    md, tex, _ = with_block(md, tex, df, baselines, [f"inter@{k}", f"intra@{k}"], "Table 4", "tab:table4-baselines")
    return md, tex, ours


def table5(df: pd.DataFrame, caption_text: str = ""):
    """Table 5: baseline vs +CL title+genre with human vs LLM synopses. Returns (md, tex, ours).

    ``df`` holds runs of ``(without, base)``, ``(with, cl_title_genre)`` and ``(llm,
    cl_title_genre)``; "with" is relabelled "human" as in the paper.
    """
    metrics = ["recall@20", "ndcg@20", "inter@20", "intra@20"]
    ours = _ours_long(df, metrics)
    ours["text"] = ours["text"].replace({"with": "human"})
    text_label = ours["text"].map(TEXT_LABELS)
    if "text_source" in ours.columns:  # "human" is only human when the dataset's text is
        human_src = ours["text_source"].map(lambda s: TEXT_SOURCES.get(s, str(s)))
        text_label = np.where(ours["text"] == "human", human_src, np.where(ours["text"] == "llm", TEXT_SOURCES["llm"], text_label))
    ours["model"] = ours["variant"].map(VARIANT_LABELS) + np.where(
        ours["text"] == "without", " (baseline)", " (" + pd.Series(text_label, index=ours.index).astype(str) + ")")
    # each row's text is named in its model label here; the source column's per-dataset text
    # ("text: human synopses") would mislabel the LLM row
    ours = ours.drop(columns="text_source", errors="ignore")
    paper = paper_table("table5")
    paper["model"] = paper["variant"].map(VARIANT_LABELS) + np.where(
        paper["text"] == "without", " (baseline)", " (" + paper["text"].map(TEXT_LABELS) + ")")
    md, tex = format_table(ours, paper, index=("domain", "model", "source"), columns=("metric",),
                           compare_within=("domain", "metric", "source"), caption=caption_text,
                           label="tab:table5", row_order={"metric": metrics})
    return md, tex, ours


def paper_comparison(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Our number beside the paper's for every (dataset, text, variant, metric) we have.

    Args:
        ours: long frame ``dataset, text, variant, metric, value`` (+ ``std``), e.g. the third
            return value of :func:`table2` … :func:`table5` (rows whose ``value`` is NaN, such as
            p-value rows, are dropped).
        paper: the paper's rows (:func:`paper_table`), matched on ``domain`` (MovieLens ↔
            ML-20M, Book-Crossing ↔ Book-Crossing), ``text``, ``variant`` and ``metric``.
    Returns:
        DataFrame ``dataset, paper dataset, text, variant, metric, ours, ours sd, paper,
        difference``
        with ``difference = ours − paper``; ``paper`` (and ``difference``) are NaN where the
        paper has no number (e.g. synthetic data, which belongs to no paper domain).
    """
    if "backbone" in ours.columns:  # the paper's numbers are KGCN's (:func:`by_backbone`)
        ours = ours[ours["backbone"] == "kgcn"]
    o = ours[ours["value"].notna()].copy()
    if "domain" not in o.columns:
        o["domain"] = o["dataset"].map(domain_of)
    if "std" not in o.columns:
        o["std"] = float("nan")
    p = paper[["domain", "dataset", "text", "variant", "metric", "value"]].rename(
        columns={"dataset": "paper dataset", "value": "paper"})
    m = o.merge(p, on=["domain", "text", "variant", "metric"], how="left")
    m["paper dataset"] = m["paper dataset"].map(lambda d: PAPER_DATASET_LABELS.get(d, d), na_action="ignore")
    out = m[["dataset", "paper dataset", "text", "variant", "metric", "value", "std", "paper"]].rename(
        columns={"value": "ours", "std": "ours sd"})
    out["difference"] = out["ours"] - out["paper"]
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# One block per backbone (issue 30)
# --------------------------------------------------------------------------------------------
def backbones_of(df: pd.DataFrame) -> list[str]:
    """The backbones of a results frame, the paper's KGCN first (runs stored before backbones
    existed, without a ``backbone`` column, are KGCN's)."""
    if "backbone" not in df.columns or df.empty:
        return ["kgcn"]
    names = list(dict.fromkeys(df["backbone"].fillna("kgcn")))
    return sorted(names, key=lambda b: (b != "kgcn", names.index(b)))


def by_backbone(table_fn, df: pd.DataFrame, caption_text: str = "", **kw) -> tuple[str, str, pd.DataFrame]:
    """``table_fn`` (:func:`table2` … :func:`table5`) once per backbone of ``df``, one block each.

    Each block is the table of that backbone's runs alone (means, tests and the paper column as
    for KGCN: the paper's numbers are KGCN's, the backbone the paper tested); blocks are headed
    ``Backbone: <name>`` in Markdown and LaTeX and the long frames are concatenated with a
    ``backbone`` column.  With one backbone the result is ``table_fn``'s own.
    """
    names = backbones_of(df)
    if len(names) == 1:
        sub = df if "backbone" not in df.columns else df[df["backbone"].fillna("kgcn") == names[0]]
        return table_fn(sub, caption_text, **kw)
    mds, texs, longs = [], [], []
    for name in names:
        sub = df[df["backbone"].fillna("kgcn") == name]
        label = f"backbone: {name}" + (" (the paper's)" if name == "kgcn" else "; paper column: the paper's KGCN")
        md, tex, ours = table_fn(sub, f"{caption_text} ({label})".strip(), **kw)
        mds.append(f"#### Backbone: {name}\n\n{md}")
        texs.append(f"% Backbone: {name}\n{tex}")
        longs.append(ours.assign(backbone=name))
    return "\n\n".join(mds), "\n\n".join(texs), pd.concat(longs, ignore_index=True)
