"""Contrastive learning moves content embeddings the intended way.

A synthetic KG with planted item clusters: 4 clusters of 6 items; each cluster owns 3 attribute
entities and every item links to 2 of its cluster's 3, so KG-attribute pairs
(:func:`kgcl_lib.pairs.build_pairs`, ``sampler="kg"``) have positives inside a cluster and
negatives across clusters.  Ratings are random (labels independent of the clusters), so only
the contrastive loss can pull a cluster together.  Measured with ℓ_align (Wang & Isola; lower =
positive pairs closer) over the positive pairs the model was trained on, against γ = 1 (the
same run with the CL term weighted 0).  Controls that must *not* improve alignment: the CL loss
with its sign flipped, and pairs whose partners are shuffled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kgcl_lib import metrics as M
from kgcl_lib import train as T
from kgcl_lib.train import loop
from kgcl_lib.data import KGDataset, make_items, split_ratings
from kgcl_lib.pairs import build_pairs

torch.set_num_threads(1)

N_CLUSTERS, PER_CLUSTER, ATTRS = 4, 6, 3


def planted_dataset(seed: int = 0) -> KGDataset:
    rng = np.random.default_rng(seed)
    n_items = N_CLUSTERS * PER_CLUSTER
    kg = []
    for item in range(n_items):
        c = item // PER_CLUSTER
        for a in (item % ATTRS, (item + 1) % ATTRS):  # 2 of the cluster's 3 attributes
            kg.append((item, 0, n_items + c * ATTRS + a))
    n_users, per_user = 30, 10
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    ratings = np.stack([users, items, rng.integers(0, 2, len(users))], 1).astype(np.int64)
    return KGDataset(name="planted", ratings=ratings, kg=np.array(kg, dtype=np.int64), n_users=n_users, n_items=n_items,
                     n_entities=n_items + N_CLUSTERS * ATTRS, n_relations=1, items=make_items([str(i) for i in range(n_items)]),
                     user_raw_ids=np.array([f"u{u}" for u in range(n_users)], dtype=object),
                     relation_names=np.array(["has_attribute"], dtype=object))


@pytest.fixture(scope="module")
def planted():
    ds = planted_dataset()
    pairs = build_pairs(ds, "genre", n=3, sampler="kg", seed=0, cache=False, show_progress=False)
    return ds, split_ratings(ds.ratings, np.random.default_rng(0)), pairs


def _alignment(ds, split, pairs, gamma, train_pairs=None) -> float:
    cfg = T.TrainConfig(dataset="planted", variant="cl_genre", gamma=gamma, epochs=15, dim=8, n_iter=1, n_neighbors=2,
                        batch_size=16, lr=2e-2, l2=1e-5, aggregator="concat", device="cpu")
    res = T.train(ds, split, cfg, pairs=pairs if train_pairs is None else train_pairs, progress=False)
    with torch.no_grad():
        emb = res.model.content_embeddings().numpy()
    pos = pairs.positives[["anchor", "other"]].to_numpy()
    return M.alignment(emb[pos[:, 0]], emb[pos[:, 1]])


def test_planted_pairs_are_cluster_pairs(planted):
    ds, _, pairs = planted
    t = pairs.table
    same = (t["anchor"] // PER_CLUSTER) == (t["other"] // PER_CLUSTER)
    assert same[t["label"] == 1].all() and not same[t["label"] == 0].any()
    assert (t["label"] == 1).sum() == 3 * ds.n_items


def test_cl_improves_alignment_of_trained_positive_pairs(planted):
    ds, split, pairs = planted
    without_cl = _alignment(ds, split, pairs, gamma=1.0)
    with_cl = _alignment(ds, split, pairs, gamma=0.5)
    assert with_cl < 0.5 * without_cl, (with_cl, without_cl)


def test_controls_do_not_improve_alignment(planted, monkeypatch):
    """The test above can fail: a sign-flipped CL loss, or shuffled partners, give no gain."""
    ds, split, pairs = planted
    without_cl = _alignment(ds, split, pairs, gamma=1.0)
    shuffled = pairs.table.copy()
    shuffled["other"] = np.random.default_rng(1).permutation(shuffled["other"].to_numpy())
    assert _alignment(ds, split, pairs, gamma=0.5, train_pairs=shuffled) > 0.8 * without_cl
    monkeypatch.setattr(loop, "cl_bce_loss", lambda a, o, y: -loop.F.binary_cross_entropy_with_logits((a * o).sum(-1), y))
    assert _alignment(ds, split, pairs, gamma=0.5) > without_cl


def test_pairs_frame_form_is_accepted(planted):
    """Trainer input: the ContentPairs and its bare table train identically."""
    ds, split, pairs = planted
    cfg = T.TrainConfig(dataset="planted", variant="cl_genre", epochs=1, dim=4, n_iter=1, n_neighbors=2, batch_size=32,
                        device="cpu")
    a = T.train(ds, split, cfg, pairs=pairs, progress=False)
    b = T.train(ds, split, cfg, pairs=pd.DataFrame(pairs.table), progress=False)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
