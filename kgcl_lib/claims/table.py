"""The claims table: every claim on every dataset, Holm-corrected and judged, from a results directory."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..experiments import load_manifest, trained
from ..report import domain_of
from ..storage import atomic_path
from .definitions import CLAIMS, CLAIMS_COLUMNS, COLD_PERCENTILES, Claim
from .rows import (
    UserArrays, cold_rows, contrast_rows, equivalence_rows, gamma_contrast_rows, gamma_rows, prepare, untestable,
)
from .statistics import ALPHA, POWER, holm, holm_levels, minimum_detectable_effect, verdicts


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------
def judge(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Holm-correct the p-values across the table and set the verdicts and MDEs (returns a copy).

    Tested rows are those with an empty verdict and a finite ``p``. ``level`` is the two-sided
    level each row faces in Holm's step-down (:func:`holm_levels`); an inconclusive row's ``mde``
    is the smallest effect its test detects with 80 % power *at that level* (exact noncentral t).
    Equivalence rows (finite ``margin``) read ``supported`` when their TOST p survives Holm."""
    t = table.copy()
    verdict = t["verdict"].fillna("").to_numpy(dtype=object)
    p = t["p"].to_numpy(dtype=float)
    testable = (verdict == "") & np.isfinite(p)
    p_holm, level = np.full(len(t), np.nan), np.full(len(t), np.nan)
    p_holm[testable] = holm(p[testable])
    level[testable] = holm_levels(p[testable], alpha)
    diff, direction = t["diff"].to_numpy(dtype=float), t["direction"].to_numpy(dtype=float)
    new = verdicts(diff, direction, p_holm, alpha).astype(object)
    margin = t["margin"].to_numpy(dtype=float) if "margin" in t.columns else np.full(len(t), np.nan)
    eq = testable & np.isfinite(margin)
    new[eq] = np.where(p_holm[eq] < alpha, "supported", "inconclusive")
    se = t["se"].to_numpy(dtype=float) if "se" in t.columns else np.full(len(t), np.nan)
    dof = t["df"].to_numpy(dtype=float) if "df" in t.columns else np.full(len(t), np.nan)
    mde = np.full(len(t), np.nan)
    inc = testable & (new == "inconclusive") & ~eq & np.isfinite(se)
    if inc.any():
        mde[inc] = minimum_detectable_effect(se[inc], level[inc], POWER, dof[inc])
    lo, hi = t["ci_low"].to_numpy(dtype=float), t["ci_high"].to_numpy(dtype=float)
    for i in np.flatnonzero(testable):
        v = new[i]
        if v == "inconclusive" and eq[i]:
            outside = lo[i] > margin[i] or hi[i] < -margin[i]
            v = (f"inconclusive (95% CI outside ±{margin[i]:g}: not equivalent)" if outside
                 else f"inconclusive (95% CI not within ±{margin[i]:g})")
        elif v == "inconclusive" and np.isfinite(mde[i]):
            why = ""
            if abs(diff[i]) > mde[i]:  # p < its level, but Holm stopped at an earlier row
                why = "; Holm stopped at a row with smaller p" if p[i] < level[i] else "; |Δ| > MDE by chance"
            v = f"inconclusive (MDE {mde[i]:.4g} at level {level[i]:.2g}{why})"
        verdict[i] = v
    t["p_holm"], t["level"], t["verdict"], t["mde"] = p_holm, level, verdict.astype(str), mde
    return t


def _placeholder_metrics(claim: Claim, dataset: str) -> list[tuple[str, int]]:
    """``[(metric label, direction)]`` of a claim's rows when its runs are absent."""
    if claim.kind == "cold":
        return [("ndcg@100 gain (cold start)", claim.direction)]
    if claim.kind == "gamma":
        return [("ndcg@20: peak at γ 0.8", 1), ("alignment: slope on γ", 1)]
    out = []
    for m in claim.metrics[:4] if claim.id == "3" else claim.metrics:
        d = claim.direction_for(domain_of(dataset), m)
        if d is not None:
            out.append((m, d))
    return out


def claims_table(frames: dict[str, pd.DataFrame | None], datasets: Sequence[str], *,
                 users: UserArrays | None = None, missing: dict[str, str] | None = None,
                 claims: Sequence[Claim] = CLAIMS, alpha: float = ALPHA,
                 cold_percentiles: Sequence[float] = COLD_PERCENTILES,
                 backbone: str = "kgcn") -> pd.DataFrame:
    """Every claim on every dataset (columns :data:`CLAIMS_COLUMNS` + ``se, df``), Holm-corrected
    and judged (:func:`judge`).

    Args:
        frames: ``{"grid": df, "gamma": df, "llm": df}`` — :func:`kgcl_lib.experiments.load_results`
            frames of each manifest; ``None`` or absent when that notebook did not run.
        datasets: datasets to judge (rows for each; a claim the paper states only for another
            domain has no row there).
        users: per-user loader for claim 5 and the distinct-user counts (``None``: claim 5 not
            testable).
        missing: ``{manifest: reason}`` shown for claims whose frame is absent.
        backbone: whose runs are judged (default: the paper's KGCN; other backbones' rows come
            from :func:`kgcl_lib.claims.backbones.backbone_claims_table`).
    """
    missing = missing or {}
    # the paper's manifests hold every backbone's runs: judge ``backbone``'s alone (the added
    # baselines check's frames are built for KGCN's table and pass as they are)
    frames = {name: df if df is None or "backbone" not in df.columns or name not in ("grid", "gamma", "llm")
              else df[df["backbone"].fillna("kgcn") == backbone] for name, df in frames.items()}
    rows = []
    cache: dict = {}
    present = {name: set() if df is None or df.empty else set(df["dataset"].unique()) for name, df in frames.items()}

    def prepared(df, name, ds):
        if (name, ds) not in cache:
            cache[(name, ds)] = prepare(df, ds)
        return cache[(name, ds)]

    for claim in claims:
        df = frames.get(claim.manifest)
        for ds in datasets:
            if ds not in present.get(claim.manifest, ()):
                reason = missing.get(claim.manifest) or (f"no '{claim.manifest}' runs for this dataset")
                rows += [untestable(claim, ds, m, reason, direction=d) for m, d in _placeholder_metrics(claim, ds)]
            elif claim.kind in ("contrast", "highest"):
                rows += contrast_rows(claim, df, ds, alpha, prepared=prepared(df, claim.manifest, ds), users=users)
            elif claim.kind == "gamma_contrast":
                rows += gamma_contrast_rows(claim, df, ds, alpha)
            elif claim.kind == "gamma":
                rows += gamma_rows(claim, df, ds, alpha)
            elif claim.kind == "equivalence":
                rows += equivalence_rows(claim, df, ds, alpha, users=users)
            elif claim.kind == "cold":
                if users is None:
                    rows += [untestable(claim, ds, m, "no per-user arrays loader", direction=d)
                             for m, d in _placeholder_metrics(claim, ds)]
                else:
                    rows += cold_rows(claim, df, ds, users, percentiles=cold_percentiles, alpha=alpha)
            else:
                raise ValueError(f"claim {claim.id}: unknown kind {claim.kind!r}")
    extra = sorted({k for r in rows for k in r} - set(CLAIMS_COLUMNS))
    table = pd.DataFrame.from_records(rows, columns=CLAIMS_COLUMNS + extra)
    return judge(table, alpha)


def load_frames(results_dir) -> tuple[dict[str, pd.DataFrame | None], dict[str, str]]:
    """The ``grid`` / ``gamma`` / ``llm`` manifests' results, and why any is missing."""
    notebook = {"grid": "04_train", "gamma": "09_figure6", "llm": "10_table5_llm"}
    frames, missing = {}, {}
    for name, nb in notebook.items():
        try:
            frame, _ = load_manifest(results_dir, name)
            # n/a cells copy another run (experiments.plan_grid): drop them; KG-pair CL runs keep
            # the variant they were requested as, so the no-text contrasts stay testable
            frame = trained(frame)
            frames[name] = frame.assign(variant=frame["spec_variant"]) if "spec_variant" in frame.columns else frame
        except FileNotFoundError:
            frames[name] = None
            missing[name] = f"notebook {nb} stored no '{name}' runs" + (" (no LLM available?)" if name == "llm" else "")
    return frames, missing


def save_csv(table: pd.DataFrame, path) -> "Path":
    """Write the judged table to ``path`` (CSV, atomically): what ``scripts/readme_results.py``
    turns into the README's summary sentences."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def load_csv(path) -> pd.DataFrame:
    """A table written by :func:`save_csv` (claim ids as strings, ``paper_claim`` as bool, empty
    text cells as "")."""
    t = pd.read_csv(path, dtype={"claim": str})
    t["paper_claim"] = t["paper_claim"].astype(str).str.lower().eq("true")
    for c in ("verdict", "test", "note", "metric", "dataset", "statement", "arms", "where"):
        if c in t.columns:
            t[c] = t[c].fillna("").astype(str)
    return t
