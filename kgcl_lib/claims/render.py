"""The claims table for people: a display frame, Markdown and LaTeX, summary sentences and headline
numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import fmt_number, fmt_p, latex_escape
from .definitions import CLAIMS, NOT_TESTABLE
from .statistics import ALPHA


# --------------------------------------------------------------------------------------------
# Rendering and summary
# --------------------------------------------------------------------------------------------
def _num(x, d=4) -> str:
    return fmt_number(None if x is None or (isinstance(x, float) and not np.isfinite(x)) else float(x), d)


def _effect(r) -> str:
    return "–" if not np.isfinite(r["diff"]) else f"{r['diff']:+.4f}"


def _paper(r) -> str:
    return "–" if not np.isfinite(r["paper_diff"]) else f"{r['paper_diff']:+.4f}"


def _count(x) -> str:
    return "–" if not np.isfinite(x) else f"{int(x):,}"


def _claim_label(r) -> str:
    return str(r["claim"]) if _is_paper_claim(r.get("paper_claim")) else f"{r['claim']} (extra)"


def _is_paper_claim(value) -> bool:
    """``paper_claim`` cell -> bool (missing counts as a claim of the paper)."""
    return True if value is None or (isinstance(value, float) and np.isnan(value)) else bool(value)


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings, one column per reported quantity (what the notebook shows).

    *Seeds* are independent replicates (the unit every test runs on), *Users* the distinct test
    users behind a per-user metric (not user × seed pairs); *Test* names the test of the row."""
    recs = table.to_dict("records")
    out = pd.DataFrame({
        "Claim": [_claim_label(r) for r in recs], "Dataset": table["dataset"], "Metric": table["metric"],
        "Ours": [_num(x) for x in table["ours"]], "Baseline": [_num(x) for x in table["baseline"]],
        "Effect (Δ)": [_effect(r) for r in recs],
        "95% CI": ["–" if not np.isfinite(lo) else f"[{lo:+.4f}, {hi:+.4f}]"
                   for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "p (Holm)": ["–" if not np.isfinite(p) else f"{fmt_p(p)} ({fmt_p(ph)})" for p, ph in zip(table["p"], table["p_holm"])],
        "Test": [t if t else "–" for t in table["test"].fillna("")],
        "Seeds": [_count(x) for x in table["n_seeds"]], "Users": [_count(x) for x in table["n_users"]],
        "Paper Δ": [_paper(r) for r in recs],
        "Verdict": table["verdict"].astype(str),
    })
    return out


#: Unicode in cells and quotes -> LaTeX that pdflatex reads without extra packages.
_TEX_SYMBOLS = {"Δ": r"$\Delta$", "γ": r"$\gamma$", "α": r"$\alpha$", "→": r"$\to$", "−": "-", "×": r"$\times$",
                "§": r"\S{}", "–": "--", "ℓ": r"$\ell$", "≥": r"$\geq$", "≤": r"$\leq$", "½": "1/2", "√": r"$\surd$",
                "±": r"$\pm$", "…": "...", "—": "---", "“": "``", "”": "''"}


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
    md.append("|" + "---|" * 3 + "---:|" * 5 + "---|" + "---:|" * 3 + "---|" * 2)
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
        kind = "Claim" if _is_paper_claim(sub["paper_claim"]) else "Extra question"
        md.append(f"- **{kind} {cid}** ({sub['where']}): {sub['statement']} — *arms:* {sub['arms']}")
    markdown = "\n".join(md) + "\n"

    tex = [r"\begin{table*}[t]", r"\centering", r"\scriptsize"]
    if caption:
        tex.append(rf"\caption{{{_tex(caption)}}}")
    if label:
        tex.append(rf"\label{{{label}}}")
    tex.append(r"\begin{tabular}{lll" + "r" * 5 + "l" + "r" * 3 + "l}")
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


def _row_name(r) -> str:
    return f"{'claim' if _is_paper_claim(r.paper_claim) else 'extra question'} {r.claim} {r.metric} on {r.dataset}"


def summary_sentences(table: pd.DataFrame) -> list[str]:
    """Plain sentences that say what the table shows (notebook 11's closing cell and the README's
    generated summary): verdict counts for the paper's claims and the extra questions, every
    supported / contradicted row with its effect and Holm p, the inconclusive rows' MDE range,
    the one-seed rows, the reasons rows are not testable, and the sign agreement with the paper."""
    out = []
    verdict = table["verdict"].astype(str)
    nt = verdict.str.startswith(NOT_TESTABLE)
    tested = table[~nt]
    kind = verdict.str.split(" ").str[0].where(~nt, NOT_TESTABLE)
    for paper_claim, label in ((True, "the paper's claims"), (False, "the extra questions (not claims of the paper)")):
        is_claim = table["paper_claim"].map(_is_paper_claim).astype(bool)
        mask = is_claim if paper_claim else ~is_claim
        if not mask.any():
            continue
        c = kind[mask].value_counts()
        out.append(f"Of {int(mask.sum())} rows for {label}, {int(c.get('supported', 0))} are supported, "
                   f"{int(c.get('contradicted', 0))} contradicted, {int(c.get('inconclusive', 0))} inconclusive and "
                   f"{int(c.get(NOT_TESTABLE, 0))} not testable here (Holm over all {len(tested)} tested rows, "
                   f"family-wise α = {ALPHA:g}).")
    for v in ("supported", "contradicted"):
        sub = tested[kind[~nt] == v]
        if len(sub):
            items = "; ".join(f"{_row_name(r)} (Δ {r.diff:+.4f}, Holm p {r.p_holm:.2g}, {r.test})"
                              for r in sub.itertuples())
            out.append(f"{v.capitalize()}: {items}.")
    inc = tested[(kind[~nt] == "inconclusive") & tested["mde"].notna()]
    if len(inc):
        worst = inc.loc[inc["mde"].abs().idxmax()]
        out.append(f"The {len(inc)} inconclusive rows with an MDE could have detected effects of |Δ| ≥ "
                   f"{inc['mde'].abs().min():.4g} to {inc['mde'].abs().max():.4g} with 80 % power at the Holm level "
                   f"each row faces (largest: claim {worst['claim']} {worst['metric']} on {worst['dataset']}); "
                   f"more seeds shrink this roughly as 1/√seeds.")
    eq = tested[tested["margin"].notna()] if "margin" in tested.columns else tested.iloc[:0]
    if len(eq):
        out.append("Claim 7 (LLM vs human synopses) is an equivalence test (TOST) against margins fixed before "
                   "the runs (half the human-text gain in the paper's Table 5): "
                   + "; ".join(f"{r.metric} on {r.dataset} Δ {r.diff:+.4f} (margin ±{r.margin:g}) — {r.verdict}"
                               for r in eq.itertuples()) + ".")
    one = table[verdict.str.contains("1 seed: descriptive only", regex=False)]
    if len(one):
        out.append(f"{len(one)} rows have one seed and are descriptive only: "
                   + ", ".join(f"claim {c}" for c in dict.fromkeys(one["claim"])) + ".")
    nts = table[nt & ~verdict.str.contains("1 seed: descriptive only", regex=False)]
    if len(nts):
        reasons = nts.groupby("verdict", sort=False)["claim"].agg(lambda c: ", ".join(dict.fromkeys(c)))
        out.append("Not testable here: " + "; ".join(f"claim(s) {c} — {v[len(NOT_TESTABLE) + 2:-1]}"
                                                       for v, c in reasons.items()) + ".")
    paper = tested[tested["paper_diff"].notna() & tested["diff"].notna()]
    if len(paper):
        same = int((np.sign(paper["diff"]) == np.sign(paper["paper_diff"])).sum())
        out.append(f"Where the paper prints the same contrast, our effect has the paper's sign in {same} of "
                   f"{len(paper)} tested rows (paper numbers: ML-20M / Book-Crossing at full scale).")
    return out


def headlines(table: pd.DataFrame) -> dict:
    """Headline numbers for :func:`kgcl_lib.report.save_headlines`."""
    key = table["claim"] + "|" + table["dataset"] + "|" + table["metric"]
    return {"verdicts": dict(zip(key, table["verdict"])),
            "effects": {k: d for k, d in zip(key, table["diff"]) if np.isfinite(d)},
            "p_holm": {k: p for k, p in zip(key, table["p_holm"]) if np.isfinite(p)},
            "counts": table["verdict"].map(lambda v: NOT_TESTABLE if v.startswith(NOT_TESTABLE) else v.split(" ")[0])
            .value_counts().to_dict()}
