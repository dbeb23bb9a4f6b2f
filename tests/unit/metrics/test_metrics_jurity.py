"""Cross-check kgcl_lib.metrics against jurity 2.1.0, the evaluation library the paper used.

Where jurity's definition is ours (Recall, NDCG with the "jurity" convention, AUC, F1 on
thresholded scores, inter/intra-list diversity with ``user_sample_size=None``) the values must
agree to 1e-9.  With jurity's default user sampling we reproduce its estimate exactly from the
same sampled users, and check that our exact value lies within its sampling error.

jurity caches its sorted top-k frame on a hash of the values only (``get_sorted_clicks``), so
every call below clears that cache first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

jurity = pytest.importorskip("jurity")
from jurity.classification import BinaryClassificationMetrics  # noqa: E402
from jurity.recommenders import DiversityRecoMetrics, RankingRecoMetrics  # noqa: E402
from jurity.utils import get_sorted_clicks, sample_users  # noqa: E402

from kgcl_lib import metrics as M  # noqa: E402
from kgcl_lib.storage import data_dir  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

CLICK = "click"


def jurity_frames(topk: np.ndarray, truth) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(actual, predicted) in jurity's long format; predicted scores are K..1 so rank is kept."""
    n, k = topk.shape
    predicted = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(n), k),
            "item_id": topk.ravel(),
            CLICK: np.tile(np.arange(k, 0, -1, dtype=np.float64), n),
        }
    )
    coo = truth.tocoo()
    actual = pd.DataFrame({"user_id": coo.row.astype(np.int64), "item_id": coo.col.astype(np.int64), CLICK: 1})
    return actual, predicted


def jurity_score(metric, actual, predicted, extended=False):
    get_sorted_clicks.cache_clear()  # its cache ignores column/index identity, see module doc
    return metric.get_score(actual, predicted, return_extended_results=extended)


def item_frame(emb: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(emb, columns=[f"f{j}" for j in range(emb.shape[1])])
    df.insert(0, "item_id", np.arange(len(emb)))
    return df


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(11)
    n_users, n_items, k = 300, 120, 20
    topk = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :k]
    rows, cols = [], []
    for u in range(n_users):
        if u % 7 == 0:
            continue  # users without a test positive: both libraries skip them
        items = rng.choice(n_items, size=rng.integers(1, 40), replace=False)
        rows += [u] * len(items)
        cols += list(items)
    truth = M.truth_matrix(np.array(rows), np.array(cols), n_users, n_items)
    emb = rng.normal(size=(n_items, 8))
    emb[:3] = 0.0  # items without content: cosine distance 1 under sklearn's rule
    return topk, truth, emb


@pytest.mark.parametrize("k", [1, 3, 5, 10, 20])
def test_recall_ndcg_equal_jurity(random_case, k):
    topk, truth, _ = random_case
    actual, predicted = jurity_frames(topk, truth)
    ours = M.ranking_metrics(topk, truth, ks=(k,), ndcg="jurity")
    rec = jurity_score(RankingRecoMetrics.Recall(click_column=CLICK, k=k), actual, predicted, True)
    nd = jurity_score(RankingRecoMetrics.NDCG(click_column=CLICK, k=k), actual, predicted, True)
    assert ours[f"recall@{k}"] == pytest.approx(rec["recall"], abs=1e-9)
    assert ours[f"ndcg@{k}"] == pytest.approx(nd["ndcg"], abs=1e-9)
    assert ours["n_users"] == rec["support"] == nd["support"]
    # the standard convention differs as soon as some user has more than k positives
    if k < 20:
        assert M.ndcg_at_k(topk, truth, k, ndcg="standard") > ours[f"ndcg@{k}"] + 1e-3


def test_ctr_equal_jurity():
    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, 2000)
    s = np.clip(0.5 + 0.2 * (y - 0.5) + 0.25 * rng.normal(size=2000), 0, 1)  # jurity wants [0, 1]
    s[:50] = 0.5  # ties and the threshold itself
    assert M.auc(y, s) == pytest.approx(BinaryClassificationMetrics.AUC().get_score(y, s), abs=1e-9)
    pred = (s >= 0.5).astype(int)
    assert M.f1(y, s) == pytest.approx(BinaryClassificationMetrics.F1().get_score(y, pred), abs=1e-9)


def test_inter_list_exact_equals_jurity(random_case):
    topk, truth, _ = random_case
    actual, predicted = jurity_frames(topk, truth)
    for k in (5, 20):
        ref = jurity_score(
            DiversityRecoMetrics.InterListDiversity(click_column=CLICK, k=k, user_sample_size=None), actual, predicted
        )
        assert M.inter_list_diversity(topk, truth.shape[1], k=k) == pytest.approx(ref, abs=1e-9)


def test_intra_list_exact_equals_jurity(random_case):
    topk, truth, emb = random_case
    actual, predicted = jurity_frames(topk, truth)
    for k in (2, 10):
        metric = DiversityRecoMetrics.IntraListDiversity(
            item_features=item_frame(emb), click_column=CLICK, k=k, user_sample_size=None
        )
        ref = jurity_score(metric, actual, predicted)
        assert M.intra_list_diversity(topk, emb, k=k) == pytest.approx(ref, abs=1e-9)


def _jurity_samples(predicted, size, num_runs, seed=1):
    """The user sets jurity's sampled diversity uses (its own seed derivation and sampler)."""
    seeds = np.random.default_rng(seed).integers(0, num_runs * 10, num_runs)
    return [np.sort(sample_users(predicted, "user_id", size, seed=s)["user_id"].unique()) for s in seeds]


def test_sampled_diversity_reproduced_and_within_sampling_error(random_case):
    topk, truth, emb = random_case
    actual, predicted = jurity_frames(topk, truth)
    size, runs, k = 60, 10, 10
    samples = _jurity_samples(predicted, size, runs)

    inter = DiversityRecoMetrics.InterListDiversity(click_column=CLICK, k=k, user_sample_size=size, num_runs=runs)
    j_inter = jurity_score(inter, actual, predicted)
    per_run = np.array([M.inter_list_diversity(topk[s], truth.shape[1], k=k) for s in samples])
    assert per_run.mean() == pytest.approx(j_inter, abs=1e-9)  # same users -> same estimate
    exact = M.inter_list_diversity(topk, truth.shape[1], k=k)
    assert abs(j_inter - exact) <= 4 * per_run.std(ddof=1) / np.sqrt(runs)

    intra = DiversityRecoMetrics.IntraListDiversity(
        item_features=item_frame(emb), click_column=CLICK, k=k, user_sample_size=size, num_runs=runs
    )
    j_intra = jurity_score(intra, actual, predicted)
    per_user = [M.intra_list_diversity_per_user(topk[s], emb, k=k) for s in samples]
    assert np.concatenate(per_user).mean() == pytest.approx(j_intra, abs=1e-9)
    exact = M.intra_list_diversity(topk, emb, k=k)
    run_means = np.array([p.mean() for p in per_user])
    assert abs(j_intra - exact) <= 4 * run_means.std(ddof=1) / np.sqrt(runs)


def test_jurity_cache_returns_stale_results_without_clear():
    """Documents the jurity 2.1.0 pitfall our helpers guard against (pinned version)."""
    truth = M.truth_matrix([0, 1], [0, 1], 2, 4)
    good = np.array([[0, 2], [1, 3]])
    bad = np.array([[2, 3], [3, 2]])
    actual, pred_good = jurity_frames(good, truth)
    _, pred_bad = jurity_frames(bad, truth)
    get_sorted_clicks.cache_clear()
    recall = RankingRecoMetrics.Recall(click_column=CLICK, k=2)
    assert recall.get_score(actual, pred_good) == 1.0
    # same score column and shape, different items: jurity hands back the cached frame ...
    stale = recall.get_score(actual, pred_bad)
    # ... unless the cache is cleared
    fresh = jurity_score(recall, actual, pred_bad)
    assert fresh == 0.0 == M.recall_at_k(bad, truth, 2)
    assert stale == 1.0  # jurity 2.1.0 (pinned): the first model's recall comes back


# ---------------------------------------------------------------------------------------------
# smoke tier: real MovieLens-100K, a popularity-with-noise recommender, every metric vs jurity
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ml100k():
    root = data_dir()
    path = root / "ml-100k" if root else None
    if path is None or not (path / "ml-100k.inter").exists():
        pytest.skip("real data absent: set KGCL_DATA_DIR to a folder holding ml-100k/ (e.g. ../shared/data)")
    inter = pd.read_csv(path / "ml-100k.inter", sep="\t")
    items = pd.read_csv(path / "ml-100k.item", sep="\t")
    return inter, items


@pytest.mark.slow  # real data (the fast tier, tests/unit -m "not slow", reads none)
def test_ml100k_all_metrics_agree_with_jurity(ml100k):
    from kgcl_lib.data import split_ratings, user_train_counts

    inter, items = ml100k
    users, user_idx = np.unique(inter["user_id:token"].to_numpy(), return_inverse=True)
    item_ids = items["item_id:token"].to_numpy()
    item_pos = pd.Series(np.arange(len(item_ids)), index=item_ids)
    item_idx = item_pos.loc[inter["item_id:token"].to_numpy()].to_numpy()
    n_users, n_items = len(users), len(item_ids)
    label = (inter["rating:float"].to_numpy() >= 4).astype(np.int64)
    ratings = np.stack([user_idx, item_idx, label], axis=1).astype(np.int64)
    split = split_ratings(ratings, np.random.default_rng(0))
    rng = np.random.default_rng(1)

    # CTR on labelled test rows: a noisy popularity probability
    pop = np.bincount(split.train[split.train[:, 2] == 1, 1], minlength=n_items).astype(float)
    p = 1 / (1 + np.exp(-(np.log1p(pop[split.test[:, 1]]) - 3 + rng.normal(size=len(split.test)))))
    y = split.test[:, 2]
    assert M.auc(y, p) == pytest.approx(BinaryClassificationMetrics.AUC().get_score(y, p), abs=1e-9)
    assert M.f1(y, p) == pytest.approx(BinaryClassificationMetrics.F1().get_score(y, (p >= 0.5).astype(int)), abs=1e-9)

    # top-100 over the catalogue with training positives masked
    train_pos = split.train[split.train[:, 2] == 1]
    exclude = M.truth_matrix(train_pos[:, 0], train_pos[:, 1], n_users, n_items)
    scores = np.log1p(pop)[None, :] + rng.gumbel(size=(n_users, n_items))
    topk = M.topk_from_scores(scores, 100, exclude=exclude)
    assert not exclude[np.repeat(np.arange(n_users), 100), topk.ravel()].any()
    test_pos = split.test[split.test[:, 2] == 1]
    truth = M.truth_matrix(test_pos[:, 0], test_pos[:, 1], n_users, n_items)

    actual, predicted = jurity_frames(topk, truth)
    ours = M.ranking_metrics(topk, truth)
    for k in M.DEFAULT_KS:
        rec = jurity_score(RankingRecoMetrics.Recall(click_column=CLICK, k=k), actual, predicted)
        nd = jurity_score(RankingRecoMetrics.NDCG(click_column=CLICK, k=k), actual, predicted)
        assert ours[f"recall@{k}"] == pytest.approx(rec, abs=1e-9)
        assert ours[f"ndcg@{k}"] == pytest.approx(nd, abs=1e-9)

    # cold start: each bucket's NDCG@100 equals jurity's NDCG on that bucket's users
    counts = user_train_counts(split.train, n_users)
    cold = M.cold_start_ndcg(topk, truth, counts, k=100, percentiles=(1, 10, 50, 100))
    has = np.diff(truth.indptr) > 0
    tested = np.flatnonzero(has)
    for (_, row), bucket in zip(cold.iterrows(), M.cold_start_buckets(counts[has], (1, 10, 50, 100))):
        members = tested[bucket]
        ref = jurity_score(
            RankingRecoMetrics.NDCG(click_column=CLICK, k=100),
            actual[actual.user_id.isin(members)],
            predicted[predicted.user_id.isin(members)],
        )
        assert row["n_users"] == len(members) and row["ndcg@100"] == pytest.approx(ref, abs=1e-9)

    # diversity@20: genre one-hot vectors as content features
    genres = items["class:token_seq"].fillna("").str.get_dummies(sep=" ").to_numpy(dtype=np.float64)
    inter20 = jurity_score(
        DiversityRecoMetrics.InterListDiversity(click_column=CLICK, k=20, user_sample_size=None), actual, predicted
    )
    assert M.inter_list_diversity(topk, n_items, k=20) == pytest.approx(inter20, abs=1e-9)
    intra20 = jurity_score(
        DiversityRecoMetrics.IntraListDiversity(
            item_features=item_frame(genres), click_column=CLICK, k=20, user_sample_size=None
        ),
        actual,
        predicted,
    )
    assert M.intra_list_diversity(topk, genres, k=20) == pytest.approx(intra20, abs=1e-9)
