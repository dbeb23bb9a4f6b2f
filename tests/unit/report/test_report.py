"""kgcl_lib.report: paper CSVs, ranking marks, table rendering, figures, headlines."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from kgcl_lib import report as R


def test_paper_tables_load_and_name_their_table():
    for i in range(1, 6):
        t = R.paper_table(f"table{i}")
        assert (t["table"] == f"table{i}").all()
    t2 = R.paper_table("table2")
    assert len(t2) == 2 * 2 * 6  # domains x metrics x (text x variant)
    # spot values transcribed from the paper's Table 2/3/4/5
    row = t2[(t2.domain == "movie") & (t2.text == "with") & (t2.variant == "cl_title_genre") & (t2.metric == "auc")]
    assert row["value"].item() == pytest.approx(0.9780) and row["p_value"].item() == pytest.approx(5.33e-5)
    t3 = R.paper_table("table3")
    assert len(t3) == 2 * 2 * 3 * 10
    r = t3[(t3.domain == "book") & (t3.text == "without") & (t3.variant == "base") & (t3.metric == "ndcg@50")]
    assert r["value"].item() == pytest.approx(0.076)
    t5 = R.paper_table("table5")
    assert set(t5["text"]) == {"without", "human", "llm"}
    with pytest.raises(ValueError):
        R.paper_table("table9")


def test_domain_mapping():
    assert R.domain_of("ml-100k") == "movie" and R.domain_of("ml-20m") == "movie"
    assert R.domain_of("book-crossing") == "book"
    assert R.domain_of("synthetic-tiny") == "synthetic-tiny"


def test_format_helpers():
    assert R.fmt_p(float("nan")) == "-" and R.fmt_p(0.0029) == "0.0029" and R.fmt_p(1.96e-4) == "1.96e-04"
    assert R.stars(5e-4) == "**" and R.stars(0.01) == "*" and R.stars(0.2) == "" and R.stars(float("nan")) == ""
    assert R.fmt_number(0.12345) == "0.1235"


def test_rank_marks_by_group_and_direction():
    long = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 3, "metric": ["m"] * 4 + ["uniformity"] * 3,
                         "value": [0.1, 0.3, 0.2, 0.3, -1.0, -3.0, -2.0]})
    marks = R.rank_marks(long, ["g"])
    # group a: 0.3 twice is best (tie), 0.2 second; group b: lower is better
    assert marks.tolist() == ["", "best", "second", "best", "", "best", "second"]
    nan = pd.DataFrame({"g": ["a", "a"], "metric": ["m", "m"], "value": [float("nan"), 1.0]})
    assert R.rank_marks(nan, ["g"]).tolist() == ["", "best"]


def _fake_results(seed=0, n_seeds=3):
    rng = np.random.default_rng(seed)
    rows = []
    for t in ("without", "with"):
        for j, v in enumerate(("base", "cl_genre", "cl_title_genre")):
            for s in range(n_seeds):
                r = {"dataset": "ml-100k", "text": t, "variant": v, "seed": s,
                     "test_auc": 0.90 + 0.01 * j + (t == "with") * 0.005 + rng.normal(0, 1e-3),
                     "test_f1": 0.80 + rng.normal(0, 1e-3), "inter@20": 0.5 + 0.01 * j, "intra@20": 0.2}
                for k in (5, 10, 20, 50, 100):
                    r[f"recall@{k}"] = 0.01 * k / 10 + 0.001 * j
                    r[f"ndcg@{k}"] = 0.02 + 0.001 * j
                rows.append(r)
    return pd.DataFrame(rows)


def test_table2_marks_best_and_matches_hand_means():
    df = _fake_results()
    md, tex, ours = R.table2(df, "cap")
    best = df.groupby(["text", "variant"])["test_auc"].mean()
    # by construction: with text + CL title+genre best (0.925), without text + CL title+genre second (0.920)
    top = f"{best[('with', 'cl_title_genre')]:.4f}"
    second = f"{best[('without', 'cl_title_genre')]:.4f}"
    assert f"**{top}" in md and f"<u>{second}" in md
    assert rf"\textbf{{{top}" in tex and rf"\underline{{{second}" in tex
    # the paper's numbers are beside ours, with their own marks
    assert "paper (ML-20M)" in md and "**0.9780\\*\\***" in md
    assert "Book" not in md  # no Book-Crossing runs: no paper Book rows
    # p-values are Welch t-tests (checked against scipy)
    from scipy import stats

    a = df[(df.text == "with") & (df.variant == "cl_title_genre")]["test_auc"]
    b = df[(df.text == "without") & (df.variant == "base")]["test_auc"]
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    got = ours[(ours.text == "with") & (ours.variant == "cl_title_genre") & (ours.metric == "auc")]["p_value"].item()
    assert got == pytest.approx(p, rel=1e-6)
    for key in ("auc", "f1"):
        sub = ours[ours.metric == key]
        assert len(sub) == 6


def test_table3_and_4_and_5_layout():
    df = _fake_results()
    md3, tex3, ours3 = R.table3(df, "cap3")
    assert "Recall@100" in md3 and "NDCG@5" in md3 and md3.count("ours (ml-100k)") == 6
    assert md3.count("paper (ML-20M)") == 6
    md4, _, ours4 = R.table4(df, "cap4")
    assert set(ours4["metric"]) == {"inter@20", "intra@20"}
    sub = df[df.text.isin(["without", "with"])].copy()
    llm = sub[(sub.text == "with") & (sub.variant == "cl_title_genre")].assign(text="llm")
    md5, _, ours5 = R.table5(pd.concat([sub, llm]), "cap5")
    assert "LLM-generated text" in md5 and "Human-generated text" in md5


def test_table1_numbers_beside_paper():
    md, tex = R.table1({"ml-100k": {"users": 943, "contents": 1682}})
    assert "| users | 943 | 138,159 |" in md
    assert r"\begin{tabular}" in tex


def test_caption_names_everything():
    c = R.caption("Table 2", datasets=["ml-100k"], seeds=[0, 1], scoring="kgcn", text_model="m", synopses="s")
    assert "2 seed(s)" in c and "kgcn" in c and "text encoder: m" in c and "synopses: s" in c


def test_figures_written_png_and_pdf(tmp_path):
    cold = pd.DataFrame({"dataset": "d", "model": ["a", "a", "b", "b"] * 2, "seed": [0, 1] * 4,
                         "percentile": [1.0] * 4 + [100.0] * 4, "value": np.linspace(0.1, 0.4, 8)})
    for kind in ("bars", "lines"):
        paths = R.save_figure(R.plot_cold_start(cold, kind=kind), tmp_path, f"f_{kind}")
        assert paths["png"].stat().st_size > 1000 and paths["pdf"].read_bytes()[:4] == b"%PDF"
    pts = pd.DataFrame({"dataset": "d", "text": ["with", "without"], "gamma": [0.2, 0.8],
                        "alignment": [0.5, 0.6], "uniformity": [-2.0, -1.5], "ndcg@20": [0.1, 0.2]})
    paths = R.save_figure(R.plot_align_uniform(pts), tmp_path, "f6")
    assert paths["png"].exists() and paths["pdf"].exists()
    # no dataset with title+genre pairs (a plain dataset of ratings only): a figure saying n/a, not a crash
    empty = R.plot_align_uniform(pts.assign(alignment=np.nan, uniformity=np.nan), title="Figure 6")
    assert "n/a (d: no title+genre pairs" in empty.axes[0].texts[0].get_text()


def test_save_headlines_json_ready(tmp_path):
    path = tmp_path / "h.json"
    got = R.save_headlines(path, {"a": np.float32(0.5), "b": float("nan"), "c": np.arange(2)})
    assert got == {"a": 0.5, "b": None, "c": [0, 1]}
    assert json.loads(path.read_text()) == got
    assert R.save_headlines(None, {"x": 1}) == {"x": 1}


def test_table5_names_each_rows_text_not_the_datasets():
    """The LLM row must not be labelled with the dataset's human text source."""
    import pandas as pd

    from kgcl_lib import report

    rows = []
    for seed in (0, 1):
        for text, variant, src, v in (("without", "base", "none", 0.10), ("with", "cl_title_genre", "human", 0.12),
                                      ("llm", "cl_title_genre", "llm", 0.11)):
            rows.append({"dataset": "ml-100k", "text": text, "variant": variant, "seed": seed, "text_source": src,
                         "recall@20": v, "ndcg@20": v, "inter@20": v, "intra@20": v})
    md, _, ours = report.table5(pd.DataFrame(rows))
    llm_lines = [line for line in md.splitlines() if "LLM-generated synopses" in line]
    assert llm_lines and all("text: human synopses" not in line for line in llm_lines), md
    assert "+CL title+genre (human synopses)" in md
