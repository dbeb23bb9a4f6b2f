"""One claim on one dataset -> rows of the claims table: contrasts, cold-start gains, gamma trends and
non-inferiority, from the results frame and per-user arrays."""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from .. import metrics as M
from ..constants import BASELINE
from ..data import user_train_counts
from ..experiments import make_split, test_users_and_truth
from ..metrics import cold_start_buckets
from ..report import domain_of, paper_table
from .definitions import CLAIMS_COLUMNS, COLD_PERCENTILES, GAMMA_DIRECTIONS, NOT_TESTABLE, PAPER_METRIC, Claim
from .statistics import (
    ALPHA,
    POWER,
    Estimate,
    bootstrap_estimate,
    bucket_gain_statistic,
    hierarchical_bootstrap,
    mean_gain_statistic,
    minimum_detectable_effect,
    t_estimate,
    trend_statistic,
    welch_estimate,
)


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
    row = {c: np.nan for c in CLAIMS_COLUMNS}
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
    paper = paper_table(table)
    paper = paper[(paper["domain"] == domain) & (paper["metric"] == metric)]
    return {(r.text, r.variant): float(r.value) for r in paper.itertuples()}


def _paper_effect(claim: Claim, dataset: str, metric: str, contrasts: tuple | None = None) -> tuple[float, float]:
    """The claim's contrast (or ``contrasts``) on the paper's transcribed table for ``dataset``'s domain."""
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
