"""kgcl_lib.inspector: the bucket table and the user lists, checked against hand-computed cases."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kgcl_lib import constants, inspector

N_ITEMS = 300


def _run(positive_ranks, activity, seed=0, users=None):
    """Four test users, one test positive each, placed at the given 1-based rank of their top-100
    (rank > 100: not recommended)."""
    n = len(positive_ranks)
    users = np.arange(n, dtype=np.int64) * 10 if users is None else np.asarray(users)
    topk = np.tile(np.arange(100, dtype=np.int64), (n, 1))  # items 0..99, in order, for everyone
    positives = [r - 1 if r <= 100 else 250 for r in positive_ranks]  # item id = rank - 1 (items 0..99 in order)
    truth = sp.csr_matrix((np.ones(n), (np.arange(n), positives)), shape=(n, N_ITEMS))
    return inspector.RunArrays(run_id=f"r{seed}", seed=seed, users=users, activity=np.asarray(activity, np.int64),
                               truth=truth, topk=topk, ndcg="jurity")


def _ndcg(rank, k):  # one positive: IDCG = 1
    return 1 / math.log2(rank + 1) if rank <= k else 0.0


def test_bucket_metrics_hand_computed():
    run = _run([1, 3, 20, 200], activity=[1, 2, 3, 10])
    # bottom 50 %: m = ceil(0.5 * 4) = 2 users -> activity <= 2 -> users at ranks 1 and 3
    got = inspector.bucket_metrics(run, 50)
    assert got["n_users"] == 2 and got["max_train_count"] == 2
    assert got["ndcg@10"] == pytest.approx((1 + 0.5) / 2)
    assert got["ndcg@100"] == pytest.approx((1 + 0.5) / 2)
    assert got["recall@10"] == pytest.approx(1.0)
    every = inspector.bucket_metrics(run, 100)
    assert every["n_users"] == 4 and every["max_train_count"] == 10
    assert every["ndcg@10"] == pytest.approx((1 + 0.5) / 4)
    assert every["ndcg@100"] == pytest.approx((1 + 0.5 + _ndcg(20, 100)) / 4)
    assert every["recall@10"] == pytest.approx(0.5)


def test_bucket_view_mean_and_seed_spread():
    seed0 = _run([1, 3, 20, 200], activity=[1, 2, 3, 10], seed=0)
    seed1 = _run([2, 1, 5, 7], activity=[1, 2, 3, 10], seed=1)
    other = _run([200, 200, 1, 1], activity=[1, 2, 3, 10], seed=0)
    view = inspector.bucket_view({"base": [seed0, seed1], "other": [other]}, 50)
    assert list(view.index) == ["base", "other"]
    a, b = (1 + 0.5) / 2, (_ndcg(2, 10) + 1) / 2
    assert view.loc["base", "ndcg@10"] == pytest.approx((a + b) / 2)
    assert view.loc["base", "ndcg@10 sd"] == pytest.approx(abs(a - b) / math.sqrt(2))
    assert view.loc["base", "seeds"] == 2 and view.loc["base", "n_users"] == 2
    assert view.loc["other", "ndcg@10"] == 0.0 and view.loc["other", "recall@10"] == 0.0
    assert math.isnan(view.loc["other", "ndcg@10 sd"])  # one seed: no spread
    shown = inspector.format_bucket_view(view)
    assert shown.loc["base", "NDCG@10"] == f"{(a + b) / 2:.4f} ± {abs(a - b) / math.sqrt(2):.4f}"
    assert shown.loc["other", "NDCG@10"] == "0.0000 ± –"
    assert shown.loc["difference (2nd − 1st)", "NDCG@10"] == f"{0 - (a + b) / 2:+.4f}"
    html = inspector.bucket_table_html(view, 50)
    assert "kgcl-bucket-table" in html and shown.loc["base", "NDCG@10"] in html


def test_bucket_view_needs_runs():
    with pytest.raises(ValueError, match="no runs for model 'x'"):
        inspector.bucket_view({"x": []}, 10)


def test_bucket_users_least_active_first():
    run = _run([1, 3, 20, 200], activity=[3, 1, 2, 10], users=[5, 7, 9, 11])
    users = inspector.bucket_users(run, 75)  # m = 3 -> activity <= 3 -> users 5, 7, 9
    assert users["user"].tolist() == [7, 9, 5]
    assert users["n_train"].tolist() == [1, 2, 3] and users["n_test_positives"].tolist() == [1, 1, 1]


def test_top_lists_mark_hits_and_history():
    items = pd.DataFrame({"title": [f"T{i}" for i in range(N_ITEMS)], "genres": [("g",)] * N_ITEMS})
    ds = SimpleNamespace(items=items)
    base = _run([1, 3, 20, 200], activity=[1, 2, 3, 10])
    other = _run([2, 200, 1, 1], activity=[1, 2, 3, 10])
    lists = inspector.top_lists({"base": base, "other": other}, ds, user=10, k=4)  # user 10 = row 1
    assert list(lists.index) == [1, 2, 3, 4]
    assert lists["base"].tolist() == ["T0", "T1", "✔ T2", "T3"]  # its positive is item 2 (rank 3)
    assert lists["other"].tolist() == ["T0", "T1", "T2", "T3"]  # its positive is not recommended
    with pytest.raises(ValueError, match="user 3 is not a test user"):
        inspector.top_lists({"base": base}, ds, user=3)
    train = np.array([[10, 4, 1], [10, 6, 1], [20, 7, 1]])
    hist = inspector.user_history(ds, train, 10)
    assert hist["item"].tolist() == [4, 6] and hist["title"].tolist() == ["T4", "T6"]


def test_model_label():
    assert inspector.model_label(("with", "cl_genre")) == "+CL genre, with semantic text"
    assert inspector.model_label(constants.BASELINE) == "L_base, without semantic text"


def test_store_reads_the_disk_once_per_run(monkeypatch):
    """Moving a widget re-asks the store for the same runs: each is read from disk only once."""
    from collections import Counter

    from kgcl_lib import experiments

    calls = Counter()
    frame = pd.DataFrame({"run_id": ["a", "b"], "dataset": "d", "text": "without", "variant": "base", "seed": [0, 1],
                          "ndcg@100": [0.1, 0.2], "cold_ndcg@100_p50": [0.3, 0.4], "cold_ndcg@100_p100": [0.1, 0.2]})
    users = np.array([0, 1, 2, 3])
    truth = sp.csr_matrix((np.ones(4), (np.arange(4), [0, 1, 2, 250])), shape=(4, N_ITEMS))

    def count(name, value):
        def fake(*args, **kwargs):
            calls[name] += 1
            return value
        return fake

    monkeypatch.setattr(experiments, "load_manifest", count("manifest", (frame, {})))
    monkeypatch.setattr(experiments, "load_run", count("load_run", {
        "topk": np.tile(np.arange(100), (4, 1)), "test_users": users, "config": {"eval": {"ndcg": "jurity"}}}))
    monkeypatch.setattr(experiments, "open_dataset", count("open_dataset", SimpleNamespace(n_users=4, n_items=N_ITEMS)))
    monkeypatch.setattr(experiments, "make_split", count("make_split", SimpleNamespace(
        train=np.array([[0, 5, 1], [1, 5, 1], [1, 6, 1], [2, 7, 1], [2, 8, 1], [2, 9, 1], [3, 5, 0]]))))
    monkeypatch.setattr(experiments, "test_users_and_truth", count("truth", (users, truth, None)))

    store = inspector.InspectorStore("unused")
    assert store.percentiles("d") == [50.0, 100.0] and store.seeds("d") == [0, 1]
    for percentile in (50, 100, 50):  # three widget moves
        view = inspector.bucket_view({"base": store.runs("d", ("without", "base"))}, percentile)
    assert calls == Counter({"manifest": 1, "load_run": 2, "open_dataset": 1, "make_split": 2, "truth": 2})
    assert store.run("d", ("without", "base"), 0) is store.run("d", ("without", "base"), 0)
    # activity from the split's training positives: users 0..3 have 1, 2, 3, 0 -> bottom 50 % = users 3, 0
    assert view.loc["base", "n_users"] == 2 and view.loc["base", "ndcg@10"] == pytest.approx(0.5)
