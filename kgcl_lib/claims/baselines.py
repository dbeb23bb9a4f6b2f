"""An added check, *not a claim of the paper* (issue 29): "the paper's best model beats the best
tuned simple baseline", per metric and dataset, judged with the same statistics as the claims.

For each metric of :data:`BASELINE_METRICS` and each dataset:

* the *best tuned simple baseline* is the simple baseline (popularity, MF, LightGCN; notebook
  04's ``baselines`` manifest) with the highest mean of that metric over seeds;
* the *paper's best model* is its proposed model :data:`~kgcl_lib.claims.definitions.PROPOSED`
  (semantic text + CL title+genre); on a dataset without those runs (no text source, KG-attribute
  CL pairs) the best KGCN configuration of our grid by the same metric stands in, named in the
  row's note.

The rows are built by :func:`~kgcl_lib.claims.rows.contrast_rows` (paired over seeds -- both
models see the same split of every seed -- or, for Recall/NDCG, the per-user bootstrap) and
judged with the claims in one Holm family (:func:`claims_with_baselines`), so their verdicts
read like every other row's.  Each (metric) check is one :class:`~kgcl_lib.claims.Claim` over
its own frame, in which the best baseline's runs carry the variant :data:`BEST_BASELINE`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..report.baselines import BASELINE_LABELS, best_baseline
from .definitions import CLAIMS, PROPOSED, Claim
from .table import claims_table

#: Metrics of the check (AUC, F1 of Table 2; NDCG@20 of Table 3).
BASELINE_METRICS = ("test_auc", "test_f1", "ndcg@20")
#: Variant label the best tuned simple baseline's runs get in the check's frames.
BEST_BASELINE = "best_simple_baseline"
#: ``where`` of the check's rows: states that the paper makes no such claim.
WHERE = "added check (issue 29), not a claim of the paper"
QUOTE = "the paper's best model beats the best tuned simple baseline (popularity, MF, LightGCN)"


def _check_id(metric: str) -> str:
    return "B:" + {"test_auc": "auc", "test_f1": "f1"}.get(metric, metric)


def _manifest(metric: str) -> str:
    return f"baselines:{metric}"


def baseline_claims(metrics: Sequence[str] = BASELINE_METRICS) -> tuple[Claim, ...]:
    """One :class:`Claim` (kind ``contrast``) per metric: PROPOSED vs :data:`BEST_BASELINE`."""
    return tuple(Claim(id=_check_id(m), quote=QUOTE, where=WHERE, kind="contrast", manifest=_manifest(m),
                       arms="+CL title+genre with text vs the best tuned simple baseline (by this metric)",
                       contrasts=((PROPOSED, ("without", BEST_BASELINE)),), metrics=(m,), direction=1,
                       paper_table=None, paper_claim=False) for m in metrics)


def check_frames(grid: pd.DataFrame | None, baselines: pd.DataFrame | None,
                 metrics: Sequence[str] = BASELINE_METRICS) -> tuple[dict[str, pd.DataFrame], dict[tuple, str]]:
    """``({manifest: frame}, {(dataset, metric): note})`` for :func:`baseline_claims`.

    ``grid``: notebook 04's KGCN frame (as :func:`~kgcl_lib.claims.load_frames` returns it);
    ``baselines``: :func:`kgcl_lib.report.baseline_frame` of the ``baselines`` manifest
    (``variant`` = backbone name).  In each metric's frame the best baseline's runs read
    ``("without", BEST_BASELINE)``; where the proposed model has no runs, the best KGCN
    configuration by that metric is relabelled ``PROPOSED`` (the note says which).
    """
    frames, notes = {}, {}
    if grid is None or baselines is None or grid.empty or baselines.empty:
        return frames, notes
    on_kgcn = grid["backbone"].fillna("kgcn") == "kgcn" if "backbone" in grid.columns else True
    kgcn = grid[(grid["variant"] != "kgcn_original") & on_kgcn]  # the paper's model runs on KGCN
    for m in metrics:
        if m not in baselines.columns or m not in kgcn.columns:
            continue
        best = best_baseline(baselines, m)
        parts = []
        for ds, name in best.items():
            b = baselines[(baselines["dataset"] == ds) & (baselines["variant"] == name)]
            parts.append(b.assign(text="without", variant=BEST_BASELINE))
            k = kgcn[kgcn["dataset"] == ds]
            has_proposed = ((k["text"] == PROPOSED[0]) & (k["variant"] == PROPOSED[1]) & k[m].notna()).any()
            note = f"best tuned simple baseline: {BASELINE_LABELS.get(name, name)}"
            if not has_proposed and len(k):
                means = k.groupby(["text", "variant"])[m].mean().dropna()
                if len(means):
                    text, variant = means.idxmax()
                    # Only the stand-in's runs, relabelled: the dataset's "with text" cells (n/a,
                    # or text source "none") would otherwise mark the row "no text source".
                    k = k[(k["text"] == text) & (k["variant"] == variant)].assign(
                        text=PROPOSED[0], variant=PROPOSED[1], text_source=None, synopses=None)
                    note += f"; no {PROPOSED[0]}/{PROPOSED[1]} runs: the best KGCN configuration ({text}/{variant}) stands in"
            parts.append(k)
            notes[(ds, m)] = note
        frames[_manifest(m)] = pd.concat(parts, ignore_index=True)
    return frames, notes


def claims_with_baselines(frames: dict, datasets: Sequence[str], baselines: pd.DataFrame | None, *,
                          metrics: Sequence[str] = BASELINE_METRICS, claims: Sequence[Claim] = CLAIMS, **kw) -> pd.DataFrame:
    """The claims table (:func:`~kgcl_lib.claims.claims_table`, ``kw`` passed on) with the check's
    rows appended and judged in the same Holm family; without baselines, the claims table alone.
    The check's rows carry ``where`` = :data:`WHERE` and name the compared models in ``note``."""
    extra_frames, notes = check_frames(frames.get("grid"), baselines, metrics)
    if not extra_frames:
        return claims_table(frames, datasets, claims=claims, **kw)
    checks = tuple(c for c in baseline_claims(metrics) if c.manifest in extra_frames)
    missing = dict(kw.pop("missing", None) or {})
    table = claims_table({**frames, **extra_frames}, datasets, claims=tuple(claims) + checks, missing=missing, **kw)
    ids = {c.id: c.metrics[0] for c in checks}
    for i in np.flatnonzero(table["claim"].isin(list(ids)).to_numpy()):
        key = (table.at[table.index[i], "dataset"], ids[table.at[table.index[i], "claim"]])
        if key in notes:
            old = table.at[table.index[i], "note"]
            table.at[table.index[i], "note"] = notes[key] + (f"; {old}" if isinstance(old, str) and old else "")
    return table
