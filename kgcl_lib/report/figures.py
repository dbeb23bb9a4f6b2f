"""Figures: the cold-start curves (Figures 1, 5), the alignment-uniformity plane (Figure 6), label
placement and PNG+PDF writing."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..storage import atomic_path

#: The paper's figures are one column wide (3.3 in) or two (6.9 in).
COLUMN_WIDTH_IN = 3.3
PAGE_WIDTH_IN = 6.9


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
def pyplot_and_seaborn():
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
    plt, sns = pyplot_and_seaborn()
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
    plt, _ = pyplot_and_seaborn()
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
