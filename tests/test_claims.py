"""kgcl_lib.claims: planted effects are found with the right sign, the null keeps its level
after Holm, the bootstrap covers a known mean, the MDE is the normal power formula."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kgcl_lib import claims as C
from kgcl_lib import experiments as X
from kgcl_lib.storage import write_json

GRID_CLAIMS = [c for c in C.CLAIMS if c.manifest == "grid" and c.kind == "contrast"]
METRICS = sorted({m for c in GRID_CLAIMS for m in c.metrics})


def grid_frame(rng, n_seeds=5, effects=None, sd=0.01, dataset="synthetic-small", seed_sd=0.02):
    """A synthetic grid results frame: every (text, variant) × seed, metrics = seed effect +
    planted ``effects[(text, variant, metric)]`` + noise (sd)."""
    effects = effects or {}
    rows = []
    seed_effect = rng.normal(0, seed_sd, size=n_seeds)  # shared by the runs of a seed
    for text in ("without", "with"):
        for variant in X.VARIANTS:
            for s in range(n_seeds):
                row = {"run_id": f"{dataset}-{variant}-{text}-s{s}", "dataset": dataset, "text": text,
                       "variant": variant, "seed": s, "gamma": None}
                for m in METRICS:
                    row[m] = 0.5 + seed_effect[s] + effects.get((text, variant, m), 0.0) + rng.normal(0, sd)
                rows.append(row)
    return pd.DataFrame(rows)


def test_planted_text_gain_supported_and_loss_contradicted():
    rng = np.random.default_rng(1)
    eff = {("with", v, "test_auc"): 0.02 for v in X.VARIANTS}
    eff.update({("with", v, "test_f1"): -0.02 for v in X.VARIANTS})
    t = C.claims_table({"grid": grid_frame(rng, effects=eff)}, ["synthetic-small"], claims=GRID_CLAIMS)
    r = t.set_index(["claim", "metric"])
    assert r.loc[("1", "test_auc"), "verdict"] == "supported"
    assert r.loc[("1", "test_auc"), "diff"] == pytest.approx(0.02, abs=0.01)
    assert r.loc[("1", "test_auc"), "ci_low"] > 0
    assert r.loc[("1", "test_f1"), "verdict"] == "contradicted"
    assert r.loc[("1", "test_f1"), "ci_high"] < 0
    # claim 2 (CL over base) had nothing planted
    assert r.loc[("2", "test_auc"), "verdict"] == "inconclusive"
    assert np.isfinite(r.loc[("2", "test_auc"), "mde"])


def test_lower_is_better_claim_direction():
    rng = np.random.default_rng(2)
    eff = {(t, v, "alignment"): -0.05 for t in ("without", "with") for v in C.CL_VARIANTS}
    t = C.claims_table({"grid": grid_frame(rng, effects=eff)}, ["synthetic-small"], claims=GRID_CLAIMS)
    r = t.set_index(["claim", "metric"])
    assert r.loc[("10", "alignment"), "verdict"] == "supported"
    assert r.loc[("10", "alignment"), "diff"] < 0


def test_null_tables_keep_family_level_after_holm():
    rng = np.random.default_rng(3)
    null_claims = [c for c in GRID_CLAIMS if c.id in ("1", "2", "4")]  # 6 rows per table (speed)
    n_tables, any_supported, rows_supported, rows = 200, 0, 0, 0
    for _ in range(n_tables):
        t = C.claims_table({"grid": grid_frame(rng, n_seeds=5)}, ["synthetic-small"], claims=null_claims)
        sup = (t["verdict"] == "supported").to_numpy()
        any_supported += bool(sup.any())
        rows_supported += int(sup.sum())
        rows += len(t)
    assert rows_supported / rows <= 0.05
    assert any_supported / n_tables <= 0.05


def test_holm_matches_hand_computed():
    p = [0.01, 0.04, np.nan, 0.03, 0.2]
    # sorted 0.01, 0.03, 0.04, 0.2 with multipliers 4, 3, 2, 1 -> 0.04, 0.09, 0.09 (monotone), 0.2
    np.testing.assert_allclose(C.holm(p), [0.04, 0.09, np.nan, 0.09, 0.2])


def test_mde_is_the_normal_power_formula():
    sigma, n = 2.0, 50
    se = sigma / np.sqrt(n)
    assert C.minimum_detectable_effect(se) == pytest.approx((1.959964 + 0.841621) * se, rel=1e-5)
    # at the MDE the two-sided z-test has 80 % power (closed form)
    delta = C.minimum_detectable_effect(se)
    z = stats.norm.ppf(0.975)
    power = stats.norm.sf(z - delta / se) + stats.norm.cdf(-z - delta / se)
    assert power == pytest.approx(0.8, abs=1e-3)
    # the t version tends to the normal one with many degrees of freedom
    assert C.minimum_detectable_effect(se, df=10_000) == pytest.approx(delta, rel=1e-3)
    assert C.minimum_detectable_effect(se, df=4) > delta


def test_hierarchical_bootstrap_covers_known_mean():
    rng = np.random.default_rng(4)
    mu, covered, n_sims = 0.3, 0, 150
    for _ in range(n_sims):
        per_seed = []
        for s in range(20):
            shift = rng.normal(0, 0.05)  # seed-to-seed variation around the true mean
            per_seed.append({"gain": mu + shift + rng.normal(0, 0.5, size=40)})
        point, boot = C.hierarchical_bootstrap(per_seed, C.mean_gain_statistic, n_boot=300, rng=rng)
        est = C.bootstrap_estimate(point, boot, 20, 800)
        covered += est.ci_low <= mu <= est.ci_high
    assert 0.88 <= covered / n_sims <= 0.99


def test_bucket_statistic_hand_case():
    arrays = {"gain": np.array([1.0, 3.0, 0.0, 0.0]), "b": np.array([True, True, False, False])}
    w = np.array([[1, 1, 1, 1], [2, 0, 1, 1]], dtype=float)
    # resample 1: bucket mean 2, all 1 -> 1; resample 2: bucket 1, all 0.5 -> 0.5
    np.testing.assert_allclose(C.bucket_gain_statistic("b")(arrays, w), [1.0, 0.5])
    x = {"gain": np.array([1.0, 2.0, 3.0]), "x": np.array([0.0, 1.0, 2.0])}
    np.testing.assert_allclose(C.trend_statistic(x, np.ones((1, 3))), [1.0])


# --------------------------------------------------------------------------------------------
# A synthetic results store on disk (load_manifest + per-user arrays), cold start planted
# --------------------------------------------------------------------------------------------
def _write_run(results_dir, spec, metrics, users, ndcg, activity):
    d = X.run_dir(results_dir, spec)
    write_json(d / "config.json", {"run_id": spec.run_id, "spec": spec.key(), "train_config": {"gamma": 0.8},
                                   "eval": {"ndcg": "jurity"}})
    np.save(d / "test_users.npy", users)
    np.save(d / "user_metric_ks.npy", np.array([100]))
    np.save(d / "user_ndcg.npy", ndcg[:, None])
    np.save(d / "user_recall.npy", ndcg[:, None])
    np.save(d / "user_activity.npy", activity)
    write_json(d / "metrics.json", metrics)
    X.mark_complete(d, spec.run_id, "fake")


def make_store(tmp_path, cold_gain, all_gain, n_seeds=3, n_users=400):
    rng = np.random.default_rng(5)
    specs = X.grid_specs(["synthetic-small"], ["base", "cl_title_genre"], ["without", "with"], range(n_seeds))
    for s in range(n_seeds):
        users = np.arange(n_users, dtype=np.int64)
        activity = rng.integers(1, 200, size=n_users)
        base = rng.uniform(0.1, 0.5, size=n_users)
        cold = activity <= np.quantile(activity, 0.2)
        for spec in (sp for sp in specs if sp.seed == s):
            gain = np.where(cold, cold_gain, all_gain) if (spec.text, spec.variant) == C.PROPOSED else 0.0
            nd = base + gain + rng.normal(0, 0.05, size=n_users)
            _write_run(tmp_path, spec, {"ndcg@100": float(nd.mean())}, users, nd, activity)
    X.save_manifest(tmp_path, "grid", specs, seeds=list(range(n_seeds)))
    return tmp_path


def _cold(tmp_path, **kw):
    frames, missing = C.load_frames(tmp_path)
    assert frames["grid"] is not None and frames["gamma"] is None and "09" in missing["gamma"]
    claim5 = [c for c in C.CLAIMS if c.id in ("5", "6", "7")]
    t = C.claims_table(frames, ["synthetic-small"], users=C.UserArrays(tmp_path), missing=missing, claims=claim5,
                       n_boot=400, **kw)
    return t


def test_cold_start_planted_gain_supported(tmp_path):
    t = _cold(make_store(tmp_path, cold_gain=0.10, all_gain=0.01))
    r = t.set_index("metric")
    row = r.loc["ndcg@100 gain: bottom 10% − all"]
    assert row["verdict"] == "supported" and row["diff"] > 0
    assert row["ours"] == pytest.approx(0.10, abs=0.02)
    assert "bucket" in row["note"] and row["n_users"] == 3 * 400
    trend = r.loc["ndcg@100 gain vs activity (slope)"]
    assert trend["verdict"] == "supported" and trend["diff"] < 0
    # γ sweep and LLM runs are absent: rows say so, with no numbers
    nt = t[t["claim"].isin(["6", "7"])]
    assert nt["verdict"].str.startswith(C.NOT_TESTABLE).all() and nt["diff"].isna().all()
    md, tex = C.render(t, "claims")
    assert "not testable here" in md and r"\begin{tabular}" in tex
    assert any("Cold start" in s for s in C.summary_sentences(t))


def test_cold_start_uniform_gain_not_supported(tmp_path):
    t = _cold(make_store(tmp_path, cold_gain=0.03, all_gain=0.03))
    bottom = t[t["metric"].str.contains("bottom")]
    assert (bottom["verdict"] != "supported").all()


def test_gamma_trend_and_noninferiority():
    rng = np.random.default_rng(6)
    rows = []
    for text in ("without", "with"):
        for g in (0.2, 0.4, 0.6, 0.8, 1.0):
            for s in range(2):
                rows.append({"run_id": f"r{text}{g}{s}", "dataset": "d", "text": text, "variant": "cl_title_genre",
                             "seed": s, "gamma": g, "alignment": 0.5 + 0.3 * g + rng.normal(0, 0.01),
                             "uniformity": -2 - (0.1 if text == "with" else 0) + rng.normal(0, 0.01),
                             "ndcg@20": 0.2 + rng.normal(0, 0.01)})
    gamma = pd.DataFrame(rows)
    llm = grid_frame(rng, n_seeds=5, dataset="d", sd=0.002)
    llm = llm[(llm["variant"] == "base") & (llm["text"] == "without") | (llm["variant"] == "cl_title_genre")]
    llm.loc[llm["text"] == "with", METRICS] += 0.05  # human text: a large gain over L_base
    llm_llm = llm[llm["text"] == "with"].assign(text="llm")
    llm_llm.loc[:, METRICS] -= 0.005  # LLM text: nearly the same gain
    frame = pd.concat([llm, llm_llm], ignore_index=True)
    claims = [c for c in C.CLAIMS if c.id in ("6", "7", "11")]
    t = C.claims_table({"gamma": gamma, "llm": frame}, ["d"], claims=claims).set_index(["claim", "metric"])
    assert t.loc[("6", "alignment: γ 0.2→1"), "verdict"] == "supported"
    assert t.loc[("6", "alignment: γ 0.2→1"), "diff"] == pytest.approx(0.24, abs=0.03)
    assert t.loc[("11", "uniformity"), "verdict"] == "supported"
    assert t.loc[("7", "ndcg@20"), "verdict"] == "supported"


def test_rebuilds_per_user_arrays_for_old_runs(tmp_path):
    """A run stored without per-user arrays: rebuilt from topk + test_users + the seeded split,
    equal to what evaluate would store."""
    from kgcl_lib import metrics as M
    from kgcl_lib.data import user_train_counts

    ds = X.open_dataset("synthetic-tiny")
    spec = X.RunSpec("synthetic-tiny", "base", "without", 0)
    split = X.make_split(ds, 0)
    users, truth, _ = X.test_users_and_truth(split, ds.n_users, ds.n_items)
    rng = np.random.default_rng(0)
    top = np.argsort(rng.random((len(users), ds.n_items)), axis=1)[:, :20].astype(np.int64)
    d = X.run_dir(tmp_path, spec)
    write_json(d / "config.json", {"run_id": spec.run_id, "spec": spec.key(), "eval": {"ndcg": "jurity"}})
    np.save(d / "topk.npy", top)
    np.save(d / "test_users.npy", users)
    X.mark_complete(d, spec.run_id, "old")
    loader = C.UserArrays(tmp_path, lambda name: X.open_dataset(name))
    got = loader.get(spec.run_id, "ndcg@20")
    np.testing.assert_allclose(got["value"], M.ndcg_per_user(top, truth, 20))
    np.testing.assert_array_equal(got["activity"], user_train_counts(split.train, ds.n_users)[users])
    assert loader.rebuilt == [spec.run_id]
    assert json.loads((d / "config.json").read_text())["run_id"] == spec.run_id


def test_paired_t_matches_scipy():
    d = np.array([0.3, -0.1, 0.4, 0.2, 0.25])
    est = C.t_estimate(d)
    ref = stats.ttest_1samp(d, 0.0)
    assert est.p == pytest.approx(ref.pvalue, rel=1e-9)
    lo, hi = ref.confidence_interval(0.95)
    assert (est.ci_low, est.ci_high) == pytest.approx((lo, hi), rel=1e-9)


def test_per_user_metric_single_seed_uses_users(tmp_path):
    """One seed: a per-user metric (NDCG@100) is still judged, by resampling users."""
    make_store(tmp_path, cold_gain=0.05, all_gain=0.05, n_seeds=1)
    frames, missing = C.load_frames(tmp_path)
    claim3 = [c for c in C.CLAIMS if c.id == "3"]
    t = C.claims_table(frames, ["synthetic-small"], users=C.UserArrays(tmp_path), claims=claim3, n_boot=300)
    row = t.set_index("metric").loc["ndcg@100"]
    assert row["verdict"] == "supported" and row["diff"] == pytest.approx(0.05, abs=0.01)
    assert row["n_seeds"] == 1 and row["n_users"] == 400 and "users" in row["method"]
    # metrics the store lacks are rows without numbers
    assert t.set_index("metric").loc["recall@20", "verdict"].startswith(C.NOT_TESTABLE)


def test_dataset_without_text_source():
    rng = np.random.default_rng(7)
    frame = grid_frame(rng, dataset="book-crossing")
    frame["synopses"] = np.where(frame["text"] == "with", "no human synopses or titles available for book-crossing: "
                                 "no text", None)
    frame["pairs"] = np.where(frame["variant"] == "base", None, "book-crossing: KG-attribute pairs (Jaccard)")
    t = C.claims_table({"grid": frame}, ["book-crossing"], claims=GRID_CLAIMS).set_index(["claim", "metric"])
    assert t.loc[("1", "test_auc"), "verdict"] == "not testable here (no text source on this dataset)"
    assert np.isnan(t.loc[("1", "test_auc"), "diff"])
    row = t.loc[("2", "test_auc")]  # CL over L_base: the contrasts without text remain
    assert row["verdict"] == "inconclusive" and "only the contrasts without text" in row["note"]
    assert "KG attributes" in row["note"]
    # the paper's effect is of the same two contrasts (Table 2, book, without text)
    assert row["paper_diff"] == pytest.approx(((0.6911 - 0.6923) + (0.6946 - 0.6923)) / 2)


def test_latex_is_ascii_and_markdown_has_every_row():
    rng = np.random.default_rng(8)
    frames = {"grid": grid_frame(rng, n_seeds=3)}
    t = C.claims_table(frames, ["synthetic-small"], missing={"gamma": "notebook 09 stored no 'gamma' runs"})
    md, tex = C.render(t, "Claims: Δ and γ")
    assert tex.isascii(), sorted({ch for ch in tex if not ch.isascii()})
    body = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| Claim")]
    assert len(body) == len(t)
    assert "not testable here (notebook 09 stored no 'gamma' runs)" in md
