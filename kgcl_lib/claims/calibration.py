"""Null and planted-effect simulations of the claims table's per-user rows: does a verdict hold its
error rate, does the 95 % interval cover, is an effect above the reported MDE found?

Each simulated table has ``3 × k`` rows, ``k`` of each kind the claims table tests on per-user
gains: a mean gain (claims 3, 12: Recall/NDCG@K), a bottom-20 % − all gain and a slope on the
activity percentile (claim 5). Per-user gains of seed ``s`` and user ``u`` (activity percentile
``x_u``) are::

    effect_row(x_u) + seed_sd · (a_s + b_s · (2 x_u − 1)) + user_sd · e_su

with ``a_s, b_s ~ N(0, 1)`` (a seed moves everyone, and the cold users differently) and Laplace
``e_su`` (heavy-tailed, unit variance). Regimes: ``seed-dominated`` (seed noise ≫ user noise per
seed mean), ``user-dominated`` (no seed noise at all) and ``mixed``.

The tables run through the functions the claims table uses (:func:`~.statistics.mean_gain`,
:func:`~.statistics.bucket_minus_all`, :func:`~.statistics.ols_slope`, :func:`~.statistics.t_tests`,
:func:`~.statistics.holm_matrix` — :func:`~.statistics.holm` is its one-table case —,
:func:`~.statistics.verdicts` and :func:`~.statistics.minimum_detectable_effect`), vectorised over tables.
``scripts/claims_simulation.py`` writes the figures to docs/claims.md; tests/unit/claims/test_claims_simulation.py
checks them.
"""

from __future__ import annotations

import math

import numpy as np

from .statistics import (
    ALPHA, POWER, bucket_minus_all, holm_matrix, mean_gain, minimum_detectable_effect, ols_slope,
    t_tests, verdicts,
)

#: ``{regime: (seed_sd, user_sd)}``; with 40 users a seed mean's user noise has sd user_sd / √40.
REGIMES = {"seed-dominated": (1.0, 1.0), "user-dominated": (0.0, 4.0), "mixed": (0.4, 3.0)}
KINDS = ("mean gain", "bottom 20% − all", "slope on activity")
BUCKET = 0.2


def _per_seed_statistics(gain: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``float[T, 3k, S]`` from per-user gains ``float[T, 3k, S, U]``: rows ``0..k-1`` mean gain,
    ``k..2k-1`` bottom-20 % − all, ``2k..3k-1`` slope on ``x`` (``float[U]``, the percentile)."""
    k = gain.shape[1] // 3
    bucket = np.broadcast_to(x <= BUCKET, gain[:, k:2 * k].shape)
    return np.concatenate([mean_gain(gain[:, :k]), bucket_minus_all(gain[:, k:2 * k], bucket),
                           ols_slope(gain[:, 2 * k:], np.broadcast_to(x, gain[:, 2 * k:].shape))], axis=1)


def simulate_statistics(rng: np.random.Generator, n_tables: int, n_seeds: int, regime: str, effects: np.ndarray,
                        n_users: int = 40, k: int = 3) -> np.ndarray:
    """``float[T, 3k, S]`` per-seed statistics of simulated tables; ``effects`` ``float[3k]`` is the
    planted value of each row's statistic (0: null)."""
    seed_sd, user_sd = REGIMES[regime]
    x = (np.arange(n_users) + 1.0) / n_users  # activity percentile in (0, 1]
    shape = (n_tables, 3 * k, n_seeds)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    gain = seed_sd * (a[..., None] + b[..., None] * (2 * x - 1))
    gain = gain + user_sd * rng.laplace(0.0, 1 / math.sqrt(2), size=(*shape, n_users))
    eff = np.asarray(effects, float)
    # plant each row's effect on its own statistic: a constant, bucket users only (scaled so that
    # bucket − all moves by the effect), or a linear trend in the percentile
    plant = np.concatenate([np.ones((k, n_users)),
                            np.broadcast_to((x <= BUCKET) / (1 - BUCKET), (k, n_users)),
                            np.broadcast_to(x - x.mean(), (k, n_users))]) * eff[:, None]
    return _per_seed_statistics(gain + plant[None, :, None, :], x)


def judge_tables(per_seed: np.ndarray, direction: np.ndarray, alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """The claims table's tests on ``T`` tables at once: t over seeds, Holm, verdicts. Returns
    ``t_tests``' arrays ``[T, R]`` plus ``p_holm`` and ``verdict``."""
    r = t_tests(per_seed, alpha)
    r["p_holm"] = holm_matrix(r["p"])
    r["verdict"] = verdicts(r["diff"], direction[None, :], r["p_holm"], alpha)
    return r


def calibrate(n_seeds: int, regime: str, n_tables: int = 4000, n_planted: int = 1000, n_users: int = 40,
              k: int = 3, seed: int = 0, alpha: float = ALPHA) -> dict:
    """``n_tables`` null tables and ``n_planted`` planted tables of one (seeds, regime).

    Returns ``{"fwer", "fwer_se", "row_fpr", "coverage", "power": {kind: share}, "planted":
    {kind: effect}, "mde_reported": {kind: median reported MDE of the planted row}}``: the share of
    null tables with any verdict after Holm (and its Monte-Carlo SE), of null rows with raw
    p < α, of rows (null and planted) whose 95 % interval covers the truth, and of planted rows
    read *supported*. A planted effect is 1.1 × the MDE of its row at the strictest Holm level
    (α / rows) for the true standard error (from the null tables' per-seed spread)."""
    rng = np.random.default_rng([seed, n_seeds, list(REGIMES).index(regime)])
    rows = 3 * k
    direction = np.array([1.0] * (2 * k) + [-1.0] * k)  # claim 5's slope is claimed negative
    null = simulate_statistics(rng, n_tables, n_seeds, regime, np.zeros(rows), n_users, k)
    r0 = judge_tables(null, direction, alpha)
    sd = null.std(axis=(0, 2), ddof=1)  # true sd of each row's per-seed statistic
    true_mde = minimum_detectable_effect(sd / math.sqrt(n_seeds), np.full(rows, alpha / rows), POWER,
                                         np.full(rows, n_seeds - 1.0))
    effects = np.zeros(rows)
    planted_rows = [0, k, 2 * k]
    effects[planted_rows] = 1.1 * true_mde[planted_rows] * direction[planted_rows]
    planted = simulate_statistics(rng, n_planted, n_seeds, regime, effects, n_users, k)
    r1 = judge_tables(planted, direction, alpha)
    any_verdict = (r0["verdict"] != "inconclusive").any(axis=1)
    fwer = float(any_verdict.mean())
    cover0 = (r0["ci_low"] <= 0) & (r0["ci_high"] >= 0)
    cover1 = (r1["ci_low"] <= effects) & (r1["ci_high"] >= effects)
    return {
        "n_seeds": n_seeds, "regime": regime, "n_tables": n_tables, "n_planted": n_planted, "rows": rows,
        "n_users": n_users,
        "fwer": fwer, "fwer_se": math.sqrt(max(fwer * (1 - fwer), alpha * (1 - alpha)) / n_tables),
        "row_fpr": float((r0["p"] < alpha).mean()),
        "coverage": float(np.concatenate([cover0.ravel(), cover1.ravel()]).mean()),
        "power": {kind: float((r1["verdict"][:, i] == "supported").mean()) for kind, i in zip(KINDS, planted_rows)},
        "planted": {kind: float(abs(effects[i])) for kind, i in zip(KINDS, planted_rows)},
        "mde_reported": {kind: float(np.median(minimum_detectable_effect(r1["se"][:, i], alpha / rows, POWER,
                                                                         n_seeds - 1.0)))
                         for kind, i in zip(KINDS, planted_rows)},
    }


def markdown(results: list[dict]) -> str:
    """The simulation figures as a Markdown table (docs/claims.md)."""
    head = ("| seeds | regime | null / planted tables | FWER after Holm (± MC SE) | row FPR at raw α | 95 % CI coverage | "
            + " | ".join(f"power: {k} (effect / median MDE)" for k in KINDS) + " |")
    out = [head, "|---:|---|---:|---:|---:|---:|" + "---:|" * len(KINDS)]
    for r in results:
        power = " | ".join(f"{r['power'][k]:.3f} ({r['planted'][k]:.3g} / {r['mde_reported'][k]:.3g})" for k in KINDS)
        out.append(f"| {r['n_seeds']} | {r['regime']} | {r['n_tables']:,} / {r['n_planted']:,} | {r['fwer']:.4f} ± {r['fwer_se']:.4f} | "
                   f"{r['row_fpr']:.4f} | {r['coverage']:.4f} | {power} |")
    return "\n".join(out) + "\n"
