"""Statistics behind every verdict: t / Welch / TOST estimates on per-seed values, per-seed
statistics of per-user gains, Holm's correction with the threshold each row faces, the verdicts
and the minimum detectable effect.

Every test here runs on one number per seed (a seed is one independent replicate of the whole
experiment: split, initialisation, sampling), so an S-seed row has S − 1 degrees of freedom
whatever the number of test users: users of one seed share that seed's split and model, and
their noise is not independent of the seed's. The functions are vectorised over leading axes
(``[..., S]``) so that :mod:`kgcl_lib.claims.calibration` runs thousands of simulated tables
through the very code the claims table uses.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

ALPHA = 0.05
POWER = 0.8


# --------------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------------
@dataclass
class Estimate:
    """An effect with its uncertainty (one row of the table).

    ``df``: degrees of freedom of the t reference; ``test``: the test's name as the table shows it.
    """

    diff: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p: float
    n_seeds: int
    test: str = ""


def t_tests(diffs: np.ndarray, alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """One-sample t inference on the last axis (``float[..., S]``, S ≥ 2, no NaN).

    Returns ``{"diff", "se", "df", "ci_low", "ci_high", "p"}``, each ``float[...]``: the mean, its
    standard error ``sd / √S``, ``S − 1``, the two-sided ``1 − alpha`` interval and the
    two-sided p (``se = 0``: p = 0 for a non-zero mean, 1 for a zero mean)."""
    d = np.asarray(diffs, dtype=float)
    n = d.shape[-1]
    if n < 2:
        raise ValueError(f"t test needs ≥ 2 values on the last axis, got shape {d.shape}")
    m = d.mean(axis=-1)
    se = d.std(axis=-1, ddof=1) / math.sqrt(n)
    q = special.stdtrit(n - 1, 1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(se > 0, 2 * special.stdtr(n - 1, -np.abs(m) / se), np.where(m != 0, 0.0, 1.0))
    return {"diff": m, "se": se, "df": np.full_like(m, n - 1.0), "ci_low": m - q * se, "ci_high": m + q * se, "p": p}


def t_estimate(diffs: np.ndarray, alpha: float = ALPHA, test: str = "paired t over seeds") -> Estimate:
    """:func:`t_tests` of one row (``float[S]``) as an :class:`Estimate`."""
    r = t_tests(diffs, alpha)
    return Estimate(*(float(r[k]) for k in ("diff", "se", "df", "ci_low", "ci_high", "p")), len(diffs), test)


def welch_estimate(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA,
                   test: str = "Welch t (unpaired seeds)") -> Estimate:
    """Welch inference on ``mean(a) − mean(b)`` (runs that do not share seeds; each ≥ 2 values)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    m = float(a.mean() - b.mean())
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2
    q = special.stdtrit(dof, 1 - alpha / 2)
    p = (0.0 if m != 0 else 1.0) if se == 0 else float(2 * special.stdtr(dof, -(abs(m) / se)))
    return Estimate(m, se, dof, m - q * se, m + q * se, p, min(len(a), len(b)), test)


def tost_p(diff, se, df, margin) -> np.ndarray:
    """Two one-sided tests of equivalence: p of ``H0: |Δ| ≥ margin`` (``margin > 0``), the larger
    of the one-sided t p-values of ``Δ ≤ −margin`` and ``Δ ≥ margin``; vectorised."""
    diff, se, margin = np.asarray(diff, float), np.asarray(se, float), np.asarray(margin, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = np.where(se > 0, special.stdtr(df, -(diff + margin) / se), np.where(diff > -margin, 0.0, 1.0))
        upper = np.where(se > 0, special.stdtr(df, (diff - margin) / se), np.where(diff < margin, 0.0, 1.0))
    return np.maximum(lower, upper)


# --------------------------------------------------------------------------------------------
# Per-seed statistics of per-user gains (claims 3, 5, 12: one number per seed, then t)
# --------------------------------------------------------------------------------------------
def mean_gain(gain: np.ndarray) -> np.ndarray:
    """``float[...]``: mean over the last axis (users) of ``float[..., U]`` per-user gains."""
    return np.asarray(gain, float).mean(axis=-1)


def bucket_minus_all(gain: np.ndarray, in_bucket: np.ndarray) -> np.ndarray:
    """``float[...]``: mean gain of the users in the bucket (``bool[..., U]``) minus the mean gain of
    all users (claim 5: the cold-start users' gain beyond everyone's)."""
    g = np.asarray(gain, float)
    b = np.asarray(in_bucket, bool)
    return (g * b).sum(axis=-1) / b.sum(axis=-1) - g.mean(axis=-1)


def ols_slope(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``float[...]``: least-squares slope of ``y`` on ``x`` over the last axis (claim 5: gain on
    activity percentile; claim 6: a metric on γ)."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    xc = x - x.mean(axis=-1, keepdims=True)
    return (xc * (y - y.mean(axis=-1, keepdims=True))).sum(axis=-1) / (xc * xc).sum(axis=-1)


# --------------------------------------------------------------------------------------------
# Holm, verdicts, MDE
# --------------------------------------------------------------------------------------------
def holm_matrix(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values of every row of ``float[T, m]`` (no NaN): ``T`` tables of
    ``m`` tests each (the simulations run thousands of tables through it at once)."""
    p = np.asarray(p, float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    adj = np.maximum.accumulate(np.take_along_axis(p, order, -1) * (m - np.arange(m)), axis=-1)
    out = np.empty_like(p)
    np.put_along_axis(out, order, np.minimum(adj, 1.0), -1)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values of one table (NaN stays NaN and is not a test):
    :func:`holm_matrix` of its finite entries."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    if len(idx):
        out[idx] = holm_matrix(p[idx][None, :])[0]
    return out


def holm_levels(pvalues, alpha: float = ALPHA) -> np.ndarray:
    """The two-sided level each row faces in Holm's procedure: ``alpha / (m − rank)``, rank the
    0-based position of its raw p among the ``m`` tests (NaN where p is NaN)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    out[order] = alpha / (len(idx) - np.arange(len(idx)))
    return out


def verdicts(diff, direction, p_holm, alpha: float = ALPHA) -> np.ndarray:
    """``supported`` (Holm p < α, effect in the claimed ``direction`` ±1), ``contradicted`` (Holm
    p < α, the other way) or ``inconclusive``; vectorised."""
    sign = np.sign(np.asarray(diff, float)) * np.asarray(direction, float)
    sig = np.asarray(p_holm, float) < alpha
    return np.where(sig & (sign > 0), "supported", np.where(sig & (sign < 0), "contradicted", "inconclusive"))


@functools.lru_cache(maxsize=4096)
def _ncp_for_power(df: float, level: float, power: float) -> float:
    """Non-centrality δ at which a two-sided level-``level`` t test with ``df`` degrees of freedom
    rejects with probability ``power``: the noncentral t power
    ``E_V[Φ(δ − q·√(V/df)) + Φ(−δ − q·√(V/df))]``, ``V ~ χ²(df)``, by quadrature over 4,000 χ²
    quantiles (scipy's ``nct`` fails at the large δ a 3-seed Holm level needs)."""
    q = stats.t.ppf(1 - level / 2, df)
    n = 4000
    scale = q * np.sqrt(stats.chi2.ppf((np.arange(n) + 0.5) / n, df) / df)

    def f(ncp):
        return float(np.mean(special.ndtr(ncp - scale) + special.ndtr(-ncp - scale))) - power

    hi = q + 2 * stats.norm.ppf(power) + 10
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-10))


def minimum_detectable_effect(se, alpha: float = ALPHA, power: float = POWER, df: float | None = None):
    """Smallest true effect a two-sided level-``alpha`` test with standard error ``se`` detects with
    probability ``power``.

    ``df=None``: the normal formula ``(z(1 − α/2) + z(power)) · se``; with ``df``: exact for Student's
    t (noncentral t; the usual ``t(1 − α/2) + t(power)`` shortcut promises 80 % power that a
    3-seed test at a Holm level does not have). ``alpha`` should be the level the row faces
    (:func:`holm_levels`), not the nominal 0.05."""
    se_arr = np.asarray(se, float)
    if df is None:
        out = (special.ndtri(1 - np.asarray(alpha) / 2) + special.ndtri(power)) * se_arr
    else:
        ncp = np.vectorize(lambda d, a: _ncp_for_power(float(d), float(a), power) if np.isfinite(d) and np.isfinite(a)
                           else np.nan, otypes=[float])(df, alpha)
        out = ncp * se_arr
    out = np.where(np.isfinite(se_arr), out, np.nan)
    return float(out) if np.ndim(out) == 0 else out
