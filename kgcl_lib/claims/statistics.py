"""Statistics behind every verdict: t and Welch estimates, Holm's correction, the minimum detectable
effect and the hierarchical (seed, user) bootstrap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import special

ALPHA = 0.05
POWER = 0.8


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------
@dataclass
class Estimate:
    """An effect with its uncertainty. ``df`` is ``None`` for normal-approximation estimates."""

    diff: float
    se: float
    df: float | None
    ci_low: float
    ci_high: float
    p: float
    n_seeds: int
    n_users: int | None = None
    method: str = ""


def minimum_detectable_effect(se: float, alpha: float = ALPHA, power: float = POWER, df: float | None = None) -> float:
    """Smallest true effect a two-sided level-``alpha`` test with standard error ``se`` detects
    with probability ``power``: ``(q(1 − α/2) + q(power)) · se``, ``q`` the normal quantile
    (``df=None``) or Student's t with ``df`` degrees of freedom (the usual approximation)."""
    if not np.isfinite(se):
        return float("nan")
    if df is None:
        return float((special.ndtri(1 - alpha / 2) + special.ndtri(power)) * se)
    return float((special.stdtrit(df, 1 - alpha / 2) + special.stdtrit(df, power)) * se)


def t_estimate(diffs: np.ndarray, alpha: float = ALPHA, method: str = "paired t over seeds") -> Estimate:
    """One-sample t inference on per-unit differences (``float[n]``, n ≥ 2)."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    m = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    q = special.stdtrit(n - 1, 1 - alpha / 2)
    if se == 0:
        p = 0.0 if m != 0 else 1.0
    else:
        p = float(2 * special.stdtr(n - 1, -(abs(m) / se)))
    return Estimate(m, se, n - 1, m - q * se, m + q * se, p, n, method=method)


def welch_estimate(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA) -> Estimate:
    """Welch inference on ``mean(a) − mean(b)`` (runs that do not share seeds)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    m = float(a.mean() - b.mean())
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2
    q = special.stdtrit(dof, 1 - alpha / 2)
    p = (0.0 if m != 0 else 1.0) if se == 0 else float(2 * special.stdtr(dof, -(abs(m) / se)))
    return Estimate(m, se, dof, m - q * se, m + q * se, p, min(len(a), len(b)), method="Welch t (unpaired seeds)")


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if not m:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def _bootstrap_weights(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """``float64[n_boot, n]`` multinomial counts: each row one resample of ``n`` users."""
    draws = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def hierarchical_bootstrap(per_seed: Sequence[dict], statistic: Callable[[dict, np.ndarray], np.ndarray],
                           n_boot: int = 2000, rng: np.random.Generator | None = None, alpha: float = ALPHA,
                           chunk: int = 250) -> tuple[float, np.ndarray]:
    """Two-stage bootstrap: resample seeds, then users within each drawn seed.

    Args:
        per_seed: one dict of per-user arrays per seed (each with ``n`` = its number of users).
        statistic: ``statistic(arrays, weights float[B, n]) -> float[B]`` — the statistic of
            each weighted resample (weights = how often each user was drawn); called with
            all-ones weights (``B = 1``) for the point estimate.
        n_boot: resamples.
    Returns:
        ``(point estimate = mean over seeds, float[n_boot] bootstrap replicates)``.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    n_seeds = len(per_seed)
    point = float(np.mean([statistic(a, np.ones((1, len(next(iter(a.values())))))) for a in per_seed]))
    reps = np.empty((n_seeds, n_boot))
    for s, arrays in enumerate(per_seed):
        n = len(next(iter(arrays.values())))
        for a in range(0, n_boot, chunk):
            b = min(a + chunk, n_boot)
            reps[s, a:b] = statistic(arrays, _bootstrap_weights(rng, n, b - a))
    draw = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    # Seed j of replicate b uses user-resample (b + j·stride) of its seed, so a seed drawn twice
    # in one replicate gets two independent user resamples.
    cols = (np.arange(n_boot)[:, None] + np.arange(n_seeds)[None, :] * max(1, n_boot // max(n_seeds, 1))) % n_boot
    boot = reps[draw, cols].mean(axis=1)
    return point, boot


def bootstrap_estimate(point: float, boot: np.ndarray, n_seeds: int, n_users: int, alpha: float = ALPHA,
                       method: str = "") -> Estimate:
    """Percentile interval, and a two-sided p from the bootstrap standard error (normal).

    Resampling S seeds from S underestimates the seed-to-seed variance by (S − 1)/S; the
    standard error and the interval's half-widths are widened by √(S/(S − 1)) to undo it."""
    widen = math.sqrt(n_seeds / (n_seeds - 1)) if n_seeds > 1 else 1.0
    se = float(np.std(boot, ddof=1)) * widen
    lo, hi = point + widen * (np.quantile(boot, [alpha / 2, 1 - alpha / 2]) - point)
    p = (0.0 if point != 0 else 1.0) if se == 0 else float(2 * special.ndtr(-abs(point) / se))
    return Estimate(point, se, None, float(lo), float(hi), p, n_seeds, n_users, method)


def bucket_gain_statistic(bucket_key: str = "bucket") -> Callable:
    """Statistic for :func:`hierarchical_bootstrap`: weighted mean of ``gain`` in the bucket
    (bool array ``arrays[bucket_key]``) minus the weighted mean over all users."""

    def stat(arrays, w):
        g, inb = arrays["gain"], arrays[bucket_key]
        all_mean = (w @ g) / w.sum(axis=1)
        wb = w[:, inb]
        with np.errstate(invalid="ignore", divide="ignore"):
            b_mean = (wb @ g[inb]) / wb.sum(axis=1)
        return np.where(np.isfinite(b_mean), b_mean, all_mean) - all_mean

    return stat


def trend_statistic(arrays, w):
    """Weighted OLS slope of ``gain`` on ``x`` (activity percentile in [0, 1])."""
    g, x = arrays["gain"], arrays["x"]
    sw = w.sum(axis=1)
    mx, mg = (w @ x) / sw, (w @ g) / sw
    cov = (w @ (x * g)) / sw - mx * mg
    var = (w @ (x * x)) / sw - mx * mx
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, cov / var, 0.0)


def mean_gain_statistic(arrays, w):
    """Weighted mean of ``gain`` over all users."""
    return (w @ arrays["gain"]) / w.sum(axis=1)
