"""Tables and figures in the paper's layout, our numbers beside the paper's.

Everything here works on *long* DataFrames — one row per number — with the columns

    ``domain, dataset, text, variant, metric, value`` (+ optional ``std``, ``n``, ``p_value``,
    ``display``, ``source``, ``text_source``, ``na_reason``)

which is both what :func:`kgcl_lib.experiments.summarize` produces from the results store and
the schema of the CSVs transcribed from the paper (``kgcl_lib/paper_tables/table{1..5}.csv``,
loaded by :func:`paper_table`).  :func:`format_table` pivots such a frame into the paper's
layout and renders Markdown and LaTeX with the best value in **bold** and the second best
underlined inside each comparison group (by default: one source, one domain, one metric).

Every row label names the text its numbers were made with (``ours (ml-100k), text: human
synopses``; :data:`kgcl_lib.constants.TEXT_SOURCES`), and cells a dataset cannot fill — copies
of another configuration, see :func:`kgcl_lib.experiments.plan_grid` — read ``n/a (reason)``
and get neither a rank mark nor a p-value.

Figures use seaborn/matplotlib (Agg-safe) and are saved as PNG and PDF by :func:`save_figure`
at the paper's column width so they stay readable when printed.
"""

from __future__ import annotations

import io
import json
import math
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .constants import KS, PAPER_TEXT_SOURCES, TEXT_ARM_LABELS, TEXT_SOURCES, VARIANT_LABELS, VARIANT_ORDER, VARIANTS  # noqa: F401
from .storage import atomic_path, write_json

#: What KGCN's own paper reports for KGCN-sum (AUC, F1), for captions beside the kgcn_original row.
KGCN_REPORTED = {"book-crossing": (0.738, 0.688), "ml-20m": (0.978, 0.932)}
#: ``text`` arm labels (no synopsis, the dataset's text, LLM-generated synopses; Table 5: "human").
TEXT_LABELS = TEXT_ARM_LABELS
METRIC_LABELS = {"auc": "AUC", "f1": "F1", "inter@20": "Inter@20", "intra@20": "Intra@20"}
#: Metrics where lower is better (ranked ascending).
LOWER_IS_BETTER = frozenset({"alignment", "uniformity"})
#: Paper dataset of each domain, and the display names used in table rows.
DOMAIN_LABELS = {"movie": "Movie", "book": "Book"}
PAPER_DATASET_LABELS = {"ml-20m": "ML-20M", "book-crossing": "Book-Crossing"}

#: The paper's figures are one column wide (3.3 in) or two (6.9 in).
COLUMN_WIDTH_IN = 3.3
PAGE_WIDTH_IN = 6.9


# --------------------------------------------------------------------------------------------
# Paper numbers
# --------------------------------------------------------------------------------------------
def paper_table(table: str) -> pd.DataFrame:
    """The committed transcription of one of the paper's tables (``"table1"`` … ``"table5"``).

    Tables 2–5 have columns ``table, domain, dataset, text, variant, metric, value, p_value``
    (``value`` float, ``p_value`` float or NaN); Table 1 has ``table, domain, dataset, quantity,
    value`` with ``value`` as printed (strings: some rows are optimiser names).
    """
    name = table if table.startswith("table") else f"table{table}"
    try:
        text = resources.files("kgcl_lib").joinpath("paper_tables", f"{name}.csv").read_text()
    except FileNotFoundError as exc:
        raise ValueError(f"no transcribed paper table {name!r}; have table1..table5") from exc
    dtype = {"value": str} if name == "table1" else {"value": float, "p_value": float}
    df = pd.read_csv(io.StringIO(text), dtype=dtype, keep_default_na=name != "table1")
    if "table" not in df.columns or (df["table"] != name).any():
        raise ValueError(f"paper_tables/{name}.csv: every row must name its table ({name!r})")
    return df


def domain_of(dataset: str) -> str:
    """Map a dataset name to the paper's domain: MovieLens → ``"movie"``, Book-Crossing →
    ``"book"``; anything else (synthetic data) is its own domain and has no paper numbers."""
    d = dataset.lower()
    if d.startswith("ml-") or "movielens" in d:
        return "movie"
    if d.startswith("book"):
        return "book"
    return dataset


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------
def fmt_number(x, decimals: int = 4) -> str:
    """``0.12345 -> '0.1235'``; p-values below 1e-3 in scientific notation as in the paper."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{decimals}f}"


def fmt_p(p) -> str:
    """A p-value the way the paper prints it: ``0.0029``, ``1.96e-04``; ``-`` for the baseline."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def stars(p) -> str:
    """Significance marks of Table 2: ``**`` for p < 0.001, ``*`` for p < 0.05."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    return "**" if p < 1e-3 else "*" if p < 0.05 else ""


def rank_marks(long: pd.DataFrame, within: Sequence[str]) -> pd.Series:
    """Per row: ``"best"``, ``"second"`` or ``""`` — rank of ``value`` inside each ``within`` group.

    Higher is better unless the row's ``metric`` is in :data:`LOWER_IS_BETTER`. NaN values are
    never marked; ties share the mark (dense ranking), as a reader would expect.
    """
    sign = np.where(long["metric"].isin(LOWER_IS_BETTER), 1.0, -1.0)
    key = pd.Series(long["value"].to_numpy(dtype=float) * sign, index=long.index).round(12)
    keys = [long[c] for c in within]
    rank = key.groupby(keys, dropna=False).rank(method="dense") if within else key.rank(method="dense")
    return pd.Series(np.select([rank == 1, rank == 2], ["best", "second"], ""), index=long.index)


def _cell_text(row, decimals: int) -> str:
    disp = row.get("display")
    if isinstance(disp, str):
        return disp
    return fmt_number(row["value"], decimals)


def _label(col: str, v) -> str:
    if col == "variant":
        return VARIANT_LABELS.get(v, str(v))
    if col == "text":
        return TEXT_LABELS.get(v, str(v))
    if col == "metric":
        if str(v).endswith(" p-value"):
            return "p-value"
        return METRIC_LABELS.get(v, str(v).replace("recall", "Recall").replace("ndcg", "NDCG"))
    if col == "domain":
        return DOMAIN_LABELS.get(v, str(v))
    return str(v)


def _latex_escape(s: str) -> str:
    return (s.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%").replace("_", r"\_")
            .replace("#", r"\#").replace("$", r"\$"))


def combine_with_paper(ours: pd.DataFrame, paper: pd.DataFrame | None) -> pd.DataFrame:
    """Stack our long frame and the paper's, with a ``source`` column naming each row's origin.

    ``source`` reads ``"ours (ml-100k)"`` / ``"paper (ML-20M)"``; paper rows are kept only for
    the domains present in ``ours`` (a synthetic smoke run gets no paper rows).
    """
    ours = ours.copy()
    if "domain" not in ours.columns:
        ours["domain"] = ours["dataset"].map(domain_of)
    ours["source"] = "ours (" + ours["dataset"].astype(str) + ")"
    if "text_source" in ours.columns:  # the dataset's text, named in the row label itself
        ours["source"] += ", text: " + ours["text_source"].map(lambda s: TEXT_SOURCES.get(s, str(s)))
    if paper is None or paper.empty:
        return ours
    paper = paper[paper["domain"].isin(set(ours["domain"]))].copy()
    paper["source"] = "paper (" + paper["dataset"].map(lambda d: PAPER_DATASET_LABELS.get(d, d)) + ")"
    if "text_source" in ours.columns:
        paper["source"] += ", text: " + paper["domain"].map(lambda d: TEXT_SOURCES.get(PAPER_TEXT_SOURCES.get(d), "?"))
    return pd.concat([ours, paper], ignore_index=True, sort=False)


def format_table(
    df: pd.DataFrame,
    paper_df: pd.DataFrame | None = None,
    *,
    index: Sequence[str] = ("domain", "metric", "source"),
    columns: Sequence[str] = ("text", "variant"),
    compare_within: Sequence[str] = ("domain", "metric", "source"),
    decimals: int = 4,
    caption: str = "",
    label: str = "",
    row_order: dict | None = None,
) -> tuple[str, str]:
    """Render a long frame (ours, optionally with the paper's beside it) as Markdown and LaTeX.

    Args:
        df: our numbers, long: ``domain`` (or ``dataset``), ``text``, ``variant``, ``metric``,
            ``value`` and optionally ``display`` (a ready-made cell string, e.g. ``"0.9773**"``
            or a p-value; rows with NaN ``value`` are shown but never ranked).
        paper_df: the paper's numbers in the same schema (:func:`paper_table`); rows of
            domains absent from ``df`` are dropped. (default: ``None``, ours only)
        index, columns: which columns become the row and column levels of the pivot.
        compare_within: cells sharing these keys compete for bold (best) / underline (second).
        row_order: optional ``{column: [values in order]}`` for index levels (others keep the
            order of first appearance).

    Returns:
        ``(markdown, latex)``; Markdown marks best as ``**x**`` and second as ``<u>x</u>``,
        LaTeX as ``\\textbf{x}`` and ``\\underline{x}``.
    """
    long = combine_with_paper(df, paper_df) if paper_df is not None or "source" not in df.columns else df.copy()
    index, columns = list(index), list(columns)
    missing = [c for c in index + columns + ["metric", "value"] if c not in long.columns]
    if missing:
        raise ValueError(f"format_table: long frame lacks columns {missing}; has {list(long.columns)}")
    long = long.reset_index(drop=True)
    long["mark"] = rank_marks(long, list(compare_within))
    long["cell"] = [_cell_text(r, decimals) for r in long.to_dict("records")]

    def ordered(col: str, values) -> list:
        seen = list(dict.fromkeys(values))
        order = (row_order or {}).get(col) or (list(VARIANT_ORDER) if col == "variant" else
                                               list(TEXT_LABELS) if col == "text" else [])
        return [v for v in order if v in seen] + [v for v in seen if v not in order]

    row_keys = list(dict.fromkeys(map(tuple, long[index].to_numpy().tolist())))
    for lvl in reversed(range(len(index))):  # stable sort from the last level: lexicographic order
        pos = {v: i for i, v in enumerate(ordered(index[lvl], long[index[lvl]]))}
        row_keys.sort(key=lambda k: pos[k[lvl]])
    col_keys = list(dict.fromkeys(map(tuple, long[columns].to_numpy().tolist())))
    for lvl in reversed(range(len(columns))):
        pos = {v: i for i, v in enumerate(ordered(columns[lvl], long[columns[lvl]]))}
        col_keys.sort(key=lambda k: pos[k[lvl]])

    cells: dict[tuple, tuple[str, str]] = {}
    for r in long.to_dict("records"):
        cells[(tuple(r[c] for c in index), tuple(r[c] for c in columns))] = (r["cell"], r["mark"])

    def md_cell(c):
        text, mark = c
        text = text.replace("*", r"\*")  # significance stars must not read as emphasis
        return f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text

    def tex_cell(c):
        text, mark = c
        t = _latex_escape(text)
        return rf"\textbf{{{t}}}" if mark == "best" else rf"\underline{{{t}}}" if mark == "second" else t

    head = [c.capitalize() for c in index]
    col_names = [" / ".join(_label(columns[i], k[i]) for i in range(len(columns))) for k in col_keys]
    md = []
    if caption:
        md.append(f"*{caption}*\n")
    md.append("| " + " | ".join(head + col_names) + " |")
    md.append("|" + "---|" * len(head) + "---:|" * len(col_names))
    row_labels = _row_labels(row_keys, index)
    for rk, shown in zip(row_keys, row_labels):
        md.append("| " + " | ".join(shown + [md_cell(cells.get((rk, ck), ("", ""))) for ck in col_keys]) + " |")
    markdown = "\n".join(md) + "\n"

    # LaTeX: a header row per column level, multicolumn spans over repeated values.
    tex = [r"\begin{table*}[t]", r"\centering", r"\small"]
    if caption:
        tex.append(rf"\caption{{{_latex_escape(caption)}}}")
    if label:
        tex.append(rf"\label{{{label}}}")
    tex.append(r"\begin{tabular}{" + "l" * len(index) + "r" * len(col_keys) + "}")
    tex.append(r"\toprule")
    for lvl in range(len(columns)):
        row = [""] * len(index) if lvl < len(columns) - 1 else [_latex_escape(h) for h in head]
        i = 0
        while i < len(col_keys):
            j = i
            while j + 1 < len(col_keys) and col_keys[j + 1][: lvl + 1] == col_keys[i][: lvl + 1]:
                j += 1
            name = _latex_escape(_label(columns[lvl], col_keys[i][lvl]))
            row.append(name if j == i else rf"\multicolumn{{{j - i + 1}}}{{c}}{{{name}}}")
            i = j + 1
        tex.append(" & ".join(row) + r" \\")
    tex.append(r"\midrule")
    for n, (rk, shown) in enumerate(zip(row_keys, row_labels)):
        if n and rk[0] != row_keys[n - 1][0]:
            tex.append(r"\midrule")
        tex.append(" & ".join([_latex_escape(t) for t in shown] + [tex_cell(cells.get((rk, ck), ("", ""))) for ck in col_keys])
                   + r" \\")
    tex += [r"\bottomrule", r"\end{tabular}", r"\end{table*}"]
    return markdown, "\n".join(tex) + "\n"


def _row_labels(row_keys: list[tuple], index: Sequence[str]) -> list[list[str]]:
    """Each row's index labels, blanking a level that repeats the row above together with every
    level before it (the paper's merged cells); the last level is always shown."""
    out, prev = [], (None,) * len(index)
    for rk in row_keys:
        out.append(["" if i < len(index) - 1 and all(rk[j] == prev[j] for j in range(i + 1)) else _label(index[i], v)
                    for i, v in enumerate(rk)])
        prev = rk
    return out


def save_table(markdown: str, latex: str, out_dir: str | Path, name: str) -> dict[str, Path]:
    """Write ``<out_dir>/<name>.md`` and ``<name>.tex`` atomically; returns both paths."""
    out_dir = Path(out_dir)
    paths = {"md": out_dir / f"{name}.md", "tex": out_dir / f"{name}.tex"}
    for key, text in (("md", markdown), ("tex", latex)):
        with atomic_path(paths[key]) as tmp:
            tmp.write_text(text)
    return paths


def caption(title: str, *, datasets: Iterable[str], seeds, scoring: str, text_model: str | None = None,
            synopses: str | None = None, extra: str = "") -> str:
    """One caption string stating what the numbers are made of.

    ``seeds`` is the list of seeds (its length is the number of trials averaged).
    """
    seeds = list(seeds)
    parts = [title.rstrip("."), f"Datasets: {', '.join(datasets)}",
             f"mean over {len(seeds)} seed(s) ({', '.join(map(str, seeds))})", f"top-K scoring mode: {scoring}"]
    if text_model:
        parts.append(f"text encoder: {text_model}")
    if synopses:
        parts.append(f"synopses: {synopses}")
    if extra:
        parts.append(extra)
    return ". ".join(parts) + "."


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            import matplotlib_inline  # noqa: F401  (inside Jupyter the inline backend is fine)
        except ImportError:
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)
    return plt, sns


def save_figure(fig, out_dir: str | Path, name: str) -> dict[str, Path]:
    """Save ``fig`` as ``<out_dir>/<name>.png`` (300 dpi) and ``.pdf``, atomically."""
    out_dir = Path(out_dir)
    paths = {}
    for ext in ("png", "pdf"):
        path = out_dir / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=300, bbox_inches="tight")
        paths[ext] = path
    return paths


def plot_cold_start(df: pd.DataFrame, *, title: str = "", kind: str = "lines", mark_percentile: float | None = None):
    """Figure 1 / Figure 5: NDCG@100 by user-activity percentile, one panel per dataset.

    Args:
        df: long frame ``dataset, model, percentile, value`` — one row per seed and bucket
            (``percentile`` p means "the p % of test users with the fewest training
            interactions"; ``value`` NDCG@100 of that bucket). seaborn draws mean ± sd.
        kind: ``"lines"`` (Figure 5: every percentile) or ``"bars"`` (Figure 1: all users vs
            the bottom bucket).
        mark_percentile: with ``kind="lines"``, shade that bucket (the inspector's choice).
    Returns: the matplotlib Figure. Panels share the y axis (same metric, compared across
    datasets); error bars/bands are ± one standard deviation over seeds.
    """
    plt, sns = _plt()
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(min(PAGE_WIDTH_IN, COLUMN_WIDTH_IN * len(datasets)), 2.4),
                             squeeze=False, sharey=True)
    for ax, ds in zip(axes[0], datasets):
        d = df[df["dataset"] == ds]
        if kind == "bars":
            lo = d["percentile"].min()
            d = d[d["percentile"].isin([lo, 100])].copy()
            d["users"] = np.where(d["percentile"] == 100, "all test users", f"cold-start (bottom {lo:g}%)")
            sns.barplot(data=d, x="users", y="value", hue="model", ax=ax, errorbar="sd",
                        order=["all test users", f"cold-start (bottom {lo:g}%)"])
            ax.set_xlabel("")
        else:
            # Evenly spaced buckets (as the paper's Fig. 5): a numeric or log axis crowds 50..100 %.
            ticks = sorted(d["percentile"].unique())
            d = d.assign(position=np.searchsorted(ticks, d["percentile"]))
            sns.lineplot(data=d, x="position", y="value", hue="model", style="model", markers=True,
                         errorbar="sd", ax=ax)
            ax.set_xticks(range(len(ticks)))
            ax.set_xticklabels([f"{t:g}%" for t in ticks], fontsize=6, rotation=45, ha="right",
                               rotation_mode="anchor")  # 12 buckets in one column: upright labels collide
            ax.set_xlabel("test users by activity (bottom p%)")
            if mark_percentile is not None and float(mark_percentile) in ticks:
                at = ticks.index(float(mark_percentile))
                ax.axvspan(at - 0.3, at + 0.3, color="0.85", zorder=0, label=f"chosen: bottom {mark_percentile:g}%")
        ax.set_ylabel("NDCG@100")
        ax.set_title(ds)
    # Legends go below the panels (inside, they hide bars and lines): one for the figure when every
    # panel shows the same models, else one under each panel (e.g. a different best model per dataset).
    legends = [ax.get_legend_handles_labels() for ax in axes[0]]
    for ax in axes[0]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    if all(labels == legends[0][1] for _, labels in legends):
        fig.legend(*legends[0], loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=6, frameon=False)
    else:
        for ax, (handles, labels) in zip(axes[0], legends):
            ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.45 if kind == "lines" else -0.15),
                      fontsize=6, frameon=False)
    return fig


def place_labels(ax, points: Sequence[tuple[float, float]], labels: Sequence[str], *, fontsize: float = 5,
                 offset_pt: tuple[float, float] = (6, 3), marker_pt: float = 3.0) -> list:
    """Annotate ``points`` (data coordinates) with ``labels`` so that no two labels overlap.

    Labels are placed greedily in the given order at ``offset_pt`` from their point (mirrored to
    the left of the point when the label would leave the axes on the right); a label whose box
    would overlap one already placed moves up one line at a time (a thin leader line then
    joins it to its point). Labels also keep clear of every point's marker (a square of
    ± ``marker_pt`` points). Returns the matplotlib ``Annotation`` objects.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    right_edge = ax.get_window_extent(renderer).x1
    r = marker_pt * fig.dpi / 72
    placed = [Bbox.from_extents(px - r, py - r, px + r, py + r) for px, py in ax.transData.transform(list(points))]
    out = []
    line_pt = fontsize * 1.25
    for (x, y), text in zip(points, labels):
        dx, dy, ha = offset_pt[0], offset_pt[1], "left"
        while True:
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                              va="bottom", ha=ha)
            box = ann.get_window_extent(renderer)
            if ha == "left" and box.x1 > right_edge:
                ann.remove()
                dx, ha = -offset_pt[0], "right"
                continue
            if not any(box.overlaps(b) for b in placed):
                break
            ann.remove()
            dy += line_pt  # upwards: below the point the marker itself would hide the label
        if dy != offset_pt[1]:
            ax.annotate("", (x, y), xytext=(dx, dy), textcoords="offset points",
                        arrowprops={"arrowstyle": "-", "lw": 0.3, "color": "0.5"})
        placed.append(box)
        out.append(ann)
    return out


def plot_align_uniform(df: pd.DataFrame, *, title: str = ""):
    """Figure 6: ℓ_align (x) vs ℓ_uniform (y), one point per (γ, text), coloured by NDCG@20.

    Args:
        df: long frame ``dataset, text ("with"/"without"), gamma, alignment, uniformity,
            ndcg@20`` — means over seeds. Stars: with semantic text; circles: without. Points of
            one text are joined in γ order; every point is labelled with its γ and its marker,
            labels never overlap (:func:`place_labels`). One colour scale (viridis, shared by all panels).
    Returns: the matplotlib Figure.
    """
    plt, _ = _plt()
    from matplotlib.lines import Line2D

    df = df.dropna(subset=["alignment", "uniformity"])  # n/a cells of the grid have no embeddings
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(min(PAGE_WIDTH_IN, COLUMN_WIDTH_IN * len(datasets)), 2.8),
                             squeeze=False, layout="constrained")
    vmin, vmax = float(df["ndcg@20"].min()), float(df["ndcg@20"].max())
    if vmin == vmax:
        vmin, vmax = vmin - 1e-6, vmax + 1e-6
    sc = None
    styles = (("without", "o", 35, "0.55"), ("with", "*", 90, "0.15"))
    to_label = []
    for ax, ds in zip(axes[0], datasets):
        d = df[df["dataset"] == ds]
        points, labels = [], []
        for text, marker, size, line in styles:
            t = d[d["text"] == text].sort_values("gamma")
            if t.empty:
                continue
            ax.plot(t["alignment"], t["uniformity"], color=line, lw=0.5, ls=":", zorder=1)
            sc = ax.scatter(t["alignment"], t["uniformity"], c=t["ndcg@20"], cmap="viridis", vmin=vmin, vmax=vmax,
                            marker=marker, s=size, edgecolors="k", linewidths=0.3, zorder=2)
            points += list(zip(t["alignment"], t["uniformity"]))
            labels += [f"γ={g:g} {'★' if text == 'with' else '●'}" for g in t["gamma"]]
        ax.margins(0.15)
        to_label.append((ax, points, labels))
        ax.set_xlabel(r"$\ell_{align}$ (lower is better)")
        ax.set_ylabel(r"$\ell_{uniform}$ (lower is better)")
        ax.set_title(ds)
        ax.legend(handles=[Line2D([], [], marker=m, ls=":", lw=0.5, color=c, markerfacecolor="w", markeredgecolor="k",
                                  markersize=7 if m == "*" else 5, label=f"{t} semantic text")
                           for t, m, _, c in styles], fontsize=6, loc="best")
    if sc is not None:
        fig.colorbar(sc, ax=axes[0].tolist(), label="NDCG@20 (point colour)", shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=8)
    for ax, points, labels in to_label:  # last: the colour bar and title change the axes' size
        place_labels(ax, points, labels)
    return fig


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
#: metric column in the results store -> metric name in the paper CSVs
RESULT_METRICS = {"test_auc": "auc", "test_f1": "f1"}


def _ours_long(df: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Means over seeds, long, with the dataset's text source and "n/a (reason)" cells.

    n/a cells are the grid's copies (``na_reason`` of :func:`kgcl_lib.experiments.load_results`)
    and the cells a dataset has no run for while another dataset does (e.g. "+CL genre" on a
    dataset whose CL pairs are KG attributes, reported as "+CL KG attributes").
    """
    from .experiments import summarize, trained

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
    from .experiments import ttests

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


def table2(df: pd.DataFrame, caption_text: str = "", test: str = "welch") -> tuple[str, str, pd.DataFrame]:
    """Table 2: AUC and F1 with t-test p-values against the baseline. Returns (md, tex, ours)."""
    ours = table2_long(df, test)
    md, tex = format_table(ours, paper_with_p(paper_table("table2")), caption=caption_text, label="tab:table2",
                           row_order=_T2_ORDER)
    return md, tex, ours


def table3(df: pd.DataFrame, caption_text: str = "", ks: Sequence[int] = KS):
    """Table 3: Recall@K and NDCG@K. Returns (md, tex, ours)."""
    metrics = [f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks]
    ours = _ours_long(df, metrics)
    md, tex = format_table(ours, paper_table("table3"), index=("text", "domain", "variant", "source"),
                           columns=("metric",), compare_within=("domain", "metric", "source"),
                           caption=caption_text, label="tab:table3", row_order={"metric": metrics})
    return md, tex, ours


def table4(df: pd.DataFrame, caption_text: str = "", k: int = 20):
    """Table 4: Inter- and Intra-list diversity@k. Returns (md, tex, ours)."""
    ours = _ours_long(df, [f"inter@{k}", f"intra@{k}"])
    md, tex = format_table(ours, paper_table("table4"), caption=caption_text, label="tab:table4")
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


def save_caption(out_dir: str | Path, name: str, text: str) -> Path:
    """Write a figure's caption next to it as ``<name>.caption.txt``."""
    path = Path(out_dir) / f"{name}.caption.txt"
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return path
