"""Simple baselines (issue 29): popularity against a hand count, MF gradients against a
hand-derived gradient and ``torch.autograd.gradcheck``, LightGCN's propagation against a dense
loop, and each backbone through the trainer and the full-catalogue scorer."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kgcl_lib.model.lightgcn import LightGCN, normalized_adjacency, positive_edges
from kgcl_lib.model.mf import MatrixFactorization
from kgcl_lib.model.pop import Popularity, item_popularity

# (user, item, label): 3 users, 4 items
ROWS = np.array([
    [0, 0, 1], [0, 1, 1], [0, 3, 0],
    [1, 0, 1], [1, 2, 0], [1, 1, 0],
    [2, 0, 1], [2, 2, 1], [2, 3, 0],
], dtype=np.int64)


# ------------------------------------------------------------------------------- popularity
def test_popularity_equals_hand_count():
    # positives: item 0 by users 0, 1, 2; item 1 by user 0; item 2 by user 2; item 3 by none
    assert item_popularity(ROWS, 4).tolist() == [3, 1, 1, 0]
    model = Popularity(3, 4, ROWS)
    # 4 negatives over 4 items: m = 1, so logit_i = log(pop_i + 1) − log 2
    expect = [math.log(4 / 2), math.log(2 / 2), math.log(2 / 2), math.log(1 / 2)]
    got = model.logits(torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 2, 3]))
    assert torch.allclose(got, torch.tensor(expect))
    # the same ranking for every user: item 0, then items 1 and 2 (tied), then item 3
    top = model.topk(np.array([2, 0]), 4)
    assert top[:, 0].tolist() == [0, 0] and top[:, 3].tolist() == [3, 3]
    assert sorted(top[0, 1:3].tolist()) == [1, 2]
    # excluding a user's training items masks them before ranking
    import scipy.sparse as sp

    exclude = sp.csr_matrix((np.ones(1), ([2], [0])), shape=(3, 4))
    assert model.topk(np.array([2]), 1, exclude)[0, 0].item() in (1, 2)


def test_popularity_rejects_items_outside_catalogue():
    with pytest.raises(ValueError, match="item 4"):
        item_popularity(np.array([[0, 4, 1]]), 4)


# ------------------------------------------------------------------------------- MF
def _bce_l2(logits, labels, l2, lam):
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype)) + lam * l2


def test_mf_gradient_equals_hand_derivation():
    model = MatrixFactorization(3, 4, 2, generator=torch.Generator().manual_seed(3)).double()
    with torch.no_grad():
        model.user_bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        model.item_bias.copy_(torch.tensor([0.0, 0.5, -0.5, 0.2]))
        model.global_bias.fill_(0.05)
    lam = 0.3
    r = torch.as_tensor(ROWS)
    out = model.step_forward(r[:, 0], r[:, 1])
    _bce_l2(out.logits, r[:, 2], out.l2, lam).backward()
    P, Q = model.user_emb.detach().numpy(), model.item_emb.detach().numpy()
    bu, bi, b = model.user_bias.detach().numpy(), model.item_bias.detach().numpy(), model.global_bias.item()
    gP, gQ, gbu, gbi, gb = lam * P, lam * Q, lam * bu, lam * bi, 0.0
    n = len(ROWS)
    for u, i, y in ROWS:  # naive loop: d mean-BCE / d logit = (σ(x) − y) / n
        x = P[u] @ Q[i] + bu[u] + bi[i] + b
        g = (1 / (1 + math.exp(-x)) - y) / n
        gP[u] = gP[u] + g * Q[i]
        gQ[i] = gQ[i] + g * P[u]
        gbu[u] += g
        gbi[i] += g
        gb += g
    assert np.allclose(model.user_emb.grad.numpy(), gP, atol=1e-12)
    assert np.allclose(model.item_emb.grad.numpy(), gQ, atol=1e-12)
    assert np.allclose(model.user_bias.grad.numpy(), gbu, atol=1e-12)
    assert np.allclose(model.item_bias.grad.numpy(), gbi, atol=1e-12)
    assert math.isclose(model.global_bias.grad.item(), gb, abs_tol=1e-12)


def test_mf_gradcheck_and_full_scores():
    model = MatrixFactorization(3, 4, 2, generator=torch.Generator().manual_seed(1)).double()
    names = ["user_emb", "item_emb", "user_bias", "item_bias", "global_bias"]
    r = torch.as_tensor(ROWS)

    def loss_of(*values):  # the module's loss as a function of its parameters
        for name, v in zip(names, values):
            model._parameters[name] = v
        out = model.step_forward(r[:, 0], r[:, 1])
        return _bce_l2(out.logits, r[:, 2], out.l2, 0.1)

    inputs = tuple(getattr(model, n).detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(loss_of, inputs)
    for n, v in zip(names, inputs):
        model._parameters[n] = torch.nn.Parameter(v.detach().clone())
    users = torch.tensor([2, 0, 1])
    with torch.no_grad():
        pairs = torch.sigmoid(model.logits(users.repeat_interleave(4), torch.arange(4).repeat(3))).view(3, 4)
        assert torch.allclose(model.score_all(users), pairs.float(), atol=1e-6)


# ------------------------------------------------------------------------------- LightGCN
def _dense_lightgcn(U, I, rows, n_layers):
    """Naive reference: dense adjacency filled edge by edge, degrees by counting, layer loop."""
    nu, ni = U.shape[0], I.shape[0]
    n = nu + ni
    A = np.zeros((n, n))
    for u, i, y in rows:
        if y == 1:
            A[u, nu + i] = A[nu + i, u] = 1.0
    deg = A.sum(1)
    Ahat = np.zeros((n, n))
    for a in range(n):
        for c in range(n):
            if A[a, c]:
                Ahat[a, c] = 1.0 / math.sqrt(deg[a] * deg[c])
    layers = [np.concatenate([U, I])]
    for _ in range(n_layers):
        layers.append(Ahat @ layers[-1])
    mean = sum(layers) / (n_layers + 1)
    return Ahat, mean[:nu], mean[nu:]


@pytest.mark.parametrize("n_layers", [0, 1, 3])
def test_lightgcn_propagation_equals_dense_loop(n_layers):
    rows = np.concatenate([ROWS, [[0, 0, 1]]])  # a duplicate positive is one edge
    model = LightGCN(3, 4, 5, n_layers, positive_edges(rows, 3, 4), generator=torch.Generator().manual_seed(2)).double()
    U, I = model.user_emb.detach().numpy(), model.item_emb.detach().numpy()
    Ahat, eu, ei = _dense_lightgcn(U, I, rows, n_layers)
    assert np.allclose(model.adjacency.to_dense().numpy(), Ahat, atol=1e-7)
    gu, gi = model.propagate()
    assert np.allclose(gu.detach().numpy(), eu, atol=1e-6) and np.allclose(gi.detach().numpy(), ei, atol=1e-6)
    users, items = torch.tensor([0, 1, 2, 2]), torch.tensor([3, 0, 1, 2])
    assert np.allclose(model.logits(users, items).detach().numpy(), (eu[[0, 1, 2, 2]] * ei[[3, 0, 1, 2]]).sum(1),
                       atol=1e-6)
    logit = eu[[1, 2]] @ ei.T
    assert np.allclose(model.score_all(np.array([1, 2])).numpy(), 1 / (1 + np.exp(-logit)), atol=1e-6)
    # item 3 has no positive: an isolated node keeps only α_0 E⁽⁰⁾
    assert np.allclose(ei[3], I[3] / (n_layers + 1))


def test_lightgcn_gradcheck_and_cache():
    model = LightGCN(3, 4, 2, 2, positive_edges(ROWS, 3, 4), generator=torch.Generator().manual_seed(4)).double()
    r = torch.as_tensor(ROWS)

    def loss_of(U, I):
        model._parameters["user_emb"], model._parameters["item_emb"] = U, I
        out = model.step_forward(r[:, 0], r[:, 1])
        return _bce_l2(out.logits, r[:, 2], out.l2, 0.1)

    U = model.user_emb.detach().clone().requires_grad_(True)
    I = model.item_emb.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(loss_of, (U, I))
    # the no-grad cache follows in-place changes of the weights (optimiser steps, load_state_dict)
    with torch.no_grad():
        before = model.score_all(np.array([0])).clone()
        model.item_emb.mul_(2.0)
        after = model.score_all(np.array([0]))
    assert not torch.allclose(before, after)


def test_lightgcn_graph_ignores_negatives_and_duplicates():
    edges = positive_edges(np.array([[0, 1, 0], [1, 0, 1], [1, 0, 1]]), 2, 2)
    assert edges.tolist() == [[1, 0]]
    dense = normalized_adjacency(edges, 2, 2).to_dense()
    assert dense[0, 2 + 1] == 0 and dense[1, 2 + 0] == 1.0 and dense.sum() == 2.0


# ------------------------------------------------------------------------------- through the trainer
@pytest.fixture(scope="module")
def tiny():
    from kgcl_lib.data import split_ratings
    from kgcl_lib.data.synthetic import make_synthetic

    ds = make_synthetic("tiny")
    return ds, split_ratings(ds.ratings, np.random.default_rng(0))


@pytest.mark.parametrize("backbone", ["mf", "lightgcn"])
def test_trainer_fits_baseline_deterministically(tiny, backbone):
    from kgcl_lib.train import TrainConfig, train

    ds, split = tiny
    cfg = TrainConfig(dataset=ds.name, backbone=backbone, epochs=4, dim=8, n_iter=2, lr=1e-2, l2=1e-5,
                      batch_size=64, device="cpu")
    a = train(ds, split, cfg, progress=False)
    b = train(ds, split, cfg, progress=False)
    assert a.epochs == 4 and [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.history[-1]["base_loss"] < a.history[0]["base_loss"]  # it learns the training rows
    assert a.test_auc == b.test_auc and 0.0 <= a.test_auc <= 1.0
    # the trainer's test scores are the backbone's sigmoid(logits) of the test rows
    with torch.no_grad():
        t = torch.as_tensor(split.test)
        p = torch.sigmoid(a.model.logits(t[:, 0], t[:, 1])).numpy()
    from kgcl_lib.metrics import auc

    assert math.isclose(auc(split.test[:, 2], p), a.test_auc, rel_tol=1e-9)


def test_trainer_evaluates_popularity_without_training(tiny):
    from kgcl_lib.metrics import auc
    from kgcl_lib.train import TrainConfig, train

    ds, split = tiny
    res = train(ds, split, TrainConfig(dataset=ds.name, backbone="pop", device="cpu"), progress=False)
    assert res.epochs == 0
    pop = item_popularity(split.train, ds.n_items)
    # AUC of the popularity count itself on the test rows (ties counted half, as the AUC metric)
    assert math.isclose(res.test_auc, auc(split.test[:, 2], pop[split.test[:, 1]].astype(float)), rel_tol=1e-9)


def test_lightgcn_graph_is_the_training_positives_only(tiny):
    from kgcl_lib.model import build_backbone
    from kgcl_lib.train import TrainConfig

    ds, split = tiny
    model = build_backbone("lightgcn", ds, TrainConfig(dataset=ds.name, backbone="lightgcn", dim=4), train=split.train)
    pos = {tuple(r) for r in split.train[split.train[:, 2] == 1, :2].tolist()}
    assert {tuple(e) for e in model.edges.tolist()} == pos
    with pytest.raises(ValueError, match="training rows"):
        build_backbone("lightgcn", ds, TrainConfig(dataset=ds.name, backbone="lightgcn", dim=4))


@pytest.mark.parametrize("backbone", ["pop", "mf", "lightgcn"])
def test_checkpoint_round_trip(tiny, tmp_path, backbone):
    from kgcl_lib.train import TrainConfig, load_checkpoint, train

    ds, split = tiny
    cfg = TrainConfig(dataset=ds.name, backbone=backbone, epochs=2, dim=4, n_iter=1, batch_size=64, device="cpu")
    res = train(ds, split, cfg, progress=False, out_dir=tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert type(ckpt.model) is type(res.model) and ckpt.config == cfg
    users = np.arange(ds.n_users)
    with torch.no_grad():
        assert torch.equal(ckpt.model.eval().score_all(users), res.model.eval().score_all(users))
