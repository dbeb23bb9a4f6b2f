"""Claims 1–4 per backbone, and "the gain holds on every backbone" (issue 30).

The paper says its semantic text and content CL work with "any KG-based model" (Section 5) but
tests only KGCN.  With a second backbone in the grid (``backbones: [kgcn, ripplenet]``), this
module judges claims 1–4 on each non-KGCN backbone's runs alone (the rows of
:func:`~kgcl_lib.claims.table.claims_table` keep KGCN's runs only) with the same row machinery,
and adds claim ``G``: the proposed model (text + CL title+genre) beats the baseline (no text,
L_base) on that backbone — one verdict per backbone and metric, never a test pooled across
backbones (their scales and baselines differ).

Rows are labelled ``"<id> [<backbone>]"`` in the ``claim`` column and carry a ``backbone``
column; the Holm correction runs within this table (a family of its own, beside KGCN's table).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from ..constants import BASELINE
from .definitions import CLAIMS, PROPOSED, Claim
from .statistics import ALPHA
from .table import claims_table, judge

#: The paper's claims that are judged again on every backbone.
PER_BACKBONE_CLAIMS = ("1", "2", "3", "4")
#: Claim G: the headline gain (text + CL title+genre over the baseline) on one backbone.
GAIN_ON_BACKBONE = Claim(
    id="G", quote="the gain of semantic text + CL (title+genre) over the baseline holds on this backbone "
    "(the paper: the method works with \"any KG-based model\")", where="§5", kind="contrast", manifest="grid",
    arms="+CL title+genre with text vs L_base without text, on this backbone",
    contrasts=((PROPOSED, BASELINE),), metrics=("test_auc", "test_f1", "recall@20", "ndcg@20"), direction=1,
    paper_table=None, about_text=True)


def split_backbones(frames: dict[str, pd.DataFrame | None]) -> tuple[dict, dict[str, dict]]:
    """``(KGCN's frames, {backbone: its frames})`` from :func:`~kgcl_lib.claims.table.load_frames`'
    ``{manifest: frame}`` (frames without a ``backbone`` column are KGCN's)."""
    kgcn, others = {}, {}
    for name, df in frames.items():
        if df is None or "backbone" not in df.columns:
            kgcn[name] = df
            continue
        b = df["backbone"].fillna("kgcn")
        kgcn[name] = df[b == "kgcn"]
        for backbone in dict.fromkeys(b[b != "kgcn"]):
            others.setdefault(backbone, {})[name] = df[b == backbone]
    return kgcn, others


def backbone_claims_table(frames: dict[str, pd.DataFrame | None], datasets: Sequence[str], *, alpha: float = ALPHA,
                          include_kgcn_gain: bool = True, **kw) -> pd.DataFrame:
    """Claims 1–4 and claim B for every backbone in ``frames`` other than KGCN, plus claim G on
    KGCN (``include_kgcn_gain``), judged with :func:`~kgcl_lib.claims.table.claims_table`'s
    machinery; columns :data:`~kgcl_lib.claims.definitions.CLAIMS_COLUMNS` + ``backbone``.
    Empty when ``frames`` hold KGCN's runs only."""
    kgcn, others = split_backbones(frames)
    if not others:
        return pd.DataFrame()
    parts = []
    per = [c for c in CLAIMS if c.id in PER_BACKBONE_CLAIMS]
    groups = ([("kgcn", kgcn, [GAIN_ON_BACKBONE])] if include_kgcn_gain else []) + \
        [(name, fr, [*per, GAIN_ON_BACKBONE]) for name, fr in others.items()]
    for name, fr, claims in groups:
        t = claims_table(fr, datasets, claims=claims, alpha=alpha, backbone=name, **kw)
        parts.append(t.assign(backbone=name, claim=t["claim"] + f" [{name}]"))
    # one Holm family for the backbone rows (verdicts re-derived from the raw p-values)
    table = pd.concat(parts, ignore_index=True)
    testable = ~table["verdict"].astype(str).str.startswith("not testable")
    table.loc[testable, "verdict"] = ""
    return judge(table, alpha)


def with_backbone_rows(table: pd.DataFrame, backbone_rows: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """KGCN's claims table and the per-backbone rows as one table, judged in ONE Holm family (the
    verdicts of both are re-derived from their raw p-values over all tested rows together)."""
    if backbone_rows.empty:
        return table
    both = pd.concat([table, backbone_rows], ignore_index=True)
    testable = ~both["verdict"].astype(str).str.startswith("not testable")
    both.loc[testable, "verdict"] = ""
    return judge(both, alpha)
