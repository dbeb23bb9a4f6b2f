"""Judge every claim of the paper on this reproduction's results store (notebook 11).

Pure functions over the results store (:func:`kgcl_lib.experiments.load_manifest` frames and
the per-run arrays); nothing here trains. :func:`claims_table` returns one row per
claim × metric × dataset with

* ``ours`` / ``baseline`` — the means compared (for cold start: the NDCG gain in the bottom
  p % of users / the gain over all users; for γ trends: the mean at the largest / smallest γ),
* ``diff`` (ours − baseline) and ``rel`` (``diff / |baseline|``), a 95 % interval
  ``ci_low, ci_high`` and a two-sided ``p`` with its Holm correction across the table,
* ``n_seeds`` / ``n_users``, the paper's effect (``paper_diff``, ``paper_rel``; same contrast
  on the paper's Tables 2–5, ``NaN`` where the paper only has a figure),
* ``verdict``: ``supported`` (Holm p < α in the claimed direction), ``contradicted`` (Holm
  p < α in the other direction), ``inconclusive`` — with ``mde``, the smallest effect the run
  would detect with 80 % power — or ``not testable here (<reason>)`` with no numbers.

Tests per kind of row:

* seed-level contrasts (Tables 2–5): the per-seed difference between two runs of the same
  seed (mean over the claim's contrasts), a paired t-test across seeds (Welch when the runs do
  not share seeds); ≥ 2 seeds needed.
* cold start (Figures 1/5): per-user NDCG@100 of the proposed model minus the baseline's, for
  the same test users of the same seed; the statistic is the mean gain in the bottom p % of
  users by training activity minus the mean gain over all users, and the slope of the per-user
  gain against the activity percentile (trend). Intervals by a two-stage bootstrap (seeds, then
  users within seeds), p from the bootstrap standard error (normal approximation).
* γ trends (Figure 6): OLS of the metric on γ with text (and seed) fixed effects; the effect is
  the fitted change from the smallest to the largest γ.
* LLM synopses (Table 5): non-inferiority — supported when the lower 95 % bound of
  ``LLM − human`` lies above −½ × the human-text gain over the baseline (the LLM text keeps at
  least half the gain), contradicted when LLM is significantly worse than that margin allows.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from .constants import BASELINE

ALPHA = 0.05
POWER = 0.8
#: Bottom-p % activity buckets judged for claim 5 (the paper's Figure 1 uses 1 %, Figure 5 1..100 %).
COLD_PERCENTILES = (5, 10, 20)
#: The paper's proposed model and its baseline (text, variant).
PROPOSED = ("with", "cl_title_genre")
CL_VARIANTS = ("cl_genre", "cl_title_genre")
NOT_TESTABLE = "not testable here"


# --------------------------------------------------------------------------------------------
# The claims
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One claim of the paper.

    Attributes:
        id: short id (``"1"``, ``"5"``, ``"8"`` …).
        quote: the paper's words (shortened quotes).
        where: section / table / figure.
        kind: ``"contrast"`` (per-seed paired differences), ``"cold"`` (per-user bootstrap),
            ``"gamma"`` (γ trend), ``"gamma_contrast"`` (contrast over seed×γ units of the γ
            sweep) or ``"noninferior"`` (LLM vs human text).
        manifest: which stored grid the rows come from (``grid``, ``gamma``, ``llm``).
        contrasts: ``((treat_text, treat_variant), (base_text, base_variant))`` pairs whose
            differences are averaged.
        metrics: result-store metric columns.
        direction: +1 if the claim says the metric goes up, −1 if down.
        paper_table: transcribed table the paper's effect comes from (``None``: figure only).
    """

    id: str
    quote: str
    where: str
    kind: str
    manifest: str
    contrasts: tuple = ()
    metrics: tuple = ()
    direction: int = 1
    paper_table: str | None = None


_TEXTS = ("without", "with")
_CL_OVER_BASE = tuple(((t, v), (t, "base")) for t in _TEXTS for v in CL_VARIANTS)

CLAIMS: tuple[Claim, ...] = (
    Claim("1", "semantic text raises AUC/F1 over the same model without text "
          "(\"models that employed ... semantic text information exhibited superior performance\")",
          "§4.3, Table 2", "contrast", "grid",
          tuple(((("with", v)), ("without", v)) for v in ("base", *CL_VARIANTS)), ("test_auc", "test_f1"), 1, "table2"),
    Claim("2", "CL (genre; title+genre) raises AUC/F1 over L_base, with and without text",
          "§4.3, Table 2", "contrast", "grid", _CL_OVER_BASE, ("test_auc", "test_f1"), 1, "table2"),
    Claim("3", "text + CL raises Recall@K / NDCG@K (\"performs better than the baseline for all K\")",
          "§4.3, Table 3", "contrast", "grid", ((PROPOSED, BASELINE),),
          ("recall@20", "ndcg@20", "recall@100", "ndcg@100"), 1, "table3"),
    Claim("4", "CL raises inter-list and intra-list diversity", "§4.3, Table 4", "contrast", "grid",
          _CL_OVER_BASE, ("inter@20", "intra@20"), 1, "table4"),
    Claim("5", "the gain is larger for cold-start users than overall (\"a lesser drop in NDCG@100 "
          "for test users with few user-content interactions\")", "§1, §4.3, Figures 1 and 5", "cold", "grid",
          ((PROPOSED, BASELINE),), ("ndcg@100",), 1, None),
    Claim("6", "γ trades alignment against uniformity and NDCG (\"as the value of gamma decreases, the "
          "alignment value also tends to decrease\"; best model at γ = 0.8)", "§4.3, Figure 6", "gamma", "gamma",
          (), ("alignment", "uniformity", "ndcg@20"), 1, None),
    Claim("7", "LLM-generated synopses recover the gain of human synopses (\"comparable performance\")",
          "§4.4, Table 5", "noninferior", "llm", ((("llm", "cl_title_genre"), ("with", "cl_title_genre")),),
          ("recall@20", "ndcg@20", "inter@20", "intra@20"), 1, "table5"),
    # Further claims in the paper's text.
    Claim("8", "CL title+genre gives the highest inter-list diversity (above CL genre)", "§4.3, Table 4",
          "contrast", "grid", tuple(((t, "cl_title_genre"), (t, "cl_genre")) for t in _TEXTS), ("inter@20",), 1,
          "table4"),
    Claim("9", "\"using CL genre+title scored lower [intra-list] diversity performance compared to CL genre\"",
          "§4.3, Table 4", "contrast", "grid", tuple(((t, "cl_genre"), (t, "cl_title_genre")) for t in _TEXTS),
          ("intra@20",), 1, "table4"),
    Claim("10", "item-based CL improves embedding quality (lower ℓ_align and ℓ_uniform)", "Abstract, §1, §4.3",
          "contrast", "grid", _CL_OVER_BASE, ("alignment", "uniformity"), -1, None),
    Claim("11", "semantic text produces better uniformity regardless of γ (movie domain)", "§4.3, Figure 6",
          "gamma_contrast", "gamma", ((("with", "cl_title_genre"), ("without", "cl_title_genre")),),
          ("uniformity",), -1, None),
    Claim("12", "\"the use of both genre and title resulted in superior [CTR and ranking] performance\" "
          "(CL title+genre over CL genre)", "§4.3, Tables 2–3", "contrast", "grid",
          tuple(((t, "cl_title_genre"), (t, "cl_genre")) for t in _TEXTS), ("test_auc", "ndcg@20"), 1, None),
)
#: Direction of each γ-trend metric: the change from the smallest to the largest γ the paper
#: implies (low γ: better = lower alignment, worse = higher uniformity and lower NDCG).
GAMMA_DIRECTIONS = {"alignment": 1, "uniformity": -1, "ndcg@20": 1}
#: Paper-table metric name of each result-store column.
PAPER_METRIC = {"test_auc": "auc", "test_f1": "f1"}

COLUMNS = ["claim", "dataset", "metric", "where", "statement", "ours", "baseline", "diff", "rel", "ci_low",
           "ci_high", "p", "p_holm", "n_seeds", "n_users", "paper_diff", "paper_rel", "direction", "verdict",
           "mde", "method", "note"]


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


# --------------------------------------------------------------------------------------------
# Per-user arrays (stored by experiments.evaluate; rebuilt for older stores)
# --------------------------------------------------------------------------------------------
class UserArrays:
    """Loads ``user_ndcg`` / ``user_activity`` of stored runs, rebuilding them for runs stored
    before :func:`kgcl_lib.experiments.evaluate` saved them (from ``topk.npy``,
    ``test_users.npy`` and the seeded split — needs the dataset; ``open_dataset`` is
    :func:`kgcl_lib.experiments.open_dataset` with the notebook's ``data_dir`` / options)."""

    def __init__(self, results_dir, open_dataset: Callable[[str], object] | None = None):
        self.results_dir = Path(results_dir)
        self.open_dataset = open_dataset
        self._ds: dict = {}
        self._split: dict = {}
        self.rebuilt: list[str] = []

    def _dataset(self, name):
        if name not in self._ds:
            if self.open_dataset is None:
                raise FileNotFoundError(f"per-user arrays missing and no dataset opener given for {name}")
            self._ds[name] = self.open_dataset(name)
        return self._ds[name]

    def get(self, run_id: str, metric: str = "ndcg@100") -> dict:
        """``{"users": int64[n], "value": float64[n] (per-user metric), "activity": int64[n]}``."""
        d = self.results_dir / "runs" / run_id
        kind, k = metric.split("@")
        key = {"ndcg": "user_ndcg", "recall": "user_recall"}[kind]
        users = np.load(d / "test_users.npy")
        if (d / f"{key}.npy").exists() and (d / "user_metric_ks.npy").exists():
            ks = np.load(d / "user_metric_ks.npy").tolist()
            if int(k) in ks:
                return {"users": users, "value": np.load(d / f"{key}.npy")[:, ks.index(int(k))],
                        "activity": np.load(d / "user_activity.npy")}
        return self._rebuild(d, users, kind, int(k))

    def _rebuild(self, d: Path, users: np.ndarray, kind: str, k: int) -> dict:
        from . import metrics as M
        from .data import user_train_counts
        from .experiments import make_split, test_users_and_truth

        cfg = json.loads((d / "config.json").read_text())
        name, seed = cfg["spec"]["dataset"], int(cfg["spec"]["seed"])
        ds = self._dataset(name)
        if (name, seed) not in self._split:
            split = make_split(ds, seed)
            u, truth, _ = test_users_and_truth(split, ds.n_users, ds.n_items)
            self._split[(name, seed)] = (u, truth, user_train_counts(split.train, ds.n_users)[u])
        u, truth, activity = self._split[(name, seed)]
        if not np.array_equal(u, users):
            raise ValueError(f"{d / 'test_users.npy'}: stored test users differ from the rebuilt split of "
                             f"{name} seed {seed} (dataset changed since the run?)")
        ndcg = (cfg.get("eval") or {}).get("ndcg", "jurity")
        per = M.ranking_per_user(np.load(d / "topk.npy"), truth, ks=(k,), ndcg=ndcg)
        self.rebuilt.append(d.name)
        return {"users": users, "value": per[f"{kind}@{k}"], "activity": activity}


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------
def _row(claim: Claim, dataset: str, metric: str, **kw) -> dict:
    row = {c: np.nan for c in COLUMNS}
    row.update(claim=claim.id, dataset=dataset, metric=metric, where=claim.where, statement=claim.quote,
               direction=claim.direction, verdict="", method="", note="")
    row.update(kw)
    return row


def untestable(claim: Claim, dataset: str, metric: str, reason: str, **kw) -> dict:
    """A row that carries no numbers: ``verdict = "not testable here (<reason>)"``."""
    return _row(claim, dataset, metric, verdict=f"{NOT_TESTABLE} ({reason})", **kw)


@functools.lru_cache(maxsize=None)
def _paper_values(table: str, domain: str, metric: str) -> dict:
    """``{(text, variant): value}`` of one metric of a transcribed paper table and domain."""
    from .report import paper_table

    paper = paper_table(table)
    paper = paper[(paper["domain"] == domain) & (paper["metric"] == metric)]
    return {(r.text, r.variant): float(r.value) for r in paper.itertuples()}


def _paper_effect(claim: Claim, dataset: str, metric: str, contrasts: tuple | None = None) -> tuple[float, float]:
    """The claim's contrast (or ``contrasts``) on the paper's transcribed table for ``dataset``'s domain."""
    from .report import domain_of

    if claim.paper_table is None:
        return float("nan"), float("nan")
    val = _paper_values(claim.paper_table, domain_of(dataset), PAPER_METRIC.get(metric, metric))
    if not val:
        return float("nan"), float("nan")
    rename = {"with": "human"} if claim.paper_table == "table5" else {}
    diffs, bases = [], []
    for (tt, tv), (bt, bv) in contrasts or claim.contrasts:
        t, b = val.get((rename.get(tt, tt), tv)), val.get((rename.get(bt, bt), bv))
        if t is None or b is None:
            return float("nan"), float("nan")
        diffs.append(t - b)
        bases.append(b)
    d, b = float(np.mean(diffs)), float(np.mean(bases))
    return d, d / abs(b) if b else float("nan")


def _text_note(df: pd.DataFrame, dataset: str) -> tuple[str | None, str]:
    """``(reason not testable or None, note)`` about the dataset's semantic-text source."""
    if "synopses" not in df.columns:
        return None, ""
    syn = df.loc[(df["dataset"] == dataset) & (df["text"] == "with"), "synopses"].dropna()
    s = "; ".join(sorted(set(syn)))
    if "no human synopses or titles" in s or "no synopses, titles or genres" in s:
        return "no text source on this dataset", ""
    if "substitute" in s:
        return None, "text = verbalised title+genres (no synopses)"
    return None, ""


def _unit_index(sub: pd.DataFrame, units: Sequence[str]) -> tuple[list, dict]:
    """``(unit keys, {(text, variant): int[n_units] row of sub per unit, -1 when absent})``.

    A few hundred runs at most: plain Python over runs (never over users or items)."""
    keys = list(zip(*(sub[u].tolist() for u in units)))
    unit_list = sorted(set(keys), key=lambda k: tuple(str(x) for x in k))
    pos = {k: i for i, k in enumerate(unit_list)}
    out: dict = {}
    for i, (t, v, k) in enumerate(zip(sub["text"].tolist(), sub["variant"].tolist(), keys)):
        out.setdefault((t, v), np.full(len(unit_list), -1, dtype=np.int64))[pos[k]] = i
    return unit_list, out


def _by_unit(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``float[n_units]``: the metric of each unit's run (NaN where the group has no run)."""
    return np.where(rows >= 0, values[np.maximum(rows, 0)], np.nan)


def prepare(df: pd.DataFrame, dataset: str, units: Sequence[str] = ("seed",)) -> tuple:
    """What :func:`contrast_rows` needs of one dataset's runs, computed once per table."""
    sub = df[df["dataset"] == dataset]
    return (sub, *_unit_index(sub, units), _text_note(sub, dataset))


PER_USER_METRIC = re.compile(r"^(recall|ndcg)@\d+$")


def _per_user_estimate(contrasts: tuple, sub: pd.DataFrame, unit_list: list, index: dict, metric: str,
                       users: UserArrays, n_boot: int, rng: np.random.Generator, alpha: float) -> Estimate | None:
    """Per-user paired gains (mean over the claim's contrasts) of every seed, bootstrapped over
    seeds and users within seeds; ``None`` when no seed has all the runs."""
    run_ids = sub["run_id"].to_numpy()
    per_seed = []
    for u, _ in enumerate(unit_list):
        rows = [(index[t][u], index[b][u]) for t, b in contrasts]
        if any(rt < 0 or rb < 0 for rt, rb in rows):
            continue
        gains = []
        for rt, rb in rows:
            a, b = users.get(run_ids[rt], metric), users.get(run_ids[rb], metric)
            if not np.array_equal(a["users"], b["users"]):
                raise ValueError(f"{run_ids[rt]} and {run_ids[rb]} have different test users")
            gains.append(a["value"] - b["value"])
        g = np.mean(gains, axis=0)
        per_seed.append({"gain": g[np.isfinite(g)]})
    if not per_seed:
        return None
    point, boot = hierarchical_bootstrap(per_seed, mean_gain_statistic, n_boot, rng, alpha)
    method = "bootstrap: seeds, users within seeds" if len(per_seed) > 1 else \
        "bootstrap over users (1 seed: no seed-to-seed variance)"
    return bootstrap_estimate(point, boot, len(per_seed), int(sum(len(a["gain"]) for a in per_seed)), alpha, method)


def contrast_rows(claim: Claim, df: pd.DataFrame, dataset: str, alpha: float = ALPHA,
                  units: Sequence[str] = ("seed",), prepared: tuple | None = None, users: UserArrays | None = None,
                  n_boot: int = 2000, rng: np.random.Generator | None = None) -> list[dict]:
    """Rows of a ``contrast`` claim on one dataset: per-unit (seed) paired differences.

    With ``users``, per-user metrics (Recall@K, NDCG@K) use the per-user paired gains of every
    seed instead (:func:`hierarchical_bootstrap`; ``n`` then counts users too), which also tests
    a single seed; other metrics use the paired t-test over seeds.
    """
    sub, unit_list, index, text_note = prepared or prepare(df, dataset, units)
    contrasts = claim.contrasts
    uses_text = any("with" in (c[0][0], c[1][0]) for c in contrasts)
    reason, base_note = text_note if uses_text else (None, "")
    if reason and not all("with" in (c[0][0], c[1][0]) for c in contrasts):
        # No text source: the contrasts between models without text still test the claim.
        contrasts = tuple(c for c in contrasts if "with" not in (c[0][0], c[1][0]))
        reason, base_note = None, f"{text_note[0]}: only the contrasts without text"
    if any(c[0][1] != "base" for c in contrasts) and "pairs" in sub.columns \
            and sub["pairs"].fillna("").str.contains("KG-attribute").any():
        base_note = (base_note + "; " if base_note else "") + "CL pairs from KG attributes (no text metadata)"
    rows = []
    for metric in claim.metrics:
        note = base_note
        pdiff, prel = _paper_effect(claim, dataset, metric, contrasts)
        paper = {"paper_diff": pdiff, "paper_rel": prel}
        if reason:
            rows.append(untestable(claim, dataset, metric, reason, **paper))
            continue
        if metric not in sub.columns or sub[metric].isna().all():
            rows.append(untestable(claim, dataset, metric, f"no '{metric}' in the stored runs", **paper))
            continue
        values = sub[metric].to_numpy(dtype=float)
        groups = {k: _by_unit(values, r) for k, r in index.items()}
        groups = {k: g for k, g in groups.items() if np.isfinite(g).any()}
        need = {k for c in contrasts for k in c}
        missing = sorted(need - set(groups))
        if missing:
            rows.append(untestable(claim, dataset, metric, "no runs of " + ", ".join(f"{t}/{v}" for t, v in missing),
                                   **paper))
            continue
        treat = np.column_stack([groups[t] for t, _ in contrasts])  # [n_units, n_contrasts]
        base = np.column_stack([groups[b] for _, b in contrasts])
        paired = treat - base
        paired = paired[np.isfinite(paired).all(axis=1)]
        ours, baseline = float(np.nanmean(treat, axis=0).mean()), float(np.nanmean(base, axis=0).mean())
        t_ok, b_ok = np.isfinite(treat).all(axis=1), np.isfinite(base).all(axis=1)
        est = None
        if users is not None and tuple(units) == ("seed",) and PER_USER_METRIC.match(metric):
            try:
                est = _per_user_estimate(contrasts, sub, unit_list, index, metric, users, n_boot,
                                         rng if rng is not None else np.random.default_rng(17), alpha)
            except (OSError, ValueError, RuntimeError) as exc:  # fall back to the seed-level test
                note = (note + "; " if note else "") + f"per-user arrays unavailable ({exc})"
        if est is not None:
            pass
        elif len(paired) >= 2:
            est = t_estimate(paired.mean(axis=1), alpha,
                             "paired t over " + " × ".join(units) + (" units" if len(units) > 1 else "s"))
        elif min(t_ok.sum(), b_ok.sum()) >= 2:
            est = welch_estimate(treat[t_ok].mean(axis=1), base[b_ok].mean(axis=1), alpha)
        else:
            rows.append(untestable(claim, dataset, metric, "fewer than 2 seeds: no seed-to-seed variance",
                                   ours=ours, baseline=baseline, n_seeds=len(paired), **paper))
            continue
        rows.append(_estimate_row(claim, dataset, metric, est, ours, baseline, paper, note, alpha))
    return rows


def _estimate_row(claim, dataset, metric, est: Estimate, ours, baseline, paper, note, alpha, direction=None) -> dict:
    diff = est.diff
    if "1 seed" in est.method and "1 seed" not in note:
        note = (note + "; " if note else "") + "1 seed: users resampled only, no seed-to-seed variance"
    return _row(claim, dataset, metric, ours=ours, baseline=baseline, diff=diff,
                rel=diff / abs(baseline) if baseline else np.nan, ci_low=est.ci_low, ci_high=est.ci_high, p=est.p,
                n_seeds=est.n_seeds, n_users=est.n_users if est.n_users is not None else np.nan,
                mde=minimum_detectable_effect(est.se, alpha, POWER, est.df), method=est.method, note=note,
                direction=claim.direction if direction is None else direction, **paper)


def cold_rows(claim: Claim, df: pd.DataFrame, dataset: str, users: UserArrays, *,
              percentiles: Sequence[float] = COLD_PERCENTILES, n_boot: int = 2000,
              rng: np.random.Generator | None = None, alpha: float = ALPHA) -> list[dict]:
    """Claim 5 on one dataset: bottom-p % gain minus overall gain (per p), and the trend."""
    from .metrics import cold_start_buckets

    rng = rng if rng is not None else np.random.default_rng(17)
    (treat, base), = claim.contrasts
    labels = [f"ndcg@100 gain: bottom {p:g}% − all" for p in percentiles] + ["ndcg@100 gain vs activity (slope)"]
    sub = df[df["dataset"] == dataset]
    ids = {key: dict(zip(g["seed"], g["run_id"])) for key, g in sub.groupby(["text", "variant"])}
    missing = [k for k in (treat, base) if k not in ids]
    reason = ("no runs of " + ", ".join(f"{t}/{v}" for t, v in missing)) if missing else _text_note(sub, dataset)[0]
    seeds = sorted(set(ids.get(treat, {})) & set(ids.get(base, {})))
    if not reason and not seeds:
        reason = "the proposed model and the baseline share no seed"
    if reason:
        return [untestable(claim, dataset, m, reason) for m in labels]
    per_seed = []
    try:
        for s in seeds:
            a, b = users.get(ids[treat][s]), users.get(ids[base][s])
            if not np.array_equal(a["users"], b["users"]):
                raise ValueError(f"seed {s}: the two runs have different test users")
            ok = np.isfinite(a["value"]) & np.isfinite(b["value"])
            act = a["activity"][ok]
            x = stats.rankdata(act) / len(act)  # activity percentile in (0, 1]
            arrays = {"gain": a["value"][ok] - b["value"][ok], "x": x, "treat": a["value"][ok], "base": b["value"][ok]}
            for p in percentiles:
                inb = np.zeros(len(act), bool)
                inb[cold_start_buckets(act, [p])[0]] = True
                arrays[f"b{p:g}"] = inb
            per_seed.append(arrays)
    except (OSError, ValueError, RuntimeError) as exc:
        return [untestable(claim, dataset, m, f"per-user arrays unavailable: {exc}") for m in labels]
    n_users = int(sum(len(a["gain"]) for a in per_seed))
    gain_all = float(np.mean([a["gain"].mean() for a in per_seed]))
    note_seed = "; 1 seed: users resampled only, no seed-to-seed variance" if len(seeds) == 1 else ""
    rows = []
    for p, label in zip(percentiles, labels):
        key = f"b{p:g}"
        point, boot = hierarchical_bootstrap(per_seed, bucket_gain_statistic(key), n_boot, rng, alpha)
        est = bootstrap_estimate(point, boot, len(seeds), n_users, alpha, "bootstrap: seeds, users within seeds")
        sizes = [int(a[key].sum()) for a in per_seed]
        gain_b = float(np.mean([a["gain"][a[key]].mean() for a in per_seed]))
        rows.append(_estimate_row(claim, dataset, label, est, gain_b, gain_all, {"paper_diff": np.nan, "paper_rel": np.nan},
                                  f"bucket {min(sizes)}–{max(sizes)} of {min(len(a['gain']) for a in per_seed)}–"
                                  f"{max(len(a['gain']) for a in per_seed)} users per seed" + note_seed, alpha))
    point, boot = hierarchical_bootstrap(per_seed, trend_statistic, n_boot, rng, alpha)
    est = bootstrap_estimate(point, boot, len(seeds), n_users, alpha, "bootstrap OLS slope on activity percentile")
    # Trend: the claim says the gain falls as activity rises (slope < 0); ours/baseline = gain
    # in the least / most active half.
    lo = float(np.mean([a["gain"][a["x"] <= 0.5].mean() for a in per_seed]))
    hi = float(np.mean([a["gain"][a["x"] > 0.5].mean() for a in per_seed]))
    row = _estimate_row(claim, dataset, labels[-1], est, lo, hi, {"paper_diff": np.nan, "paper_rel": np.nan},
                        "ours/baseline: mean gain of the less/more active half; effect: slope per unit percentile"
                        + note_seed, alpha, direction=-1)
    row["rel"] = np.nan
    rows.append(row)
    return rows


def gamma_rows(claim: Claim, df: pd.DataFrame, dataset: str, alpha: float = ALPHA) -> list[dict]:
    """Claim 6 on one dataset: OLS of each metric on γ with text and seed fixed effects."""
    sub = df[df["dataset"] == dataset].dropna(subset=["gamma"])
    rows = []
    for metric in claim.metrics:
        direction = GAMMA_DIRECTIONS.get(metric, claim.direction)
        d = sub.dropna(subset=[metric]) if metric in sub.columns else sub.iloc[:0]
        gammas = sorted(d["gamma"].unique())
        if len(gammas) < 3:
            rows.append(untestable(claim, dataset, metric, f"γ sweep has {len(gammas)} value(s); need ≥ 3",
                                   direction=direction))
            continue
        fx = pd.get_dummies(d[["text"]].astype(str).assign(seed=d["seed"].astype(str)), drop_first=True, dtype=float)
        X = np.column_stack([np.ones(len(d)), d["gamma"].to_numpy(float), fx.to_numpy()])
        y = d[metric].to_numpy(float)
        beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
        dof = len(y) - rank
        if dof < 1:
            rows.append(untestable(claim, dataset, metric, "too few γ runs for a residual variance", direction=direction))
            continue
        resid = y - X @ beta
        cov = (resid @ resid / dof) * np.linalg.pinv(X.T @ X)
        span = gammas[-1] - gammas[0]
        slope, se = beta[1] * span, math.sqrt(max(cov[1, 1], 0.0)) * span
        q = special.stdtrit(dof, 1 - alpha / 2)
        p = (0.0 if slope != 0 else 1.0) if se == 0 else float(2 * special.stdtr(dof, -(abs(slope) / se)))
        est = Estimate(float(slope), se, dof, slope - q * se, slope + q * se, p, int(d["seed"].nunique()),
                       method=f"OLS on γ (+ text, seed effects), {len(y)} runs")
        ours = float(d.loc[d["gamma"] == gammas[-1], metric].mean())
        base = float(d.loc[d["gamma"] == gammas[0], metric].mean())
        rows.append(_estimate_row(claim, f"{dataset}", f"{metric}: γ {gammas[0]:g}→{gammas[-1]:g}", est, ours, base,
                                  {"paper_diff": np.nan, "paper_rel": np.nan}, "", alpha, direction=direction))
    return rows


def noninferior_rows(claim: Claim, df: pd.DataFrame, dataset: str, alpha: float = ALPHA, **kw) -> list[dict]:
    """Claim 7: LLM vs human synopses; non-inferiority margin = ½ of the human-text gain.
    ``kw`` go to :func:`contrast_rows` (``users``, ``n_boot``, ``rng``)."""
    rows = contrast_rows(claim, df, dataset, alpha, **kw)
    sub = df[df["dataset"] == dataset]
    for row in rows:
        if row["verdict"]:
            continue
        m = row["metric"]
        human = sub[(sub["text"] == "with") & (sub["variant"] == "cl_title_genre")][m].mean()
        base = sub[(sub["text"] == BASELINE[0]) & (sub["variant"] == BASELINE[1])][m].mean()
        gain = float(human - base)
        row["margin"] = -0.5 * abs(gain) if np.isfinite(gain) else np.nan
        row["note"] = (row["note"] + "; " if row["note"] else "") + (
            f"human gain over L_base {gain:+.4f}; non-inferiority margin {row['margin']:+.4f}"
            if np.isfinite(gain) else "no L_base runs: margin unknown")
    return rows


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
    """Every claim on every dataset (columns :data:`COLUMNS`), Holm-corrected and judged.

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
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    table = pd.DataFrame.from_records(rows, columns=COLUMNS + extra)
    return judge(table, alpha)


def load_frames(results_dir) -> tuple[dict[str, pd.DataFrame | None], dict[str, str]]:
    """The ``grid`` / ``gamma`` / ``llm`` manifests' results, and why any is missing."""
    from .experiments import load_manifest, trained

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


# --------------------------------------------------------------------------------------------
# Rendering and summary
# --------------------------------------------------------------------------------------------
def _num(x, d=4) -> str:
    from .report import fmt_number

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
    from .report import fmt_p

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
    from .report import _latex_escape

    out = _latex_escape(str(text))
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
