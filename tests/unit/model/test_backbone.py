"""The backbone seam (docs/DESIGN.md, "Backbone seam"): a backbone registered in one line trains,
evaluates and checkpoints through the trainer; the trainer's step is Eq. 5 on what the backbone
returns (checked against the loss and Adam step written out by hand); a backbone with nothing to
train is evaluated as built; the default backbone leaves config dicts and run ids as they were."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from kgcl_lib import experiments as X
from kgcl_lib.data import split_ratings
from kgcl_lib.data.synthetic import SyntheticShape, make_synthetic
from kgcl_lib.model import BACKBONES, Backbone, StepOutput, build_backbone
from kgcl_lib.train import Batch, TrainConfig, load_checkpoint, train, train_step
from kgcl_lib.train.__main__ import parser


class DotBackbone(Backbone):
    """Matrix factorisation: logit = u · v, h_c = v, ½‖Θ‖² over the rows a step used."""

    name = "dot_test"

    def __init__(self, n_users, n_items, dim, generator):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.user = nn.Parameter(torch.randn(n_users, dim, generator=generator) * 0.1)
        self.item = nn.Parameter(torch.randn(n_items, dim, generator=generator) * 0.1)

    @classmethod
    def build(cls, ds, cfg, text=None, seeds=None):
        return cls(ds.n_users, ds.n_items, cfg.dim, torch.Generator().manual_seed(cfg.seed))

    def checkpoint_payload(self):
        return {"sizes": [self.n_users, self.n_items, self.user.shape[1]]}

    @classmethod
    def from_checkpoint(cls, payload):
        m = cls(*payload["sizes"], torch.Generator())
        m.load_state_dict(payload["state_dict"])
        return m

    def logits(self, users, items):
        return (self.user[users] * self.item[items]).sum(-1)

    def user_embeddings(self, users):
        return self.user[users]

    def content_embeddings(self, items=None):
        return self.item if items is None else self.item[items]

    def step_forward(self, users, items, anchor=None, other=None):
        u, v = self.user[users], self.item[items]
        l2 = 0.5 * (u.pow(2).sum() + v.pow(2).sum())
        a = o = None
        if anchor is not None:
            a, o = self.item[anchor], self.item[other]
        return StepOutput((u * v).sum(-1), a, o, l2, extra=self.extra_weight * self.item.sum())

    extra_weight = 0.0


class ConstantBackbone(DotBackbone):
    """Nothing to train: item popularity as a fixed score (the shape of a popularity baseline)."""

    name = "const_test"
    trainable = False

    @classmethod
    def build(cls, ds, cfg, text=None, seeds=None):
        m = cls(ds.n_users, ds.n_items, 1, torch.Generator().manual_seed(0))
        with torch.no_grad():
            m.user.fill_(1.0)
            m.item.copy_(torch.linspace(-1, 1, ds.n_items).view(-1, 1))
        return m


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(BACKBONES, DotBackbone.name, DotBackbone)
    monkeypatch.setitem(BACKBONES, ConstantBackbone.name, ConstantBackbone)


@pytest.fixture(scope="module")
def ds():
    return make_synthetic(SyntheticShape("bb", 30, 25, 400, 60, 4, 90), np.random.default_rng(1))


@pytest.fixture(scope="module")
def split(ds):
    return split_ratings(ds.ratings, np.random.default_rng(0))


def cfg(**kw):
    base = dict(dataset="bb", dim=4, epochs=2, batch_size=64, lr=0.05, l2=1e-3, threads=1, device="cpu",
                backbone=DotBackbone.name)
    base.update(kw)
    return TrainConfig(**base)


def test_a_registered_backbone_trains_evaluates_and_checkpoints(registered, ds, split, tmp_path):
    res = train(ds, split, cfg(), out_dir=tmp_path / "run", progress=False)
    m = res.model
    assert isinstance(m, DotBackbone) and res.epochs == 2 and 0.0 <= res.test_auc <= 1.0
    # predict and full-catalogue scores are the dot products (naive reference)
    U, V = m.user.detach().numpy(), m.item.detach().numpy()
    np.testing.assert_allclose(m.predict(split.test), 1 / (1 + np.exp(-(U[split.test[:, 0]] * V[split.test[:, 1]]).sum(1))),
                               rtol=1e-5)
    users = np.array([0, 3, 7])
    np.testing.assert_allclose(m.score_all(users).numpy(), 1 / (1 + np.exp(-(U[users] @ V.T))), rtol=1e-5)
    excl = sp.csr_matrix((np.ones(2), ([3, 7], [0, 1])), shape=(ds.n_users, ds.n_items))
    ref = U[users] @ V.T
    ref[1, 0] = ref[2, 1] = -np.inf
    np.testing.assert_array_equal(m.topk(users, 5, excl, chunk=2).numpy(), np.argsort(-ref, axis=1, kind="stable")[:, :5])
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert isinstance(ck.model, DotBackbone) and ck.config.backbone == DotBackbone.name
    np.testing.assert_array_equal(ck.model.predict(split.test), m.predict(split.test))
    assert ck.optimizer_state is not None


@pytest.mark.parametrize("cl_loss", ["bce", "infonce"])
def test_train_step_is_eq5_on_what_the_backbone_returns(registered, ds, cl_loss, monkeypatch):
    """One step: γ·BCE + (1−γ)·CL + λ·½‖Θ‖² + extra, minimised by one Adam step -- written out here."""
    monkeypatch.setattr(DotBackbone, "extra_weight", 0.3)
    c = cfg(gamma=0.7, l2=0.01, cl_loss=cl_loss, temperature=0.5, variant="cl_genre")
    m = build_backbone(c.backbone, ds, c)
    ref = build_backbone(c.backbone, ds, c)
    m.configure_training(c)
    users, items = torch.tensor([0, 1, 2, 1]), torch.tensor([3, 4, 5, 6])
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    anchor, other, pair_label = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([1.0, 0.0])
    got = train_step(m, c, Batch(users, items, labels, anchor, other, pair_label))

    u, v = ref.user[users], ref.item[items]
    base = F.binary_cross_entropy_with_logits((u * v).sum(-1), labels)
    a, o = ref.item[anchor], ref.item[other]
    if cl_loss == "bce":
        cl = F.binary_cross_entropy_with_logits((a * o).sum(-1), pair_label)
    else:
        cl = F.cross_entropy(a @ o.t() / 0.5, torch.arange(2))
    l2 = 0.5 * (u.pow(2).sum() + v.pow(2).sum())
    loss = 0.7 * base + 0.3 * cl + 0.01 * l2 + 0.3 * ref.item.sum()
    opt = torch.optim.Adam(ref.parameters(), lr=c.lr)
    opt.zero_grad()
    loss.backward()
    opt.step()
    torch.testing.assert_close(got, torch.stack([loss, base, cl, l2]).detach())
    torch.testing.assert_close(m.item.detach(), ref.item.detach())
    torch.testing.assert_close(m.user.detach(), ref.user.detach())


def test_a_backbone_with_nothing_to_train_is_evaluated_as_built(registered, ds, split):
    res = train(ds, split, cfg(backbone=ConstantBackbone.name, epochs=5), progress=False)
    assert res.epochs == 0 and res.history == [] and res.best_epoch == 0
    top = res.model.topk(np.arange(3), 4).numpy()
    np.testing.assert_array_equal(top, np.tile(np.arange(ds.n_items)[::-1][:4], (3, 1)))  # most "popular" last ids


def test_backbone_name_is_validated_everywhere(registered):
    with pytest.raises(ValueError, match=r"TrainConfig.backbone='nope'.*expected one of \('kgcn', 'ripplenet', 'pop', 'mf', 'lightgcn', 'dot_test'"):
        TrainConfig(backbone="nope")
    with pytest.raises(ValueError, match="RunSpec.backbone must be one of"):
        X.RunSpec("ml-100k", "base", backbone="nope")
    with pytest.raises(ValueError, match="unknown backbone 'nope'"):
        build_backbone("nope", None, None)
    assert parser().parse_args(["--dataset", "x", "--backbone", "dot_test"]).backbone == "dot_test"
    with pytest.raises(SystemExit):
        parser().parse_args(["--dataset", "x", "--backbone", "nope"])


def test_default_backbone_leaves_config_dicts_and_run_ids_as_they_were(registered):
    """KGCN runs keep their stored ids and config keys: the default is left out of both."""
    assert "backbone" not in TrainConfig().to_dict() and TrainConfig().backbone == "kgcn"
    assert TrainConfig(backbone="dot_test").to_dict()["backbone"] == "dot_test"
    spec = X.RunSpec("ml-100k", "base", "without", 0)
    # the id formula as it was before backbones existed
    old_key = {"dataset": "ml-100k", "variant": "base", "text": "without", "seed": 0, "gamma": None, "overrides": []}
    digest = hashlib.sha256(json.dumps(old_key, sort_keys=True, default=str).encode()).hexdigest()[:8]
    assert spec.key() == old_key and spec.run_id == f"ml-100k-base-without-s0-{digest}"
    other = X.RunSpec("ml-100k", "base", "without", 0, backbone="dot_test")
    assert other.run_id.startswith("ml-100k-dot_test-base-without-s0-") and other.key()["backbone"] == "dot_test"
    assert X.train_config(other, "ml-100k").backbone == "dot_test"
    assert X.train_config(spec, "ml-100k").backbone == "kgcn"
