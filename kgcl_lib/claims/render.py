"""The claims table for people: a display frame, Markdown and LaTeX, summary sentences and headline
numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import latex_escape, fmt_number, fmt_p
from .definitions import CLAIMS, NOT_TESTABLE
from .statistics import ALPHA


# --------------------------------------------------------------------------------------------
# Rendering and summary
# --------------------------------------------------------------------------------------------
def _num(x, d=4) -> str:
    return fmt_number(None if x is None or (isinstance(x, float) and not np.isfinite(x)) else float(x), d)


def _pct(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:+.1f}%"


def _effect(r) -> str:
    if not np.isfinite(r["diff"]):
        return "–"
    rel = f" ({_pct(r['rel'])})" if np.isfinite(r["rel"]) else ""
    return f"{r['diff']:+.4f}{rel}"


def _paper(r) -> str:
    if not np.isfinite(r["paper_diff"]):
        return "–"
    rel = f" ({_pct(r['paper_rel'])})" if np.isfinite(r["paper_rel"]) else ""
    return f"{r['paper_diff']:+.4f}{rel}"


def _n(r) -> str:
    if not np.isfinite(r["n_seeds"]):
        return "–"
    k = int(r["n_seeds"])
    s = f"{k} seed×γ units" if "units" in str(r["method"]) else f"{k} seed" + ("s" if k != 1 else "")
    if np.isfinite(r["n_users"]):
        s += f", {int(r['n_users']):,} users"
    return s


def _verdict(r) -> str:
    v = str(r["verdict"])
    if v == "inconclusive" and np.isfinite(r["mde"]):
        return f"inconclusive (MDE {abs(r['mde']):.4f})"
    return v


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings, one column per reported quantity (what the notebook shows)."""
    out = pd.DataFrame({
        "Claim": table["claim"], "Dataset": table["dataset"], "Metric": table["metric"],
        "Ours": [_num(x) for x in table["ours"]], "Baseline": [_num(x) for x in table["baseline"]],
        "Effect (Δ, rel.)": [_effect(r) for r in table.to_dict("records")],
        "95% CI": ["–" if not np.isfinite(lo) else f"[{lo:+.4f}, {hi:+.4f}]"
                   for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "p (Holm)": ["–" if not np.isfinite(p) else f"{fmt_p(p)} ({fmt_p(ph)})" for p, ph in zip(table["p"], table["p_holm"])],
        "n": [_n(r) for r in table.to_dict("records")],
        "Paper Δ": [_paper(r) for r in table.to_dict("records")],
        "Verdict": [_verdict(r) for r in table.to_dict("records")],
    })
    return out


#: Unicode in cells and quotes -> LaTeX that pdflatex reads without extra packages.
_TEX_SYMBOLS = {"Δ": r"$\Delta$", "γ": r"$\gamma$", "α": r"$\alpha$", "→": r"$\to$", "−": "-", "×": r"$\times$",
                "§": r"\S{}", "–": "--", "ℓ": r"$\ell$", "≥": r"$\geq$", "≤": r"$\leq$", "½": "1/2", "√": r"$\surd$"}


def _tex(text: str) -> str:
    out = latex_escape(str(text))
    for sym, rep in _TEX_SYMBOLS.items():
        out = out.replace(sym, rep)
    return out


def render(table: pd.DataFrame, caption: str = "", label: str = "tab:claims") -> tuple[str, str]:
    """Markdown and LaTeX of the claims table, then the claims quoted with where they are.

    Same conventions as :func:`kgcl_lib.report.format_table`: a caption in italics, a repeated
    claim id blanked, LaTeX ``table*`` with booktabs rules.
    """
    disp = display_frame(table)
    notes = table["note"].fillna("").to_numpy()
    md = [f"*{caption}*\n"] if caption else []
    head = list(disp.columns) + ["Note"]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * 3 + "---:|" * 7 + "---|" * 2)
    prev = None
    for i, r in enumerate(disp.itertuples(index=False)):
        cells = [str(c).replace("|", "\\|") for c in r] + [notes[i]]
        if r[0] == prev:
            cells[0] = ""
        prev = r[0]
        md.append("| " + " | ".join(cells) + " |")
    md.append("")
    seen = dict.fromkeys(table["claim"])
    quotes = {c.id: c for c in CLAIMS}
    for cid in seen:
        sub = table[table["claim"] == cid].iloc[0]
        md.append(f"- **Claim {cid}** ({sub['where']}): {sub['statement']}")
    markdown = "\n".join(md) + "\n"

    tex = [r"\begin{table*}[t]", r"\centering", r"\scriptsize"]
    if caption:
        tex.append(rf"\caption{{{_tex(caption)}}}")
    if label:
        tex.append(rf"\label{{{label}}}")
    tex.append(r"\begin{tabular}{lll" + "r" * 7 + "l}")
    tex.append(r"\toprule")
    tex.append(" & ".join(_tex(h) for h in disp.columns) + r" \\")
    tex.append(r"\midrule")
    prev = None
    for r in disp.itertuples(index=False):
        cells = [_tex(str(c)) for c in r]
        if r[0] == prev:
            cells[0] = ""
        elif prev is not None:
            tex.append(r"\midrule")
        prev = r[0]
        tex.append(" & ".join(cells) + r" \\")
    tex += [r"\bottomrule", r"\end{tabular}"]
    tex.append(r"\par\smallskip\raggedright " + " ".join(
        rf"\textbf{{{cid}}} ({_tex(quotes[cid].where if cid in quotes else '')}): "
        rf"{_tex(table[table['claim'] == cid].iloc[0]['statement'])}." for cid in seen))
    tex.append(r"\end{table*}")
    return markdown, "\n".join(tex) + "\n"


def summary_sentences(table: pd.DataFrame) -> list[str]:
    """Plain sentences that say what the table shows (the notebook's closing cell)."""
    out = []
    tested = table[~table["verdict"].str.startswith(NOT_TESTABLE)]
    counts = tested["verdict"].value_counts()
    out.append(f"Of {len(table)} claim × metric × dataset rows, {len(tested)} could be tested here: "
               f"{counts.get('supported', 0)} supported, {counts.get('contradicted', 0)} contradicted, "
               f"{counts.get('inconclusive', 0)} inconclusive (Holm-corrected, α = {ALPHA:g}).")
    for verdict in ("supported", "contradicted"):
        sub = tested[tested["verdict"] == verdict]
        if len(sub):
            items = ", ".join(f"claim {r.claim} {r.metric} on {r.dataset} (Δ {r.diff:+.4f})" for r in sub.itertuples())
            out.append(f"{verdict.capitalize()}: {items}.")
    inc = tested[(tested["verdict"] == "inconclusive") & tested["mde"].notna()]
    if len(inc):
        worst = inc.loc[inc["mde"].abs().idxmax()]
        out.append(f"The inconclusive rows could only have detected effects of |Δ| ≥ {inc['mde'].abs().min():.4f} "
                   f"to {inc['mde'].abs().max():.4f} with 80 % power (largest: claim {worst['claim']} "
                   f"{worst['metric']} on {worst['dataset']}); more seeds shrink this as 1/√seeds.")
    cold = tested[(tested["claim"] == "5") & tested["metric"].str.contains("bottom")]
    for r in cold.itertuples():
        out.append(f"Cold start on {r.dataset}, {r.metric.split(': ')[1]}: the gain in NDCG@100 is {r.ours:+.4f} vs "
                   f"{r.baseline:+.4f} over all users (difference {r.diff:+.4f}, 95 % CI [{r.ci_low:+.4f}, "
                   f"{r.ci_high:+.4f}], {r.note}) — {r.verdict}.")
    nt = table[table["verdict"].str.startswith(NOT_TESTABLE)]
    if len(nt):
        reasons = nt.groupby("verdict")["claim"].agg(lambda c: ", ".join(dict.fromkeys(c)))
        out.append("Not testable here: " + "; ".join(f"claim(s) {c} — {v[len(NOT_TESTABLE) + 2:-1]}"
                                                       for v, c in reasons.items()) + ".")
    paper = tested[tested["paper_diff"].notna()]
    if len(paper):
        same = int((np.sign(paper["diff"]) == np.sign(paper["paper_diff"])).sum())
        out.append(f"Where the paper prints the same contrast, our effect has the paper's sign in {same} of "
                   f"{len(paper)} rows (paper numbers: ML-20M / Book-Crossing at full scale).")
    return out


def headlines(table: pd.DataFrame) -> dict:
    """Headline numbers for :func:`kgcl_lib.report.save_headlines`."""
    key = table["claim"] + "|" + table["dataset"] + "|" + table["metric"]
    return {"verdicts": dict(zip(key, table["verdict"])),
            "effects": {k: d for k, d in zip(key, table["diff"]) if np.isfinite(d)},
            "p_holm": {k: p for k, p in zip(key, table["p_holm"]) if np.isfinite(p)},
            "counts": table["verdict"].map(lambda v: NOT_TESTABLE if v.startswith(NOT_TESTABLE) else v)
            .value_counts().to_dict()}
