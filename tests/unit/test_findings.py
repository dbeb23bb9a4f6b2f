"""kgcl_lib.findings (the generated "What this run shows" sentences) and the report helpers they
read (paper_comparison, table1_comparison, place_labels)."""

import numpy as np
import pandas as pd
import pytest

from kgcl_lib import findings, report


def _ours(dataset="ml-100k"):
    rows = [("without", "base", 0.90), ("with", "cl_genre", 0.95), ("with", "cl_title_genre", 0.93)]
    return pd.DataFrame([{"dataset": dataset, "text": t, "variant": v, "metric": "auc", "value": x, "std": 0.01}
                         for t, v, x in rows])


def test_paper_comparison_matches_domain_and_subtracts():
    paper = report.paper_table("table2")
    cmp = report.paper_comparison(_ours(), paper)
    row = cmp[(cmp["text"] == "with") & (cmp["variant"] == "cl_genre")].iloc[0]
    want = paper[(paper.domain == "movie") & (paper.text == "with") & (paper.variant == "cl_genre")
                 & (paper.metric == "auc")]["value"].item()
    assert row["paper"] == pytest.approx(want) and row["difference"] == pytest.approx(0.95 - want)
    assert row["paper dataset"] == "ML-20M" and row["ours sd"] == 0.01
    synthetic = report.paper_comparison(_ours("synthetic-small"), paper)
    assert synthetic["paper"].isna().all() and len(synthetic) == 3


def test_comparison_sentences():
    cmp = report.paper_comparison(_ours(), report.paper_table("table2"))
    text = " ".join(findings.comparison(cmp))
    assert "best is +CL genre with semantic text (0.9500, +0.0500 over the baseline's 0.9000)" in text
    # the paper's best movie AUC is +CL title+genre with text (0.9780)
    assert "the paper's best on ML-20M is +CL title+genre with semantic text (0.9780)" in text
    diffs = cmp["difference"].abs()
    assert f"by {diffs.mean():.4f} on average (largest {diffs.max():.4f}) over 3 numbers" in text
    none = findings.comparison(report.paper_comparison(_ours("synthetic-small"), report.paper_table("table2")))
    assert none[-1] == "synthetic-small is not one of the paper's datasets: there is no paper number to compare with."


def test_table1_comparison_and_sentence():
    cmp = report.table1_comparison({"book-crossing": {"users": 17860, "contents": 14000, "relations": 25},
                                    "synthetic-small": {"users": 60}})
    bx = cmp[cmp["dataset"] == "book-crossing"].set_index("quantity")
    assert bx.loc["users", "difference"] == 0 and bx.loc["contents", "difference"] == 14000 - 14967
    assert bx.loc["contents", "ratio"] == pytest.approx(14000 / 14967)
    lines = findings.table1_counts(cmp)
    assert lines[0].startswith("book-crossing vs the paper's Book-Crossing: 2 of 3 counts are equal")
    assert lines[1] == "synthetic-small is not one of the paper's datasets: Table 1 has no number to compare with."


def test_cold_start_sentences_compare_relative_drops():
    rows = []
    for seed in (0, 1):
        rows += [{"dataset": "d", "model": "base", "seed": seed, "percentile": 100.0, "value": 0.4},
                 {"dataset": "d", "model": "base", "seed": seed, "percentile": 1.0, "value": 0.2},
                 {"dataset": "d", "model": "best", "seed": seed, "percentile": 100.0, "value": 0.5},
                 {"dataset": "d", "model": "best", "seed": seed, "percentile": 1.0, "value": 0.4}]
    lines = findings.cold_start(pd.DataFrame(rows), "base")
    assert lines[0] == "d, base: NDCG@100 0.4000 over all test users, 0.2000 for the bottom 1% (-50%)."
    assert "loses less of its NDCG@100 in the coldest bucket than the baseline (20% vs 50%)" in lines[2]
    assert lines[2].endswith("so this run agrees.")


def test_gamma_sentences():
    points = pd.DataFrame({"dataset": "d", "text": ["with"] * 3 + ["without"] * 3, "gamma": [0.2, 0.6, 1.0] * 2,
                           "alignment": [0.1, 0.2, 0.3, 0.3, 0.2, 0.1], "uniformity": [-3, -3, -1, -2, -2, -2],
                           "ndcg@20": [0.1, 0.3, 0.2, 0.1, 0.1, 0.1]})
    lines = findings.gamma(points)
    assert lines[0].startswith("d: the highest NDCG@20 (0.3000) is at γ = 0.6 with semantic text")
    assert "lower (better) uniformity at 2 of 3 γ values" in lines[1]
    assert "with semantic text: alignment falls as γ decreases (Spearman ρ(γ, ℓ_align) = +1.00)" in lines[2]
    assert "without semantic text: alignment rises as γ decreases" in lines[3]


def test_significance_counts_better_models_only():
    ours = pd.DataFrame({"dataset": "ml-100k", "text": ["without", "with", "with"],
                         "variant": ["base", "cl_genre", "base"], "metric": "auc", "value": [0.9, 0.95, 0.85],
                         "p_value": [np.nan, 0.01, 0.001], "n": 3})
    line = findings.significance(ours, report.paper_table("table2"))[0]
    assert line.startswith("ml-100k, AUC: 1 of 2 models beat the baseline significantly (p < 0.05, 3 seeds)")
    assert "in the paper, 4 of 5 on ML-20M" in line


def test_as_markdown():
    assert findings.as_markdown(["a.", "b."]) == "- a.\n- b."
    assert findings.as_markdown([]) == "- (no results to describe)"


def test_place_labels_never_overlap():
    plt, _ = report.pyplot_and_seaborn()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.scatter([0.5, 0.5, 0.5, 0.52], [1.0, 1.0, 1.0, 1.01])
    anns = report.place_labels(ax, [(0.5, 1.0), (0.5, 1.0), (0.5, 1.0), (0.52, 1.01)], ["γ=0.2", "γ=0.6", "γ=1", "γ=0.8"])
    fig.canvas.draw()
    boxes = [a.get_window_extent(fig.canvas.get_renderer()) for a in anns]
    assert len(boxes) == 4
    for i in range(4):
        for j in range(i + 1, 4):
            assert not boxes[i].overlaps(boxes[j]), (i, j)
    plt.close(fig)
