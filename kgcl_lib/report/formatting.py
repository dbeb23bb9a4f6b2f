"""Table formatting: the paper's transcribed numbers, number / p-value / rank formatting, the Markdown
and LaTeX writer, captions."""

from __future__ import annotations

import io
import math
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..constants import PAPER_TEXT_SOURCES, TEXT_ARM_LABELS, TEXT_SOURCES, VARIANT_LABELS, VARIANT_ORDER
from ..storage import atomic_path

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


def latex_escape(s: str) -> str:
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
    index, columns = list(index), list(columns)
    long = _ranked_cells(df, paper_df, index, columns, list(compare_within), decimals)
    row_keys = _sorted_keys(long, index, row_order)
    col_keys = _sorted_keys(long, columns, row_order)
    cells: dict[tuple, tuple[str, str]] = {}
    for r in long.to_dict("records"):
        cells[(tuple(r[c] for c in index), tuple(r[c] for c in columns))] = (r["cell"], r["mark"])
    head = [c.capitalize() for c in index]
    row_labels = _row_labels(row_keys, index)
    markdown = _markdown_table(cells, head, row_keys, row_labels, columns, col_keys, caption)
    latex = _latex_table(cells, head, row_keys, row_labels, index, columns, col_keys, caption, label)
    return markdown, latex


def _ranked_cells(df: pd.DataFrame, paper_df: pd.DataFrame | None, index: list, columns: list, compare_within: list,
                  decimals: int) -> pd.DataFrame:
    """The long frame (ours, with the paper's beside it) plus each row's rank ``mark`` and ``cell`` text."""
    long = combine_with_paper(df, paper_df) if paper_df is not None or "source" not in df.columns else df.copy()
    missing = [c for c in index + columns + ["metric", "value"] if c not in long.columns]
    if missing:
        raise ValueError(f"format_table: long frame lacks columns {missing}; has {list(long.columns)}")
    long = long.reset_index(drop=True)
    long["mark"] = rank_marks(long, compare_within)
    long["cell"] = [_cell_text(r, decimals) for r in long.to_dict("records")]
    return long


def _sorted_keys(long: pd.DataFrame, levels: list, row_order: dict | None) -> list[tuple]:
    """The distinct ``levels`` tuples of ``long``, sorted level by level: values listed in
    ``row_order`` (or the variant / text orders) first in that order, the rest by first appearance."""

    def ordered(col: str, values) -> list:
        seen = list(dict.fromkeys(values))
        order = (row_order or {}).get(col) or (list(VARIANT_ORDER) if col == "variant" else
                                               list(TEXT_LABELS) if col == "text" else [])
        return [v for v in order if v in seen] + [v for v in seen if v not in order]

    keys = list(dict.fromkeys(map(tuple, long[levels].to_numpy().tolist())))
    for lvl in reversed(range(len(levels))):  # stable sort from the last level: lexicographic order
        pos = {v: i for i, v in enumerate(ordered(levels[lvl], long[levels[lvl]]))}
        keys.sort(key=lambda k: pos[k[lvl]])
    return keys


def _markdown_table(cells: dict, head: list, row_keys: list, row_labels: list, columns: list, col_keys: list,
                    caption: str) -> str:
    """Markdown: best as ``**x**``, second as ``<u>x</u>``."""

    def md_cell(c):
        text, mark = c
        text = text.replace("*", r"\*")  # significance stars must not read as emphasis
        return f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text

    col_names = [" / ".join(_label(columns[i], k[i]) for i in range(len(columns))) for k in col_keys]
    md = []
    if caption:
        md.append(f"*{caption}*\n")
    md.append("| " + " | ".join(head + col_names) + " |")
    md.append("|" + "---|" * len(head) + "---:|" * len(col_names))
    for rk, shown in zip(row_keys, row_labels):
        md.append("| " + " | ".join(shown + [md_cell(cells.get((rk, ck), ("", ""))) for ck in col_keys]) + " |")
    return "\n".join(md) + "\n"


def _latex_table(cells: dict, head: list, row_keys: list, row_labels: list, index: list, columns: list, col_keys: list,
                 caption: str, label: str) -> str:
    """LaTeX: a header row per column level, multicolumn spans over repeated values; best as
    ``\\textbf{x}``, second as ``\\underline{x}``."""

    def tex_cell(c):
        text, mark = c
        t = latex_escape(text)
        return rf"\textbf{{{t}}}" if mark == "best" else rf"\underline{{{t}}}" if mark == "second" else t

    tex = [r"\begin{table*}[t]", r"\centering", r"\small"]
    if caption:
        tex.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        tex.append(rf"\label{{{label}}}")
    tex.append(r"\begin{tabular}{" + "l" * len(index) + "r" * len(col_keys) + "}")
    tex.append(r"\toprule")
    for lvl in range(len(columns)):
        row = [""] * len(index) if lvl < len(columns) - 1 else [latex_escape(h) for h in head]
        i = 0
        while i < len(col_keys):
            j = i
            while j + 1 < len(col_keys) and col_keys[j + 1][: lvl + 1] == col_keys[i][: lvl + 1]:
                j += 1
            name = latex_escape(_label(columns[lvl], col_keys[i][lvl]))
            row.append(name if j == i else rf"\multicolumn{{{j - i + 1}}}{{c}}{{{name}}}")
            i = j + 1
        tex.append(" & ".join(row) + r" \\")
    tex.append(r"\midrule")
    for n, (rk, shown) in enumerate(zip(row_keys, row_labels)):
        if n and rk[0] != row_keys[n - 1][0]:
            tex.append(r"\midrule")
        tex.append(" & ".join([latex_escape(t) for t in shown] + [tex_cell(cells.get((rk, ck), ("", ""))) for ck in col_keys])
                   + r" \\")
    tex += [r"\bottomrule", r"\end{tabular}", r"\end{table*}"]
    return "\n".join(tex) + "\n"


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


def save_caption(out_dir: str | Path, name: str, text: str) -> Path:
    """Write a figure's caption next to it as ``<name>.caption.txt``."""
    path = Path(out_dir) / f"{name}.caption.txt"
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return path
