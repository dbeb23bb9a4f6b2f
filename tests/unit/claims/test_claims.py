"""kgcl_lib.claims: planted effects are found with the right sign, the null keeps its level after Holm,
the claims read as the paper states them (arms, per-domain directions, paper Δ), one seed and the
metadata substitute never give a verdict, claim 7 is an equivalence test with declared margins.
(The calibration simulations are in tests/unit/claims/test_claims_simulation.py.)"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kgcl_lib import claims as C
from kgcl_lib import experiments as X
from kgcl_lib.storage import write_json

GRID_CLAIMS = [c for c in C.CLAIMS if c.manifest == "grid" and c.kind in ("contrast", "highest")]
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
    t = C.claims_table({"grid": grid_frame(rng, effects=eff, sd=0.002)}, ["synthetic-small"], claims=GRID_CLAIMS)
    r = t.set_index(["claim", "metric"])
    # claim 1 as the paper tests it: the text + CL models against the no-text L_base
    assert r.loc[("1", "test_auc"), "verdict"] == "supported"
    assert r.loc[("1", "test_auc"), "diff"] == pytest.approx(0.02, abs=0.01)
    assert r.loc[("1", "test_auc"), "ci_low"] > 0
    assert r.loc[("1", "test_f1"), "verdict"] == "contradicted"
    assert r.loc[("1", "test_f1"), "ci_high"] < 0
    assert r.loc[("1x", "test_auc"), "verdict"] == "supported"  # text alone, a separate question
    # CL without text (claim 2) and CL within the text arm (2x) had nothing planted
    assert r.loc[("2", "test_auc"), "verdict"].startswith("inconclusive (MDE")
    assert r.loc[("2x", "test_auc"), "verdict"].startswith("inconclusive (MDE")
    assert np.isfinite(r.loc[("2", "test_auc"), "mde"])
    assert not r.loc[("2x", "test_auc"), "paper_claim"] and r.loc[("1", "test_auc"), "paper_claim"]
    assert r.loc[("1", "test_auc"), "test"] == "paired t over seeds" and r.loc[("1", "test_auc"), "n_seeds"] == 5


def test_lower_is_better_claim_direction():
    rng = np.random.default_rng(2)
    eff = {(t, v, "alignment"): -0.05 for t in ("without", "with") for v in C.CL_VARIANTS}
    t = C.claims_table({"grid": grid_frame(rng, effects=eff)}, ["synthetic-small"], claims=GRID_CLAIMS)
    r = t.set_index(["claim", "metric"])
    assert r.loc[("10", "alignment"), "verdict"] == "supported"
    assert r.loc[("10", "alignment"), "diff"] < 0


def test_null_tables_keep_family_level_after_holm():
    """End to end through claims_table (the calibration simulations check it at scale)."""
    rng = np.random.default_rng(3)
    null_claims = [c for c in GRID_CLAIMS if c.id in ("1", "2", "4")]  # 6 rows per table (speed)
    n_tables, any_supported, rows_supported, rows = 60, 0, 0, 0
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


def test_per_seed_statistics_hand_case():
    g = np.array([1.0, 3.0, 0.0, 0.0])
    # bucket {0, 1}: mean 2, all 1 -> 1
    assert C.bucket_minus_all(g, np.array([True, True, False, False])) == pytest.approx(1.0)
    assert C.mean_gain(g) == pytest.approx(1.0)
    assert C.ols_slope(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0])) == pytest.approx(1.0)
    ref = stats.linregress([0.1, 0.5, 0.7, 1.0], [3.0, 1.0, 2.0, -1.0]).slope
    assert C.ols_slope(np.array([3.0, 1.0, 2.0, -1.0]), np.array([0.1, 0.5, 0.7, 1.0])) == pytest.approx(ref)


def test_holm_levels_and_mde_at_the_level_each_row_faces():
    p = np.array([0.001, 0.04, np.nan, 0.01])
    np.testing.assert_allclose(C.holm_levels(p), [0.05 / 3, 0.05, np.nan, 0.05 / 2])
    rng = np.random.default_rng(9)
    frame = grid_frame(rng, n_seeds=4, effects={("with", "cl_title_genre", m): 0.004 for m in METRICS}, sd=0.01)
    t = C.claims_table({"grid": frame}, ["synthetic-small"], claims=GRID_CLAIMS)
    inc = t[t["verdict"].str.startswith("inconclusive (MDE")]
    assert len(inc) > 5
    # the MDE is at the row's Holm level (exact t power), not at 0.05
    for r in inc.itertuples():
        assert r.mde == pytest.approx(C.minimum_detectable_effect(r.se, r.level, 0.8, r.df))
        assert r.level <= 0.05
        if abs(r.diff) > r.mde:  # never "inconclusive (MDE x)" beside |Δ| > MDE without a reason
            assert "Holm stopped" in r.verdict or "by chance" in r.verdict


# --------------------------------------------------------------------------------------------
# A synthetic results store on disk (load_manifest + per-user arrays), cold start planted
# --------------------------------------------------------------------------------------------
def _write_run(results_dir, spec, metrics, users, ndcg, activity):
    d = X.run_dir(results_dir, spec)
    write_json(d / "config.json", {"run_id": spec.run_id, "spec": spec.key(), "train_config": {"gamma": 0.8},
                                   "eval": {"ndcg": "jurity"},
                                   "text_source": {"without": "none", "llm": "llm"}.get(spec.text, "human")})
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
    return C.claims_table(frames, ["synthetic-small"], users=C.UserArrays(tmp_path), missing=missing, claims=claim5,
                          **kw)


def test_cold_start_planted_gain_supported(tmp_path):
    t = _cold(make_store(tmp_path, cold_gain=0.10, all_gain=0.01))
    r = t.set_index("metric")
    row = r.loc["ndcg@100 gain: bottom 10% − all"]
    assert row["verdict"] == "supported" and row["diff"] > 0
    assert row["ours"] == pytest.approx(0.10, abs=0.02) and row["baseline"] == pytest.approx(0.028, abs=0.01)
    assert row["diff"] == pytest.approx(row["ours"] - row["baseline"], abs=1e-12)  # columns agree with the effect
    assert "bucket" in row["note"] and row["n_users"] == 400 and row["n_seeds"] == 3  # distinct users, not pairs
    assert row["df"] == 2 and row["test"].startswith("t over per-seed")
    trend = r.loc["ndcg@100 gain vs activity (slope)"]
    assert trend["verdict"] == "supported" and trend["diff"] < 0
    assert np.isnan(trend["ours"]) and np.isnan(trend["baseline"])  # a slope has no two means
    # γ sweep and LLM runs are absent: rows say so, with no numbers
    nt = t[t["claim"].isin(["6", "7"])]
    assert nt["verdict"].str.startswith(C.NOT_TESTABLE).all() and nt["diff"].isna().all()
    md, tex = C.render(t, "claims")
    assert "not testable here" in md and r"\begin{tabular}" in tex
    assert any("Supported: claim 5" in s for s in C.summary_sentences(t))


def test_cold_start_uniform_gain_not_supported(tmp_path):
    t = _cold(make_store(tmp_path, cold_gain=0.03, all_gain=0.03))
    bottom = t[t["metric"].str.contains("bottom")]
    assert (bottom["verdict"] != "supported").all()


def test_one_seed_is_descriptive_only(tmp_path):
    """One seed: numbers shown, never a verdict (per-user and cold-start rows alike)."""
    make_store(tmp_path, cold_gain=0.20, all_gain=0.05, n_seeds=1)
    frames, missing = C.load_frames(tmp_path)
    claims = [c for c in C.CLAIMS if c.id in ("3", "5")]
    t = C.claims_table(frames, ["synthetic-small"], users=C.UserArrays(tmp_path), claims=claims)
    row = t.set_index("metric").loc["ndcg@100"]
    assert row["verdict"] == f"{C.NOT_TESTABLE} ({C.ONE_SEED})"
    assert row["diff"] == pytest.approx(0.05 + 0.15 * 0.2, abs=0.02) and row["n_users"] == 400
    assert t["verdict"].str.contains(C.ONE_SEED, regex=False).all() and t["p"].isna().all()
    # claim 3 "for all K" covers the cut-offs the store has (here only NDCG@100), and says which are missing
    assert list(t[t["claim"] == "3"]["metric"]) == ["ndcg@100"]


def _gamma_frame(rng, n_seeds=4, dataset="ml-synth", align_slope=0.3, peak=0.01):
    rows = []
    for text in ("without", "with"):
        for g in (0.2, 0.4, 0.6, 0.8, 1.0):
            for s in range(n_seeds):
                rows.append({"run_id": f"{dataset}{text}{g}{s}", "dataset": dataset, "text": text,
                             "variant": "cl_title_genre", "seed": s, "gamma": g,
                             "alignment": 0.5 + align_slope * g + rng.normal(0, 0.01),
                             "uniformity": -2 - (0.1 if text == "with" else 0) + rng.normal(0, 0.01),
                             "ndcg@20": 0.2 + (peak if g == 0.8 else 0) + rng.normal(0, 0.002)})
    return pd.DataFrame(rows)


def test_gamma_claims_as_the_paper_states_them():
    rng = np.random.default_rng(6)
    gamma = pd.concat([_gamma_frame(rng), _gamma_frame(rng, dataset="book-synth", align_slope=0.05)])
    claims = [c for c in C.CLAIMS if c.id in ("6", "11")]
    t = C.claims_table({"gamma": gamma}, ["ml-synth", "book-synth"], claims=claims).set_index(
        ["claim", "dataset", "metric"])
    assert t.loc[("6", "ml-synth", "ndcg@20: peak at γ 0.8"), "verdict"] == "supported"
    row = t.loc[("6", "ml-synth", "alignment: slope on γ")]
    assert row["verdict"] == "supported" and row["diff"] == pytest.approx(0.3, abs=0.03)
    # books: the alignment trend is "less prominent" than on movies
    row = t.loc[("6", "book-synth", "alignment slope: book − movie")]
    assert row["verdict"] == "supported" and row["diff"] == pytest.approx(-0.25, abs=0.03)
    assert t.loc[("11", "ml-synth", "uniformity"), "verdict"] == "supported"
    assert "at 5 of 5 γ" in t.loc[("11", "ml-synth", "uniformity"), "note"]
    assert ("11", "book-synth", "uniformity") not in t.index  # the paper states claim 11 for movies only
    # no interior peak: the weaker neighbour contrast is tested and not supported
    flat = C.claims_table({"gamma": _gamma_frame(rng, peak=0.0)}, ["ml-synth"], claims=claims)
    assert flat.set_index("metric").loc["ndcg@20: peak at γ 0.8", "verdict"] != "supported"


def _llm_frame(rng, human_gain, llm_minus_human, sd=0.002, dataset="ml-synth"):
    llm = grid_frame(rng, n_seeds=5, dataset=dataset, sd=sd)
    llm = llm[(llm["variant"] == "base") & (llm["text"] == "without") | (llm["variant"] == "cl_title_genre")].copy()
    llm.loc[llm["text"] == "with", METRICS] += human_gain
    llm_llm = llm[llm["text"] == "with"].assign(text="llm")
    llm_llm.loc[:, METRICS] += llm_minus_human
    return pd.concat([llm, llm_llm], ignore_index=True)


def test_equivalence_margins_are_half_the_papers_table5_gain():
    from kgcl_lib.report import paper_table

    p = paper_table("table5")
    for domain, margins in C.EQUIVALENCE_MARGINS.items():
        d = p[p["domain"] == domain].set_index(["text", "variant", "metric"])["value"]
        for metric, margin in margins.items():
            gain = d[("human", "cl_title_genre", metric)] - d[("without", "base", metric)]
            assert margin == pytest.approx(0.5 * gain, abs=1e-9)
            # the paper's own LLM − human difference is inside the margin
            assert abs(d[("llm", "cl_title_genre", metric)] - d[("human", "cl_title_genre", metric)]) < margin


def test_claim7_is_an_equivalence_test_inside_holm():
    rng = np.random.default_rng(10)
    claims = [c for c in C.CLAIMS if c.id == "7"]
    t = C.claims_table({"llm": _llm_frame(rng, 0.05, -0.001)}, ["ml-synth"], claims=claims).set_index("metric")
    row = t.loc["recall@20"]
    assert row["verdict"] == "supported" and row["test"].startswith("TOST") and row["p_holm"] < 0.05
    assert row["p"] == pytest.approx(float(C.tost_p(row["diff"], row["se"], row["df"], 0.00845)))
    assert row["margin"] == 0.00845
    # human text 0.05 *worse* than L_base and the LLM a further 0.02 worse: not equivalent, whatever the sign
    bad = C.claims_table({"llm": _llm_frame(rng, -0.05, -0.02)}, ["ml-synth"], claims=claims)
    b = bad.set_index("metric")
    assert b.loc["recall@20", "verdict"] != "supported" and b.loc["ndcg@20", "verdict"] != "supported"
    assert b.loc["intra@20", "verdict"] == "supported"  # 0.02 is well inside intra-list's margin of 0.11
    assert b.loc["recall@20", "verdict"].startswith("inconclusive (95% CI outside")
    # TOST p against scipy's one-sided t tests
    d = np.array([0.001, -0.002, 0.0005, 0.0015, -0.001])
    lo = stats.ttest_1samp(d, -0.004, alternative="greater").pvalue
    hi = stats.ttest_1samp(d, 0.004, alternative="less").pvalue
    e = C.t_estimate(d)
    assert float(C.tost_p(e.diff, e.se, e.df, 0.004)) == pytest.approx(max(lo, hi), rel=1e-9)


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
    write_json(d / "config.json", {"run_id": spec.run_id, "spec": spec.key(), "eval": {"ndcg": "jurity"},
                                   "text_source": "none" if spec.text == "without" else "human"})
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


def test_dataset_without_text_source():
    rng = np.random.default_rng(7)
    frame = grid_frame(rng, dataset="book-crossing")
    frame["synopses"] = np.where(frame["text"] == "with", "no human synopses or titles available for book-crossing: "
                                 "no text", None)
    frame["pairs"] = np.where(frame["variant"] == "base", None, "book-crossing: KG-attribute pairs (Jaccard)")
    t = C.claims_table({"grid": frame}, ["book-crossing"], claims=GRID_CLAIMS).set_index(["claim", "metric"])
    assert t.loc[("1", "test_auc"), "verdict"] == "not testable here (no text source on this dataset)"
    assert np.isnan(t.loc[("1", "test_auc"), "diff"])
    assert ("1", "test_f1") not in t.index  # Table 2: no F1 claim on books
    assert ("2", "test_auc") not in t.index  # Table 2: CL without text n.s. on books, no claim
    row = t.loc[("2x", "test_auc")]  # CL within the arms: the contrasts without text remain
    assert row["verdict"].startswith("inconclusive") and "only the contrasts without text" in row["note"]
    assert "KG attributes" in row["note"]
    # the paper's effect is of the same two contrasts (Table 2, book, without text)
    assert row["paper_diff"] == pytest.approx(((0.6911 - 0.6923) + (0.6946 - 0.6923)) / 2)
    assert t.loc[("4x", "intra@20"), "direction"] == -1  # Table 4: CL lowers intra-list diversity on books
    assert t.loc[("4x", "inter@20"), "direction"] == 1


def test_metadata_substitute_never_supports_a_text_claim():
    """ML-100K offline: the "text" is the verbalised title + genres; a large planted text gain
    must not read as the paper's claim about semantic text."""
    rng = np.random.default_rng(14)
    eff = {("with", v, m): 0.05 for v in X.VARIANTS for m in METRICS}
    frame = grid_frame(rng, dataset="ml-100k", effects=eff).assign(
        text_source=lambda f: np.where(f["text"] == "with", "metadata", "none"))
    t = C.claims_table({"grid": frame}, ["ml-100k"], claims=GRID_CLAIMS)
    text_claims = t[t["claim"].isin(["1", "1x", "3", "4", "8"])]
    assert (text_claims["verdict"] == f"{C.NOT_TESTABLE} ({C.SUBSTITUTE})").all()
    r = t.set_index(["claim", "metric"])
    assert "only the contrasts without text" in r.loc[("2x", "test_auc"), "note"]
    assert r.loc[("2", "test_auc"), "verdict"] != "not testable here"  # CL without text: no text involved


def test_claims_quote_the_paper_with_its_numbers():
    rng = np.random.default_rng(15)
    t = C.claims_table({"grid": grid_frame(rng, dataset="ml-100k")}, ["ml-100k"], claims=GRID_CLAIMS)
    r = t.set_index(["claim", "metric"])
    # claim 3 "for all K": every Recall/NDCG cut-off of Table 3, against the no-text L_base
    assert set(t[t["claim"] == "3"]["metric"]) == set(C.RANKING_METRICS)
    assert r.loc[("3", "ndcg@5"), "paper_diff"] == pytest.approx(0.0882 - 0.0677)
    # claim 1: Table 2's text + CL models against the no-text L_base (movie AUC)
    assert r.loc[("1", "test_auc"), "paper_diff"] == pytest.approx(((0.9777 - 0.9761) + (0.9780 - 0.9761)) / 2)
    # claim 12 "in most cases": title+genre over genre, paper Δ from Tables 2 and 3
    assert r.loc[("12", "test_f1"), "paper_diff"] == pytest.approx(((0.9319 - 0.9311) + (0.9324 - 0.9320)) / 2)
    assert r.loc[("12", "recall@20"), "paper_diff"] == pytest.approx(((0.1976 - 0.1999) + (0.2136 - 0.2082)) / 2)
    # claim 8 "highest": the weakest of the five contrasts
    assert r.loc[("8", "inter@20"), "paper_diff"] == pytest.approx(0.7806 - 0.7615)
    assert "weakest" in r.loc[("8", "inter@20"), "test"]
    for c in C.CLAIMS:
        assert c.quote and c.where and c.arms
        assert c.paper_claim == (not c.quote.startswith("Extra question"))
    md, _ = C.render(t)
    assert "1x (extra)" in md and "| Seeds | Users |" in md and "%" not in md.split("\n- ")[0].replace("95%", "")


def test_latex_is_ascii_and_markdown_has_every_row():
    rng = np.random.default_rng(8)
    frames = {"grid": grid_frame(rng, n_seeds=3)}
    t = C.claims_table(frames, ["synthetic-small"], missing={"gamma": "notebook 09 stored no 'gamma' runs"})
    md, tex = C.render(t, "Claims: Δ and γ")
    assert tex.isascii(), sorted({ch for ch in tex if not ch.isascii()})
    body = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| Claim")]
    assert len(body) == len(t)
    assert "not testable here (notebook 09 stored no 'gamma' runs)" in md


def test_readme_claims_summary_is_generated_from_the_table(tmp_path):
    """scripts/readme_results.py writes the summary sentences of the stored claims table."""
    import importlib.util

    from tests.helpers import REPO

    spec = importlib.util.spec_from_file_location("readme_results", REPO / "scripts" /
                                                  "readme_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    store = make_store(tmp_path / "runs" / "prof", cold_gain=0.10, all_gain=0.01)
    t = _cold(store)
    figures = tmp_path / "figures"
    md, tex = C.render(t, "claims")
    figures.mkdir()
    (figures / "claims.md").write_text(md)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:prof:begin x -->\nold\n<!-- results:prof:end -->\ntail\n")
    results_doc = tmp_path / "results.md"
    results_doc.write_text(readme.read_text())
    args = ["--profile", "prof", "--runs-dir", str(tmp_path / "runs"), "--figures-dir", str(figures),
            "--readme", str(readme), "--results-doc", str(results_doc)]
    assert mod.main(args) == 2  # no claims.csv yet: nothing written
    assert "old" in readme.read_text()
    C.save_csv(t, figures / "claims.csv")
    back = C.load_csv(figures / "claims.csv")
    assert C.summary_sentences(back) == C.summary_sentences(t)
    assert mod.main(args) == 0
    text = readme.read_text()
    assert all(f"- {s}" in results_doc.read_text() for s in C.summary_sentences(t))
    assert "old" not in text and text.startswith("intro\n") and text.endswith("tail\n")
    for sentence in C.summary_sentences(t):
        assert f"- {sentence}" in text
    assert "Supported: claim 5 ndcg@100 gain: bottom" in text
