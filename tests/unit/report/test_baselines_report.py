"""Issue 29's reporting: the simple-baselines block under Tables 2-4 (means ± sd of the stored
seeds, the tuning budget in the caption) and the added check "the paper's best model beats the
best tuned simple baseline" (judged in the claims' Holm family, labelled as not the paper's)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgcl_lib import claims as C
from kgcl_lib import report as R

METRICS = ["test_auc", "test_f1", "ndcg@20"]


def frames(rng, n_seeds=6, kgcn_gain=0.0, mf_level=0.80, dataset="synthetic-small", with_text=True):
    """KGCN grid (base / CL, without / with text) and baselines frames on shared seeds."""
    seed_effect = rng.normal(0, 0.01, n_seeds)
    grid, base = [], []
    cells = [("without", "base"), ("without", "cl_title_genre"), ("with", "base"), ("with", "cl_title_genre"),
             ("without", "kgcn_original")]
    for text, variant in cells if with_text else [c for c in cells if c[0] == "without"]:
        for s in range(n_seeds):
            gain = kgcn_gain if (text, variant) == C.PROPOSED else 0.0
            grid.append({"run_id": f"k-{text}-{variant}-{s}", "dataset": dataset, "text": text, "variant": variant,
                         "seed": s, "backbone": "kgcn", "na_reason": None,
                         **{m: 0.75 + gain + seed_effect[s] + rng.normal(0, 0.002) for m in METRICS}})
    for b, level in (("pop", 0.60), ("mf", mf_level), ("lightgcn", 0.70)):
        for s in range(n_seeds):
            base.append({"run_id": f"b-{b}-{s}", "dataset": dataset, "text": "without", "variant": "base", "seed": s,
                         "backbone": b, "na_reason": None,
                         **{m: level + seed_effect[s] + rng.normal(0, 0.002) for m in METRICS}})
    return pd.DataFrame(grid), R.baseline_frame(pd.DataFrame(base))


def test_block_holds_means_and_sd_of_each_model():
    grid, base = frames(np.random.default_rng(0))
    md, tex, long = R.baselines_block(grid, base, ["test_auc", "ndcg@20"], caption="cap", label="tab:x")
    cell = long.set_index(["model", "metric"])
    mf = base[base["variant"] == "mf"]["test_auc"]
    assert cell.loc[("MF (biases) (tuned)", "auc"), "value"] == pytest.approx(mf.mean())
    assert cell.loc[("MF (biases) (tuned)", "auc"), "std"] == pytest.approx(mf.std())
    assert cell.loc[("MF (biases) (tuned)", "auc"), "display"] == f"{mf.mean():.4f} ± {mf.std():.4f}"
    lb = grid[(grid["text"] == "without") & (grid["variant"] == "base")]["ndcg@20"]
    assert cell.loc[("KGCN L_base (paper settings)", "ndcg@20"), "value"] == pytest.approx(lb.mean())
    # the best KGCN text/CL variant names itself (kgcn_original is not a text/CL variant)
    assert "(" in cell.loc[(R.baselines.BEST_KGCN, "auc"), "display"]
    # MF is the best model per metric here: bold; rows in the declared order
    assert f"**{mf.mean():.4f} ± {mf.std():.4f}**" in md
    rows = [line.split("|")[2].strip() for line in md.splitlines() if line.startswith("| ") and "±" in line]
    assert rows == ["KGCN L_base (paper settings)", R.baselines.BEST_KGCN, "Popularity (no hyper-parameters)",
                    "MF (biases) (tuned)", "LightGCN (tuned)"]
    assert "\\begin{tabular}" in tex and "tab:x" in tex


def test_tables_append_the_block_with_budget_caption():
    grid, base = frames(np.random.default_rng(1))
    ledger = pd.DataFrame([{"dataset": "synthetic-small", "backbone": "pop", "trials": 0, "cpu_seconds": 0.0},
                           {"dataset": "synthetic-small", "backbone": "mf", "trials": 20, "cpu_seconds": 41.0},
                           {"dataset": "synthetic-small", "backbone": "lightgcn", "trials": 20, "cpu_seconds": 300.0}])
    b = R.Baselines(base, ledger, {})
    md, tex = R.with_block("MAIN\n", "MAINTEX\n", grid, b, ["test_auc"], "Table 2", "tab:t2b")[:2]
    assert md.startswith("MAIN\n") and "Simple baselines" in md and "MAINTEX" in tex
    cap = b.caption("Table 2")
    assert "20 TPE trials each" in cap and "Popularity: no hyper-parameters (0 trials)" in cap
    assert "KGCN rows keep the paper's settings" in cap and "test rows never read" in cap
    assert R.with_block("MAIN\n", "T\n", grid, None, ["test_auc"], "Table 2", "x") == ("MAIN\n", "T\n", None)


def test_check_supported_when_kgcn_beats_best_baseline_and_contradicted_otherwise():
    rng = np.random.default_rng(2)
    grid, base = frames(rng, kgcn_gain=0.10, mf_level=0.80)  # proposed 0.85 vs best baseline (MF) 0.80
    t = C.claims_with_baselines({"grid": grid}, ["synthetic-small"], base, claims=())
    r = t.set_index(["claim", "metric"])
    assert set(t["claim"]) == {"B:auc", "B:f1", "B:ndcg@20"}
    assert (t["where"] == C.baselines.WHERE).all() and "not a claim of the paper" in C.baselines.WHERE
    assert r.loc[("B:auc", "test_auc"), "verdict"] == "supported"
    assert r.loc[("B:auc", "test_auc"), "diff"] == pytest.approx(0.05, abs=0.005)
    assert "best tuned simple baseline: MF" in r.loc[("B:auc", "test_auc"), "note"]
    grid, base = frames(rng, kgcn_gain=0.0, mf_level=0.80)  # every KGCN model at 0.75: MF wins
    t = C.claims_with_baselines({"grid": grid}, ["synthetic-small"], base, claims=())
    assert set(t["verdict"]) == {"contradicted"}


def test_check_joins_the_claims_holm_family():
    from tests.unit.claims.test_claims import grid_frame

    rng = np.random.default_rng(3)
    grid = grid_frame(rng, n_seeds=6)
    _, base = frames(rng, n_seeds=6)
    claims = [c for c in C.CLAIMS if c.manifest == "grid" and c.kind == "contrast"]
    alone = C.claims_table({"grid": grid}, ["synthetic-small"], claims=claims)
    both = C.claims_with_baselines({"grid": grid}, ["synthetic-small"], base, claims=claims)
    assert len(both) == len(alone) + 3
    # same raw p-values for the paper's claims, Holm over the larger family: never smaller
    merged = alone.merge(both, on=["claim", "dataset", "metric"], suffixes=("_a", "_b"))
    assert np.allclose(merged["p_a"], merged["p_b"], equal_nan=True)
    ok = merged["p_holm_a"].notna()
    assert (merged.loc[ok, "p_holm_b"] >= merged.loc[ok, "p_holm_a"] - 1e-12).all()
    assert both[both["claim"].str.startswith("B:")]["p_holm"].notna().all()


def test_check_without_text_runs_uses_best_kgcn_configuration():
    grid, base = frames(np.random.default_rng(4), with_text=False)
    t = C.claims_with_baselines({"grid": grid}, ["synthetic-small"], base, claims=())
    assert t["verdict"].str.match("supported|contradicted|inconclusive").all()
    assert t["note"].str.contains("the best KGCN configuration").all()
    # kgcn_original (KGCN's own settings) is not one of the paper's models
    assert not t["note"].str.contains("kgcn_original").any()


def test_check_stands_in_on_a_dataset_whose_text_cells_are_na():
    """As the store reads Book-Crossing offline: the "with text" cells are n/a rows and every
    trained run records text source "none" -- still a verdict, on the best KGCN configuration."""
    grid, base = frames(np.random.default_rng(6), with_text=False, mf_level=0.9)
    na = pd.DataFrame([{"run_id": f"na-{v}-{s}", "dataset": "synthetic-small", "text": "with", "variant": v, "seed": s,
                        "backbone": "kgcn", "na_reason": "no text", "text_source": None,
                        "synopses": "no synopses, titles or genres for synthetic-small: no text",
                        **{m: np.nan for m in METRICS}} for v in ("base", "cl_title_genre") for s in range(6)])
    grid = pd.concat([grid.assign(text_source="none", synopses=None), na], ignore_index=True)
    t = C.claims_with_baselines({"grid": grid}, ["synthetic-small"], base, claims=())
    assert len(t) == len(METRICS)
    assert (t["verdict"] == "contradicted").all(), t[["claim", "verdict", "note"]]  # MF at 0.9 beats KGCN's 0.75
    assert t["note"].str.contains("stands in").all()


def test_best_baseline_and_untrained_input():
    _, base = frames(np.random.default_rng(5), mf_level=0.9)
    assert R.best_baseline(base, "test_auc") == {"synthetic-small": "mf"}
    assert R.baseline_frame(None) is None
    with pytest.raises(ValueError, match="backbone"):
        R.baseline_frame(pd.DataFrame({"dataset": ["x"], "variant": ["base"]}))
