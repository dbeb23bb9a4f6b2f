"""Unit tests of kgcl_lib.metrics: limits first, then hand-derived cases, naive loops, bad input.

Every expected value is derived by hand in a comment or computed by an independent
implementation (a per-user Python loop, scipy.spatial.distance, sklearn, scipy.stats).
The jurity cross-checks live in test_metrics_jurity.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scipy.stats
from scipy.spatial.distance import pdist
from sklearn.metrics import f1_score, roc_auc_score

from kgcl_lib import metrics as M
from kgcl_lib.metrics import MetricsError

LOG2_3 = math.log2(3)


# ---------------------------------------------------------------------------------------------
# helpers: random inputs and naive reference implementations
# ---------------------------------------------------------------------------------------------
def random_topk(rng, n_users, n_items, k):
    """Distinct items per row: the first k columns of a random permutation per row."""
    return np.argsort(rng.random((n_users, n_items)), axis=1)[:, :k].astype(np.int64)


def random_truth(rng, n_users, n_items, max_pos, p_empty=0.1):
    rows, cols = [], []
    for u in range(n_users):
        if rng.random() < p_empty:
            continue
        items = rng.choice(n_items, size=rng.integers(1, max_pos + 1), replace=False)
        rows += [u] * len(items)
        cols += list(items)
    return M.truth_matrix(np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), n_users, n_items)


def naive_user(topk_row, positives, k, convention):
    """(recall, ndcg) of one user by the textbook definitions, or (nan, nan) without positives."""
    positives = set(int(i) for i in positives)
    if not positives:
        return math.nan, math.nan
    hits = [int(i) in positives for i in topk_row[:k]]
    dcg = sum(1.0 / math.log2(r + 2) for r, h in enumerate(hits) if h)
    n_ideal = len(positives) if convention == "jurity" else min(k, len(positives))
    idcg = sum(1.0 / math.log2(r + 2) for r in range(n_ideal))
    return sum(hits) / len(positives), dcg / idcg


def naive_ranking(topk, truth, ks, convention):
    out = {}
    for k in ks:
        rec, nd = [], []
        for u in range(topk.shape[0]):
            r, n = naive_user(topk[u], truth[u].indices, k, convention)
            rec.append(r)
            nd.append(n)
        out[f"recall@{k}"] = np.array(rec)
        out[f"ndcg@{k}"] = np.array(nd)
    return out


def one_hot_rows(topk, n_items):
    x = np.zeros((topk.shape[0], n_items))
    np.put_along_axis(x, topk, 1.0, axis=1)
    return x


# ---------------------------------------------------------------------------------------------
# CTR
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auc_signed_zero_negative_scores_and_ties(dtype):
    # -0.0 == +0.0: one tie (1/2); -3 < -1: the positive at -1 beats the negative at -3
    y = np.array([1, 0, 1, 0, 1])
    s = np.array([-0.0, 0.0, -1.0, -3.0, 2.0], dtype=dtype)
    # positives {-0, -1, 2} vs negatives {0, -3}: (-0,0)=.5 (-0,-3)=1 (-1,0)=0 (-1,-3)=1 (2,*)=2
    assert M.auc(y, s) == pytest.approx(4.5 / 6, abs=1e-15)


def test_auc_limits_and_hand_case():
    y = np.array([1, 1, 0, 0])
    assert M.auc(y, [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert M.auc(y, [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert M.auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    # pairs (pos, neg): (.9,.8)=1, (.9,.3)=1, (.3,.8)=0, (.3,.3)=1/2  -> 2.5 / 4
    assert M.auc([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.3]) == pytest.approx(0.625, abs=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_auc_matches_pairwise_count_and_sklearn(dtype):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = (np.round(rng.normal(size=300), 1) * 10).astype(dtype)  # rounding creates many ties
    pos, neg = s[y == 1], s[y == 0]
    naive = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert M.auc(y, s) == pytest.approx(naive, abs=1e-12)
    assert M.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_f1_hand_case_threshold_inclusive():
    # pred = score >= .5 -> [1, 0, 1, 0, 1]; tp=2 (rows 0, 4), fp=1 (row 2), fn=1 (row 1)
    assert M.f1([1, 1, 0, 0, 1], [0.5, 0.4, 0.6, 0.1, 0.9]) == pytest.approx(4 / 6, abs=1e-15)
    assert M.f1([1, 0], [0.9, 0.1]) == 1.0
    assert M.f1([1, 0], [0.1, 0.9]) == 0.0
    # logits with threshold 0
    assert M.f1([1, 0, 1], [2.0, -1.0, -0.5], threshold=0.0) == pytest.approx(2 / 3)


def test_f1_matches_sklearn():
    rng = np.random.default_rng(1)
    y, s = rng.integers(0, 2, 500), rng.random(500)
    assert M.f1(y, s, 0.3) == pytest.approx(f1_score(y, (s >= 0.3).astype(int)), abs=1e-12)


@pytest.mark.parametrize("fn", [M.auc, M.f1])
def test_ctr_bad_input(fn):
    with pytest.raises(MetricsError, match="length"):
        fn([1, 0, 1], [0.1, 0.2])
    with pytest.raises(MetricsError, match=r"scores\[1\]"):
        fn([1, 0], [0.1, np.nan])
    with pytest.raises(MetricsError, match=r"labels\[2\] = 2"):
        fn([1, 0, 2], [0.1, 0.2, 0.3])
    with pytest.raises(MetricsError):
        fn([0, 0], [0.1, 0.2])  # no positive class


# ---------------------------------------------------------------------------------------------
# truth_matrix / topk_from_scores
# ---------------------------------------------------------------------------------------------
def test_truth_matrix_collapses_duplicates_and_checks_bounds():
    t = M.truth_matrix([0, 0, 2], [1, 1, 3], 3, 4)
    assert t.shape == (3, 4) and t.nnz == 2 and t[0, 1] == 1 and t[2, 3] == 1
    with pytest.raises(MetricsError, match=r"item_idx\[0\] = 4"):
        M.truth_matrix([0], [4], 3, 4)
    with pytest.raises(MetricsError, match="length"):
        M.truth_matrix([0, 1], [1], 3, 4)


def naive_topk(scores, k, exclude):
    out = []
    for u in range(scores.shape[0]):
        banned = set(exclude[u].indices) if exclude is not None else set()
        cand = [i for i in range(scores.shape[1]) if i not in banned]
        cand.sort(key=lambda i: (-scores[u, i], i))  # best first, lower index on ties
        out.append(cand[:k])
    return np.array(out)


@pytest.mark.parametrize("chunk", [None, 3])
def test_topk_from_scores_matches_full_sort_with_ties_and_exclusion(chunk):
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 5, (11, 30)).astype(np.float32)  # heavy ties
    exclude = sp.csr_matrix(rng.random((11, 30)) < 0.3)
    got = M.topk_from_scores(scores, 7, exclude=exclude, chunk_users=chunk)
    assert got.dtype == np.int64 and got.shape == (11, 7)
    np.testing.assert_array_equal(got, naive_topk(scores, 7, exclude))
    assert not np.asarray(exclude.todense())[np.arange(11)[:, None], got].any()
    np.testing.assert_array_equal(M.topk_from_scores(scores, 7), naive_topk(scores, 7, None))


def test_topk_from_scores_bad_input():
    s = np.zeros((2, 4))
    with pytest.raises(MetricsError, match="k must be >= 1"):
        M.topk_from_scores(s, 0)
    with pytest.raises(MetricsError, match="exceeds"):
        M.topk_from_scores(s, 5)
    s[1, 2] = np.nan
    with pytest.raises(MetricsError, match=r"scores\[1, 2\] = nan"):
        M.topk_from_scores(s, 2)
    excl = sp.csr_matrix(np.array([[0, 0, 0, 0], [1, 1, 1, 0]]))
    with pytest.raises(MetricsError, match="user row 1 has only 1 items"):
        M.topk_from_scores(np.zeros((2, 4)), 2, exclude=excl)


# ---------------------------------------------------------------------------------------------
# Recall / NDCG
# ---------------------------------------------------------------------------------------------
def test_ranking_limits_perfect_and_no_hit():
    truth = M.truth_matrix([0, 0, 1], [3, 1, 4], 2, 6)
    perfect = np.array([[1, 3, 0], [4, 0, 1]])
    for conv in M.NDCG_CONVENTIONS:
        r = M.ranking_metrics(perfect, truth, ks=(2, 3), ndcg=conv)
        assert r["recall@2"] == 1.0 and r["ndcg@2"] == pytest.approx(1.0, abs=1e-15)
        assert r["ndcg@3"] == pytest.approx(1.0, abs=1e-15)
    miss = np.array([[0, 2, 5], [0, 1, 2]])
    r = M.ranking_metrics(miss, truth, ks=(3,))
    assert r["recall@3"] == 0.0 and r["ndcg@3"] == 0.0


def test_ndcg_conventions_hand_case():
    # one user, positives {a=0, b=1, c=2}; list [0, 9, 1]
    truth = M.truth_matrix([0, 0, 0], [0, 1, 2], 1, 10)
    topk = np.array([[0, 9, 1]])
    # K=2: DCG = 1; jurity IDCG = 1 + 1/log2(3) + 1/2 (all three); standard IDCG = 1 + 1/log2(3)
    assert M.ndcg_at_k(topk, truth, 2, ndcg="jurity") == pytest.approx(1 / (1 + 1 / LOG2_3 + 0.5), abs=1e-15)
    assert M.ndcg_at_k(topk, truth, 2, ndcg="standard") == pytest.approx(1 / (1 + 1 / LOG2_3), abs=1e-15)
    # K=3: DCG = 1 + 1/2; both IDCGs cover three positives
    for conv in M.NDCG_CONVENTIONS:
        assert M.ndcg_at_k(topk, truth, 3, ndcg=conv) == pytest.approx(1.5 / (1 + 1 / LOG2_3 + 0.5), abs=1e-15)
    assert M.recall_at_k(topk, truth, 2) == pytest.approx(1 / 3)
    assert M.recall_at_k(topk, truth, 3) == pytest.approx(2 / 3)
    # a perfect list shorter than |P|: standard reaches 1, jurity's cannot
    perfect = np.array([[2, 0]])
    assert M.ndcg_at_k(perfect, truth, 2, ndcg="standard") == pytest.approx(1.0, abs=1e-15)
    assert M.ndcg_at_k(perfect, truth, 2, ndcg="jurity") == pytest.approx(
        (1 + 1 / LOG2_3) / (1 + 1 / LOG2_3 + 0.5), abs=1e-15
    )


@pytest.mark.parametrize("conv", M.NDCG_CONVENTIONS)
def test_ranking_vectorised_equals_naive_loop(conv, monkeypatch):
    monkeypatch.setattr(M.ranking, "_HIT_BUFFER_CELLS", 200)  # force many user blocks (5 users of 40 items)
    rng = np.random.default_rng(3)
    n_users, n_items, ks = 57, 40, (1, 3, 5, 10)
    topk = random_topk(rng, n_users, n_items, 10)
    truth = random_truth(rng, n_users, n_items, max_pos=15)
    per = M.ranking_per_user(topk, truth, ks, ndcg=conv)
    ref = naive_ranking(topk, truth, ks, conv)
    for key, v in ref.items():
        np.testing.assert_allclose(per[key], v, rtol=0, atol=1e-12, equal_nan=True)
    summary = M.ranking_metrics(topk, truth, ks, ndcg=conv)
    has = ~np.isnan(ref["ndcg@1"])
    assert summary["n_users"] == has.sum() and summary["n_skipped"] == (~has).sum() > 0
    assert summary["ndcg_convention"] == conv
    for key, v in ref.items():
        assert summary[key] == pytest.approx(np.nanmean(v), abs=1e-12)
    np.testing.assert_allclose(M.ndcg_per_user(topk, truth, 5, conv), ref["ndcg@5"], atol=1e-12, equal_nan=True)


def test_ranking_users_without_positives_are_skipped():
    truth = M.truth_matrix([1], [2], 3, 5)  # users 0 and 2 have no test positive
    topk = np.array([[0, 1], [2, 3], [4, 0]])
    r = M.ranking_metrics(topk, truth, ks=(2,))
    assert (r["n_users"], r["n_skipped"]) == (1, 2) and r["recall@2"] == 1.0
    per = M.ndcg_per_user(topk, truth, 2)
    assert np.isnan(per[0]) and per[1] == 1.0 and np.isnan(per[2])
    with pytest.raises(MetricsError, match="no user"):
        M.ranking_metrics(topk, M.truth_matrix([], [], 3, 5), ks=(2,))


def test_ranking_bad_input():
    truth = M.truth_matrix([0, 1], [1, 2], 2, 5)
    topk = np.array([[0, 1], [2, 3]])
    with pytest.raises(MetricsError, match="must be >= 1"):
        M.ranking_metrics(topk, truth, ks=(0,))
    with pytest.raises(MetricsError, match="only 2 columns"):
        M.ranking_metrics(topk, truth, ks=(3,))
    with pytest.raises(MetricsError, match="rows must align"):
        M.ranking_metrics(topk[:1], truth, ks=(1,))
    with pytest.raises(MetricsError, match="repeats item 1"):
        M.ranking_metrics(np.array([[1, 1], [2, 3]]), truth, ks=(2,))
    with pytest.raises(MetricsError, match=r"topk\[1, 1\] = 7"):
        M.ranking_metrics(np.array([[0, 1], [2, 7]]), truth, ks=(2,))
    with pytest.raises(MetricsError, match="integer"):
        M.ranking_metrics(topk.astype(float), truth, ks=(2,))
    with pytest.raises(MetricsError, match="convention"):
        M.ranking_metrics(topk, truth, ks=(2,), ndcg="sklearn")
    with pytest.raises(MetricsError, match="scipy.sparse"):
        M.ranking_metrics(topk, np.ones((2, 5)), ks=(2,))


# ---------------------------------------------------------------------------------------------
# Cold start
# ---------------------------------------------------------------------------------------------
def test_cold_start_buckets_ties_hand_case():
    # users:          0  1  2  3  4  5  6  7  8  9
    counts = np.array([3, 0, 6, 0, 2, 1, 0, 5, 3, 4])
    # sorted by (count, index): 1,3,6 (0) | 5 (1) | 4 (2) | 0,8 (3) | 9 (4) | 7 (5) | 2 (6)
    inc = M.cold_start_buckets(counts, (10, 30, 50, 60, 100))
    # p=10: m=1, count 0 -> all three zero-count users; p=30: m=3 -> still count 0
    # p=50: m=5 -> 5th is user 4 (count 2) -> counts <= 2; p=60: m=6 -> count 3 -> both 3s
    expected = [[1, 3, 6], [1, 3, 6], [1, 3, 4, 5, 6], [0, 1, 3, 4, 5, 6, 8], list(range(10))]
    assert [b.tolist() for b in inc] == expected
    split = M.cold_start_buckets(counts, (10, 30, 50, 60, 100), ties="split")
    assert [b.tolist() for b in split] == [[1], [1, 3, 6], [1, 3, 4, 5, 6], [0, 1, 3, 4, 5, 6], list(range(10))]
    # ceil: 1 % of 10 users is 0.1 -> one user; 15 % -> 2 users
    assert M.cold_start_buckets(counts, (1, 15), ties="split")[1].tolist() == [1, 3]


def test_cold_start_buckets_bad_input():
    with pytest.raises(MetricsError, match="negative"):
        M.cold_start_buckets([1, -1])
    with pytest.raises(MetricsError, match=r"\(0, 100\]"):
        M.cold_start_buckets([1, 2], (0, 50))
    with pytest.raises(MetricsError, match="ties"):
        M.cold_start_buckets([1, 2], ties="drop")
    with pytest.raises(MetricsError, match="empty"):
        M.cold_start_buckets([])


def test_cold_start_ndcg_against_manual_buckets():
    rng = np.random.default_rng(4)
    n_users, n_items = 80, 50
    topk = random_topk(rng, n_users, n_items, 20)
    truth = random_truth(rng, n_users, n_items, 8, p_empty=0.2)
    counts = rng.integers(0, 6, n_users)  # few distinct values: many ties
    df = M.cold_start_ndcg(topk, truth, counts, k=20, percentiles=(5, 50, 100))
    assert list(df.columns) == ["percentile", "n_users", "max_train_count", "ndcg@20"]
    assert df.attrs["ndcg_convention"] == "jurity"
    per = naive_ranking(topk, truth, (20,), "jurity")["ndcg@20"]
    has = ~np.isnan(per)
    c, v = counts[has], per[has]
    order = np.sort(c)
    for (_, row), p in zip(df.iterrows(), (5, 50, 100)):
        thr = order[math.ceil(p * len(c) / 100) - 1]
        members = c <= thr
        assert row["n_users"] == members.sum() and row["max_train_count"] == thr
        assert row["ndcg@20"] == pytest.approx(v[members].mean(), abs=1e-12)
    with pytest.raises(MetricsError, match="train_counts has 3"):
        M.cold_start_ndcg(topk, truth, counts[:3], k=20)


# ---------------------------------------------------------------------------------------------
# Diversity
# ---------------------------------------------------------------------------------------------
def test_inter_list_limits_and_hand_case():
    same = np.tile([[0, 1, 2]], (4, 1))
    assert M.inter_list_diversity(same, 5) == 0.0
    disjoint = np.arange(12).reshape(4, 3)
    assert M.inter_list_diversity(disjoint, 12) == 1.0
    # {0,1},{0,2},{3,4}: cos(1,2) = 1/2 -> 0.5; the other two pairs share nothing -> 1, 1
    assert M.inter_list_diversity(np.array([[0, 1], [0, 2], [3, 4]]), 5) == pytest.approx(2.5 / 3, abs=1e-15)
    # k truncates to the first column: 0, 0, 3 -> pairs 0, 1, 1
    assert M.inter_list_diversity(np.array([[0, 1], [0, 2], [3, 4]]), 5, k=1) == pytest.approx(2 / 3, abs=1e-15)


def test_inter_list_equals_pdist():
    rng = np.random.default_rng(5)
    topk = random_topk(rng, 60, 25, 6)
    ref = pdist(one_hot_rows(topk, 25), "cosine").mean()
    assert M.inter_list_diversity(topk, 25) == pytest.approx(ref, abs=1e-12)
    ref4 = pdist(one_hot_rows(topk[:, :4], 25), "cosine").mean()
    assert M.inter_list_diversity(topk, 25, k=4) == pytest.approx(ref4, abs=1e-12)


def test_inter_list_bad_input():
    with pytest.raises(MetricsError, match="at least 2 users"):
        M.inter_list_diversity(np.array([[0, 1]]), 3)
    with pytest.raises(MetricsError, match="k must be >= 1"):
        M.inter_list_diversity(np.array([[0, 1], [1, 2]]), 3, k=0)
    with pytest.raises(MetricsError, match="repeats"):
        M.inter_list_diversity(np.array([[0, 0], [1, 2]]), 3)


def test_intra_list_limits_and_hand_case():
    ident = np.ones((5, 3))
    assert M.intra_list_diversity(np.array([[0, 1, 2], [2, 3, 4]]), ident) == pytest.approx(0.0, abs=1e-12)
    ortho = np.eye(5)
    assert M.intra_list_diversity(np.array([[0, 1, 2], [2, 3, 4]]), ortho) == pytest.approx(1.0, abs=1e-12)
    # e0=(1,0), e1=(0,1), e2=(1,1): d01 = 1, d02 = d12 = 1 - 1/sqrt2 -> mean (3 - sqrt2)/3
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    assert M.intra_list_diversity(np.array([[0, 1, 2]]), emb) == pytest.approx((3 - math.sqrt(2)) / 3, abs=1e-15)
    # a zero embedding (item without text) is at cosine distance 1 from everything (sklearn's rule)
    emb0 = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    assert M.intra_list_diversity(np.array([[0, 1, 2]]), emb0) == pytest.approx(2 / 3, abs=1e-15)


def test_intra_list_equals_per_user_pdist():
    rng = np.random.default_rng(6)
    emb = rng.normal(size=(30, 8))
    topk = random_topk(rng, 40, 30, 7)
    ref = np.array([pdist(emb[row], "cosine").mean() for row in topk])
    np.testing.assert_allclose(M.intra_list_diversity_per_user(topk, emb), ref, atol=1e-12)
    ref5 = np.array([pdist(emb[row[:5]], "cosine").mean() for row in topk])
    assert M.intra_list_diversity(topk, emb, k=5) == pytest.approx(ref5.mean(), abs=1e-12)


def test_intra_list_bad_input():
    emb = np.eye(4)
    with pytest.raises(MetricsError, match="at least 2 items"):
        M.intra_list_diversity(np.array([[0], [1]]), emb)
    with pytest.raises(MetricsError, match=r"topk\[0, 1\] = 4"):
        M.intra_list_diversity(np.array([[0, 4]]), emb)
    bad = emb.copy()
    bad[2, 1] = np.nan
    with pytest.raises(MetricsError, match=r"item_emb\[2, 1\]"):
        M.intra_list_diversity(np.array([[0, 1]]), bad)


# ---------------------------------------------------------------------------------------------
# Embedding quality
# ---------------------------------------------------------------------------------------------
def test_alignment_limits_hand_case_and_loop():
    x = np.array([[3.0, 0.0], [0.0, 2.0]])
    assert M.alignment(x, 2 * x) == pytest.approx(0.0, abs=1e-15)
    # normalised: (1,0)-(0,1) has squared norm 2; (0,1)-(0,1) has 0 -> mean 1 (alpha=2)
    y = np.array([[0.0, 5.0], [0.0, 1.0]])
    assert M.alignment(x, y) == pytest.approx(1.0, abs=1e-15)
    assert M.alignment(x, y, alpha=1) == pytest.approx(math.sqrt(2) / 2, abs=1e-15)
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(50, 6)), rng.normal(size=(50, 6))
    ref = np.mean([np.linalg.norm(p / np.linalg.norm(p) - q / np.linalg.norm(q)) ** 2 for p, q in zip(a, b)])
    assert M.alignment(a, b) == pytest.approx(ref, abs=1e-12)


def test_uniformity_hand_case_and_pdist(monkeypatch):
    # square (±1,0),(0,±1): 4 adjacent pairs at squared distance 2, 2 opposite ones at 4
    sq = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    assert M.uniformity(sq) == pytest.approx(math.log((4 * math.exp(-4) + 2 * math.exp(-8)) / 6), abs=1e-14)
    assert M.uniformity(np.ones((3, 2))) == pytest.approx(0.0, abs=1e-14)  # collapsed: log 1
    rng = np.random.default_rng(8)
    x = rng.normal(size=(101, 5))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    ref = math.log(np.mean(np.exp(-2 * pdist(xn, "sqeuclidean"))))
    monkeypatch.setattr(M.diversity, "_GRAM_CHUNK_ELEMS", 500)  # many row blocks
    assert M.uniformity(x) == pytest.approx(ref, abs=1e-12)
    ref3 = math.log(np.mean(np.exp(-3 * pdist(xn, "sqeuclidean"))))
    assert M.uniformity(x, t=3) == pytest.approx(ref3, abs=1e-12)
    # sampled estimate: reproducible with the same seed, close to the exact value
    s1 = M.uniformity(x, sample_pairs=200_000, rng=0)
    assert s1 == M.uniformity(x, sample_pairs=200_000, rng=np.random.default_rng(0))
    assert s1 == pytest.approx(ref, abs=0.01)


def test_embedding_quality_bad_input():
    with pytest.raises(MetricsError, match="row 1 is all zeros"):
        M.uniformity(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(MetricsError, match="same shape"):
        M.alignment(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(MetricsError, match="needs rng"):
        M.uniformity(np.eye(3), sample_pairs=10)
    with pytest.raises(MetricsError, match="at least 2"):
        M.uniformity(np.ones((1, 3)))


# ---------------------------------------------------------------------------------------------
# Significance
# ---------------------------------------------------------------------------------------------
def make_runs(rng, n_seeds=10):
    rows = []
    for variant, shift, scale in (("base", 0.0, 0.01), ("cl_genre", 0.01, 0.03), ("cl_title", 0.002, 0.01)):
        for seed in range(n_seeds):
            rows.append({"variant": variant, "seed": seed, "auc": 0.9 + shift + scale * rng.normal(),
                         "f1": 0.8 + shift + scale * rng.normal()})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # row order must not matter


@pytest.mark.parametrize("test", M.T_TESTS)
def test_ttest_matches_scipy(test):
    runs = make_runs(np.random.default_rng(9))
    out = M.ttest_vs_baseline(runs, "base", test=test)
    assert list(out["variant"].unique()) == ["base", "cl_genre", "cl_title"]
    assert out.loc[out.variant == "base", ["t", "p"]].isna().all().all()
    for row in out[out.variant != "base"].itertuples():
        v = runs[runs.variant == row.variant].sort_values("seed")[row.metric].to_numpy()
        b = runs[runs.variant == "base"].sort_values("seed")[row.metric].to_numpy()
        ref = {
            "welch": lambda: scipy.stats.ttest_ind(v, b, equal_var=False),
            "student": lambda: scipy.stats.ttest_ind(v, b, equal_var=True),
            "paired": lambda: scipy.stats.ttest_rel(v, b),
        }[test]()
        assert row.t == pytest.approx(ref.statistic, rel=1e-10)
        assert row.p == pytest.approx(ref.pvalue, rel=1e-8)
        assert row.df == pytest.approx(ref.df, rel=1e-10)
        assert row.mean == pytest.approx(v.mean(), abs=1e-14) and row.sd == pytest.approx(v.std(ddof=1), rel=1e-12)
        assert row.baseline_mean == pytest.approx(b.mean(), abs=1e-14)
        assert row.n == 10 and row.test == test


def test_ttest_bad_input():
    runs = make_runs(np.random.default_rng(10), n_seeds=3)
    with pytest.raises(MetricsError, match="baseline 'nope'"):
        M.ttest_vs_baseline(runs, "nope")
    with pytest.raises(MetricsError, match="more than once"):
        M.ttest_vs_baseline(pd.concat([runs, runs.iloc[:1]]), "base")
    bad = runs.copy()
    bad.loc[bad.index[0], "auc"] = np.nan
    with pytest.raises(MetricsError, match="'auc' is NaN"):
        M.ttest_vs_baseline(bad, "base")
    with pytest.raises(MetricsError, match="same seeds"):
        M.ttest_vs_baseline(runs[~((runs.variant == "cl_genre") & (runs.seed == 0))], "base", test="paired")
    with pytest.raises(MetricsError, match="lacks the column 'seed'"):
        M.ttest_vs_baseline(runs.drop(columns="seed"), "base")
    single = runs[(runs.variant != "cl_genre") | (runs.seed == 0)]  # cl_genre has one run
    out = M.ttest_vs_baseline(single, "base")
    assert out.loc[out.variant == "cl_genre", ["t", "p", "df"]].isna().all().all()
