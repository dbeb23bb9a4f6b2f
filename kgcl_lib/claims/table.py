"""The claims table: every claim on every dataset, Holm-corrected and judged, from a results directory."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..experiments import load_manifest, trained
from .definitions import CLAIMS, CLAIMS_COLUMNS, COLD_PERCENTILES, GAMMA_DIRECTIONS, Claim
from .rows import UserArrays, cold_rows, contrast_rows, gamma_rows, noninferior_rows, prepare, untestable
from .statistics import ALPHA, holm


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------
def judge(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Holm-correct the p-values across the table and set the verdicts (returns a copy)."""
    t = table.copy()
    verdict = t["verdict"].fillna("").to_numpy(dtype=object)
    testable = verdict == ""
    p = t["p"].to_numpy(dtype=float)
    p_holm = np.full(len(t), np.nan)
    p_holm[testable] = holm(p[testable])
    diff, direction = t["diff"].to_numpy(dtype=float), t["direction"].to_numpy(dtype=float)
    sign = np.sign(diff) * direction
    sig = p_holm < alpha
    new = np.where(sig & (sign > 0), "supported", np.where(sig & (sign < 0), "contradicted", "inconclusive"))
    if "margin" in t.columns:  # non-inferiority rows (claim 7)
        margin = t["margin"].to_numpy(dtype=float)
        ni = testable & np.isfinite(margin)
        # supported: CI lower bound above the margin; contradicted: CI upper bound below it.
        above, below = t["ci_low"].to_numpy(float) > margin, t["ci_high"].to_numpy(float) < margin
        new = np.where(ni, np.where(above, "supported", np.where(below, "contradicted", "inconclusive")), new)
    verdict[testable] = new[testable]
    mde = t["mde"].to_numpy(dtype=float).copy()
    mde[testable & (verdict != "inconclusive")] = np.nan
    t["p_holm"], t["verdict"], t["mde"] = p_holm, verdict.astype(str), mde
    return t


def claims_table(frames: dict[str, pd.DataFrame | None], datasets: Sequence[str], *,
                 users: UserArrays | None = None, missing: dict[str, str] | None = None,
                 claims: Sequence[Claim] = CLAIMS, alpha: float = ALPHA, n_boot: int = 2000,
                 cold_percentiles: Sequence[float] = COLD_PERCENTILES, seed: int = 17) -> pd.DataFrame:
    """Every claim on every dataset (columns :data:`CLAIMS_COLUMNS`), Holm-corrected and judged.

    Args:
        frames: ``{"grid": df, "gamma": df, "llm": df}`` — :func:`kgcl_lib.experiments.load_results`
            frames of each manifest; ``None`` or absent when that notebook did not run.
        datasets: datasets to judge (rows for each).
        users: per-user loader for claim 5 (``None``: claim 5 not testable).
        missing: ``{manifest: reason}`` shown for claims whose frame is absent.
    """
    missing = missing or {}
    rng = np.random.default_rng(seed)
    rows = []
    cache: dict = {}
    present = {name: set() if df is None or df.empty else set(df["dataset"].unique()) for name, df in frames.items()}

    def prepared(df, name, ds, units=("seed",)):
        if (name, ds, units) not in cache:
            cache[(name, ds, units)] = prepare(df, ds, units)
        return cache[(name, ds, units)]

    for claim in claims:
        df = frames.get(claim.manifest)
        for ds in datasets:
            metrics = claim.metrics if claim.kind != "cold" else ["ndcg@100 gain (cold start)"]
            if ds not in present.get(claim.manifest, ()):
                reason = missing.get(claim.manifest) or (f"no '{claim.manifest}' runs for this dataset")
                rows += [untestable(claim, ds, m, reason, direction=GAMMA_DIRECTIONS.get(m, claim.direction)
                                    if claim.kind == "gamma" else claim.direction) for m in metrics]
            elif claim.kind == "contrast":
                rows += contrast_rows(claim, df, ds, alpha, prepared=prepared(df, claim.manifest, ds), users=users,
                                      n_boot=n_boot, rng=rng)
            elif claim.kind == "gamma_contrast":
                rows += contrast_rows(claim, df, ds, alpha, units=("seed", "gamma"),
                                      prepared=prepared(df, claim.manifest, ds, ("seed", "gamma")))
            elif claim.kind == "gamma":
                rows += gamma_rows(claim, df, ds, alpha)
            elif claim.kind == "noninferior":
                rows += noninferior_rows(claim, df, ds, alpha, users=users, n_boot=n_boot, rng=rng)
            elif claim.kind == "cold":
                if users is None:
                    rows += [untestable(claim, ds, m, "no per-user arrays loader") for m in metrics]
                else:
                    rows += cold_rows(claim, df, ds, users, percentiles=cold_percentiles, n_boot=n_boot, rng=rng,
                                      alpha=alpha)
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
