"""Significance of Table 2's differences: per-metric t-tests of every variant against the baseline."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import scipy.stats

from .checks import MetricsError

#: Tests accepted by :func:`ttest_vs_baseline`.
T_TESTS = ("welch", "student", "paired")


# ---------------------------------------------------------------------------------------------
# Significance (Table 2)
# ---------------------------------------------------------------------------------------------
def ttest_vs_baseline(
    results: pd.DataFrame,
    baseline: str,
    metrics: Sequence[str] | None = None,
    test: str = "welch",
) -> pd.DataFrame:
    """Mean ± sd per variant and metric, and a two-sided t-test of each variant's seeds against
    the baseline's seeds (Table 2's p-values).

    The paper says only "t-test" over ten trials per model.  The default is **Welch's unequal-
    variance independent two-sample t-test**: models are trained independently per seed, and a
    contrastive variant need not have the baseline's seed-to-seed variance; with equal group
    sizes Welch's t equals Student's t and only its degrees of freedom shrink when the variances
    differ, so little power is lost when they are equal.  ``test="student"`` (pooled variance)
    and ``test="paired"`` (seeds matched by ``seed``; use it when a seed fixes the data split
    for every variant) are available.  t and df are computed here, vectorised over all variant ×
    metric cells; p = 2·P(T_df > |t|) uses ``scipy.stats.t``.

    Args:
        results: one row per run, columns ``variant``, ``seed`` and the metric columns.
        baseline: the ``variant`` value to compare against.
        metrics: metric columns (default: every numeric column except ``seed``).
        test: ``"welch"`` (default), ``"student"`` or ``"paired"``.
    Returns:
        DataFrame, one row per (variant, metric), baseline first: ``variant, metric, n, mean,
        sd`` (sample sd, ddof=1), ``baseline_mean, baseline_sd, diff`` (mean - baseline_mean),
        ``t, df, p, test``.  t/df/p are NaN for the baseline itself, for groups with fewer than
        2 runs, and when both groups have zero variance and equal means.
    Raises:
        MetricsError: missing columns/baseline, NaN metric values, a seed repeated within a
        variant, or (paired) variants whose seed sets differ.
    """
    metrics, variants, values = _checked_inputs(results, baseline, metrics, test)
    order = [baseline] + [v for v in variants if v != baseline]
    frame = pd.concat([results[["variant", "seed"]], values], axis=1)
    grouped = frame.groupby("variant", sort=False)[metrics]
    mean = grouped.mean().reindex(order)  # [n_variants, n_metrics]
    var = grouped.var(ddof=1).reindex(order)
    n = grouped.count().reindex(order).astype(float)
    m0, v0, n0 = mean.loc[baseline], var.loc[baseline], n.loc[baseline]

    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "paired":
            tstat, dof = _paired_t(frame, baseline, order, metrics, n)
        elif test == "welch":
            a, b = var / n, v0 / n0
            se = np.sqrt(a + b)
            tstat = (mean - m0) / se
            dof = (a + b) ** 2 / (a**2 / (n - 1) + b**2 / (n0 - 1))
        else:  # student
            pooled = ((n - 1) * var + (n0 - 1) * v0) / (n + n0 - 2)
            tstat = (mean - m0) / np.sqrt(pooled * (1.0 / n + 1.0 / n0))
            dof = n + n0 - 2
        tstat = tstat.astype(float)
        dof = dof.astype(float)
        # Fewer than two runs on either side: no variance estimate, no test.
        invalid = (n < 2) | (n0 < 2)
        tstat = tstat.mask(invalid)
        dof = dof.mask(invalid | tstat.isna())
        p = 2.0 * scipy.stats.t.sf(np.abs(tstat.to_numpy()), dof.to_numpy())
    p = pd.DataFrame(p, index=order, columns=metrics)
    tstat.loc[baseline] = np.nan
    dof.loc[baseline] = np.nan
    p.loc[baseline] = np.nan
    return _long_table(order, n, mean, var, m0, v0, tstat, dof, p, test)


def _checked_inputs(results, baseline: str, metrics, test: str) -> tuple[list, list, pd.DataFrame]:
    """``(metrics, variants, values)`` after the checks :func:`ttest_vs_baseline` documents;
    ``values`` holds the metric columns as numbers."""
    if test not in T_TESTS:
        raise MetricsError(f"test must be one of {T_TESTS}, got {test!r}")
    if not isinstance(results, pd.DataFrame):
        raise MetricsError(f"results must be a DataFrame, got {type(results).__name__}")
    for col in ("variant", "seed"):
        if col not in results.columns:
            raise MetricsError(f"results lacks the column {col!r} (columns: {list(results.columns)})")
    if metrics is None:
        metrics = [
            c for c in results.columns if c not in ("variant", "seed") and pd.api.types.is_numeric_dtype(results[c])
        ]
    metrics = list(metrics)
    if not metrics:
        raise MetricsError("no metric columns to test")
    missing = [m for m in metrics if m not in results.columns]
    if missing:
        raise MetricsError(f"metric columns not in results: {missing}")
    variants = list(pd.unique(results["variant"]))
    if baseline not in variants:
        raise MetricsError(f"baseline {baseline!r} is not a variant; variants are {variants}")
    values = results[metrics].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any():
        r, c = np.argwhere(values.isna().to_numpy())[0]
        raise MetricsError(
            f"metric {metrics[c]!r} is NaN/non-numeric in results row {results.index[r]} "
            f"(variant {results['variant'].iloc[r]!r}, seed {results['seed'].iloc[r]})"
        )
    dup = results.duplicated(["variant", "seed"])
    if dup.any():
        r = int(np.flatnonzero(dup.to_numpy())[0])
        raise MetricsError(
            f"variant {results['variant'].iloc[r]!r} has seed {results['seed'].iloc[r]} more than once"
        )
    return metrics, variants, values


def _paired_t(frame: pd.DataFrame, baseline: str, order: list, metrics: list, n: pd.DataFrame):
    """Paired t and df ``[n_variants, n_metrics]`` over seeds matched by ``seed``."""
    base = frame[frame["variant"] == baseline].set_index("seed")[metrics]
    seeds0 = set(base.index)
    diff_mean = pd.DataFrame(index=order, columns=metrics, dtype=float)
    diff_var = pd.DataFrame(index=order, columns=metrics, dtype=float)
    for v in order:  # a handful of variants, each fully vectorised over seeds x metrics
        cur = frame[frame["variant"] == v].set_index("seed")[metrics]
        if set(cur.index) != seeds0:
            raise MetricsError(
                f"paired t-test needs the same seeds; variant {v!r} has {sorted(cur.index.tolist())}, "
                f"baseline {baseline!r} has {sorted(base.index.tolist())}"
            )
        d = cur - base.loc[cur.index]
        diff_mean.loc[v] = d.mean()
        diff_var.loc[v] = d.var(ddof=1)
    se = np.sqrt(diff_var / n)
    return diff_mean / se, n - 1


def _long_table(order, n, mean, var, m0, v0, tstat, dof, p, test: str) -> pd.DataFrame:
    """The ``[n_variants, n_metrics]`` frames stacked into one row per (variant, metric)."""

    def long(df: pd.DataFrame, name: str) -> pd.Series:
        return df.stack(future_stack=True).rename(name)

    out = pd.concat(
        [
            long(n.astype(int), "n"),
            long(mean, "mean"),
            long(np.sqrt(var), "sd"),
            long(pd.DataFrame([m0] * len(order), index=order), "baseline_mean"),
            long(pd.DataFrame([np.sqrt(v0)] * len(order), index=order), "baseline_sd"),
            long(mean - m0, "diff"),
            long(tstat, "t"),
            long(dof, "df"),
            long(p, "p"),
        ],
        axis=1,
    )
    out.index.names = ["variant", "metric"]
    out = out.reset_index()
    out["test"] = test
    return out
