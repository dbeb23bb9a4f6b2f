"""Trainer: config validation, optimiser semantics, determinism, checkpoints, CL batching, CLI."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from kgcl_lib.data import split_ratings
from kgcl_lib.data.synthetic import SyntheticShape, make_synthetic
from kgcl_lib.pairs import build_pairs
from kgcl_lib.model import KGCN, TableAdam, build_backbone
from kgcl_lib.train import TrainConfig, load_checkpoint, paper_settings, save_checkpoint, train
from kgcl_lib.train.__main__ import main

torch.set_num_threads(1)

SMALL = SyntheticShape("small", n_users=40, n_items=30, n_rows=600, n_entities=70, n_relations=4, n_triples=150)


@pytest.fixture(scope="module")
def ds():
    return make_synthetic(SMALL, seed=0)


@pytest.fixture(scope="module")
def split(ds):
    return split_ratings(ds.ratings, np.random.default_rng(0))


def small_cfg(**kw):
    base = dict(dataset="small", epochs=2, dim=8, n_iter=2, n_neighbors=3, batch_size=64, lr=1e-2, l2=1e-4, aggregator="concat", device="cpu")
    return TrainConfig(**{**base, **kw})


def pairs_for(ds, n=3):
    """The library's pairs (KG-attribute sampler: synthetic items share KG attributes, no encoder needed)."""
    return build_pairs(ds, "genre", n=n, sampler="kg", seed=0, cache=False, show_progress=False)


def fake_text(ds, D=6, seed=0):
    g = np.random.default_rng(seed)
    has = g.random(ds.n_items) > 0.3
    vec = g.standard_normal((ds.n_items, D)).astype(np.float32) * has[:, None]
    return SimpleNamespace(vectors=vec, has_text=has, model="fake")


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gamma=1.5), "gamma"),
        (dict(gamma=-0.1), "gamma"),
        (dict(n_neighbors=0), "n_neighbors"),
        (dict(aggregator="max"), "aggregator"),
        (dict(variant="cl_plot"), "variant"),
        (dict(text="poster"), "text"),
        (dict(cl_loss="triplet"), "cl_loss"),
        (dict(optimizer="sgd"), "optimizer"),
        (dict(lr=0.0), "lr"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_paper_settings():
    bx = paper_settings("book-crossing")
    assert (bx["n_neighbors"], bx["n_iter"], bx["dim"], bx["lr"], bx["l2"], bx["batch_size"], bx["aggregator"]) == (4, 1, 64, 2e-4, 2e-5, 256, "concat")
    ml = paper_settings("ml-20m")
    assert (ml["n_neighbors"], ml["n_iter"], ml["dim"], ml["lr"], ml["l2"], ml["batch_size"]) == (4, 2, 32, 2e-2, 1e-7, 65536)
    TrainConfig(**paper_settings("ml-100k"))  # valid
    with pytest.raises(ValueError, match="no paper settings"):
        paper_settings("netflix")


def test_for_dataset_starts_from_the_paper_settings():
    """``TrainConfig.for_dataset`` (the API twin of the CLI's ``--settings``): Table 1 for the
    paper's datasets, KGCN's own with ``"kgcn"``, TrainConfig's defaults with ``"generic"`` and
    for other datasets; field overrides win.  Expected values typed out from the papers."""
    bx = TrainConfig.for_dataset("book-crossing")
    assert (bx.dataset, bx.aggregator, bx.n_neighbors, bx.n_iter, bx.dim, bx.lr, bx.l2, bx.batch_size, bx.epochs) == (
        "book-crossing", "concat", 4, 1, 64, 2e-4, 2e-5, 256, 10)
    assert bx.optimizer == "adam" and bx.l2_scope == "table"
    ml = TrainConfig.for_dataset("ml-100k", seed=3, lr=0.5)
    assert (ml.aggregator, ml.n_neighbors, ml.n_iter, ml.dim, ml.l2, ml.batch_size, ml.seed, ml.lr) == (
        "concat", 4, 2, 32, 1e-7, 2048, 3, 0.5)
    kg = TrainConfig.for_dataset("book-crossing", "kgcn")
    assert (kg.aggregator, kg.n_neighbors, kg.dim, kg.n_iter, kg.lr, kg.l2, kg.batch_size) == ("sum", 8, 64, 1, 2e-4, 2e-5, 256)
    assert TrainConfig.for_dataset("book-crossing", "generic") == TrainConfig(dataset="book-crossing")
    assert TrainConfig.for_dataset("synthetic:tiny") == TrainConfig(dataset="synthetic:tiny")
    assert TrainConfig.for_dataset("synthetic:tiny", "kgcn").aggregator == "sum"
    with pytest.raises(ValueError, match="settings='table1'"):
        TrainConfig.for_dataset("book-crossing", "table1")
    with pytest.raises(ValueError, match="TrainConfig.dim=0"):  # overrides are validated as usual
        TrainConfig.for_dataset("book-crossing", dim=0)
    with pytest.raises(TypeError, match="multiple values"):
        TrainConfig.for_dataset("book-crossing", dataset="ml-100k")


def test_pairs_with_unknown_items_raise(ds, split):
    bad = pd.DataFrame({"anchor": [0, 1], "other": [2, ds.n_items + 5], "label": [1, 0]})
    with pytest.raises(ValueError, match=r"row 1: other item"):
        train(ds, split, small_cfg(variant="cl_genre"), pairs=bad, progress=False)
    with pytest.raises(ValueError, match="needs content pairs"):
        train(ds, split, small_cfg(variant="cl_genre"), pairs=None, progress=False)
    with pytest.raises(ValueError, match="text embeddings"):
        train(ds, split, small_cfg(text="synopsis"), progress=False)


# ----------------------------------------------------------------------------- optimiser
def _run_table_adam(mode, p0, steps, ids_fn, eps=1e-30, use_cpp=True):
    P = p0.clone()
    opt = TableAdam({"x": P}, lr=0.01, eps=eps, mode=mode)
    opt.use_cpp = use_cpp
    g = torch.Generator().manual_seed(1)
    for t in range(steps):
        opt.tick()
        ids = ids_fn(t, g)
        rows = opt.begin("x", ids)
        target = torch.randn(rows.shape, generator=g)
        ((rows - target) ** 2).sum().backward()
        opt.finish("x", ids, rows, rows.grad)
    opt.flush()
    return P


def _torch_adam(p0, steps, ids_fn, eps=1e-30):
    P = p0.clone().requires_grad_()
    opt = torch.optim.Adam([P], lr=0.01, eps=eps)
    g = torch.Generator().manual_seed(1)
    for t in range(steps):
        ids = ids_fn(t, g)
        opt.zero_grad()
        rows = P[ids]
        target = torch.randn(rows.shape, generator=g)
        ((rows - target) ** 2).sum().backward()
        opt.step()
    return P.detach()


def _ids(t, g):
    # row 0 is used at step 0 and then idles for 400 steps (> TableAdam.H) before step 401
    if t == 0 or t == 401:
        return torch.tensor([0, 1])
    return torch.unique(torch.randint(1, 30, (4,), generator=g))


def test_table_adam_dense_equals_torch_adam():
    p0 = torch.randn(30, 3, generator=torch.Generator().manual_seed(0))
    ref = _torch_adam(p0, 450, _ids)
    got = _run_table_adam("dense", p0, 450, _ids)
    assert torch.allclose(got, ref, atol=2e-6)


@pytest.mark.parametrize("use_cpp", [False, True])
def test_table_adam_deferred_equals_dense_adam(use_cpp):
    """Row-sparse deferred updates reproduce dense Adam (ε negligible), incl. idle > H steps;
    both the pure-torch path and the compiled row kernels (when they build)."""
    p0 = torch.randn(30, 3, generator=torch.Generator().manual_seed(0))
    dense = _torch_adam(p0, 450, _ids)
    deferred = _run_table_adam("deferred", p0, 450, _ids, use_cpp=use_cpp)
    assert (dense - p0).abs().max() > 0.5  # the rows really moved
    assert torch.allclose(deferred, dense, atol=2e-5)
    # and lazy Adam is measurably different (idle rows do not coast)
    lazy = _run_table_adam("lazy", p0, 450, _ids, use_cpp=use_cpp)
    assert (lazy - dense).abs().max() > 1e-2
    lazy_ref = _run_table_adam("lazy", p0, 450, _ids, use_cpp=not use_cpp)
    assert torch.allclose(lazy, lazy_ref, atol=1e-5)


def test_table_adam_idle_window_recurrence_equals_direct_sum():
    """The per-step window update (shift + add) equals the closed form computed from scratch,
    and both equal the defining sum F(t0, Δ) = Σ_{k=1..Δ} ρ^k c(t0 + k)."""
    P = torch.zeros(3, 2)
    stepped = TableAdam({"x": P}, lr=0.01)
    for t in range(1, 700):
        win_stepped, _ = stepped._tables(t, P.device)
    fresh = TableAdam({"x": P}, lr=0.01)
    win_fresh, _ = fresh._tables(699, P.device)
    assert torch.allclose(win_stepped, win_fresh, rtol=1e-6, atol=0)
    rho = stepped._rho
    for delta in (1, 7, 200):
        t0 = 699 - delta
        direct = sum(rho**k * float(stepped._c(t0 + k)) for k in range(1, delta + 1))
        assert abs(float(win_stepped[delta]) - direct) <= 1e-6 * direct


@pytest.mark.parametrize("mode", ["deferred", "lazy", "dense"])
@pytest.mark.parametrize("use_cpp", [False, True])
def test_table_adam_row_l2_equals_explicit_gradient(mode, use_cpp):
    """finish(..., l2=λ) == finish with the gradient of λ·½‖rows‖² added by hand (and a missing
    gradient counts as zero)."""
    p0 = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    lam = 0.3
    out = []
    for fused in (True, False):
        P = p0.clone()
        opt = TableAdam({"x": P}, lr=0.05, mode=mode)
        opt.use_cpp = use_cpp
        g = torch.Generator().manual_seed(5)
        for t in range(6):
            opt.tick()
            ids = torch.unique(torch.randint(0, 12, (5,), generator=g))
            rows = opt.begin("x", ids)
            grad = None if t == 2 else torch.randn(rows.shape, generator=g)
            if fused:
                opt.finish("x", ids, rows, grad, l2=lam)
            else:
                base = torch.zeros_like(rows) if grad is None else grad
                opt.finish("x", ids, rows, base + lam * rows.detach())
        opt.flush()
        out.append(P)
    assert (out[0] - p0).abs().max() > 1e-2
    assert torch.allclose(out[0], out[1], atol=1e-6)


def test_lazy_adam_leaves_idle_rows_untouched():
    p0 = torch.randn(10, 2)
    P = p0.clone()
    opt = TableAdam({"x": P}, lr=0.1, mode="lazy")
    for ids in ([0, 1], [2], [2]):
        opt.tick()
        ids = torch.tensor(ids)
        rows = opt.begin("x", ids)
        rows.sum().backward()
        opt.finish("x", ids, rows, rows.grad)
    assert torch.equal(P[3:], p0[3:])
    # rows 0, 1 moved only once: Adam's first step is exactly lr * sign(grad)
    assert torch.allclose(P[:2], p0[:2] - 0.1, atol=1e-6)


# ----------------------------------------------------------------------------- training
def test_train_runs_and_learns(ds, split):
    res = train(ds, split, small_cfg(epochs=4, lr=3e-2), progress=False)
    assert len(res.history) == 4 and res.epochs == 4
    for h in res.history:
        assert set(h) >= {"epoch", "loss", "base_loss", "cl_loss", "l2_loss", "valid_auc", "valid_f1", "seconds"}
        assert math.isfinite(h["loss"])
    assert res.history[-1]["base_loss"] < res.history[0]["base_loss"]
    assert 0 <= res.test_auc <= 1 and 0 <= res.test_f1 <= 1
    assert res.train_rows_per_s > 0 and res.info["steps_per_epoch"] == math.ceil(len(split.train) / 64)


def test_seed_determinism(ds, split):
    cfg = small_cfg(variant="cl_genre", text="synopsis", epochs=2)
    pairs, text = pairs_for(ds), fake_text(ds)
    a = train(ds, split, cfg, pairs=pairs, text=text, progress=False)
    b = train(ds, split, cfg, pairs=pairs, text=text, progress=False)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.test_auc == b.test_auc
    c = train(ds, split, small_cfg(variant="cl_genre", text="synopsis", epochs=2, seed=1), pairs=pairs, text=text, progress=False)
    assert [h["loss"] for h in c.history] != [h["loss"] for h in a.history]


@pytest.mark.parametrize("cl_loss", ["bce", "infonce"])
def test_joint_batching_and_cl(ds, split, cl_loss):
    pairs = pairs_for(ds)
    res = train(ds, split, small_cfg(variant="cl_genre", cl_loss=cl_loss, epochs=1), pairs=pairs, progress=False)
    steps = math.ceil(len(split.train) / 64)
    n_pairs = len(pairs.table) if cl_loss == "bce" else len(pairs.positives)
    assert res.info["cl_batch"] == math.ceil(n_pairs / steps)
    assert res.history[0]["cl_loss"] > 0
    # total = γ base + (1 − γ) CL + λ l2, averaged over steps
    h = res.history[0]
    assert h["loss"] == pytest.approx(0.8 * h["base_loss"] + 0.2 * h["cl_loss"] + 1e-4 * h["l2_loss"], rel=1e-4)


def test_gamma_one_ignores_cl(ds, split):
    """γ = 1 leaves CL out of the gradient: same losses as the base variant (CL only logged)."""
    pairs = pairs_for(ds)
    a = train(ds, split, small_cfg(variant="cl_genre", gamma=1.0, epochs=2), pairs=pairs, progress=False)
    b = train(ds, split, small_cfg(epochs=2), progress=False)
    # the CL batch adds pair items to the row set, so the L2 term may differ slightly; compare base loss
    np.testing.assert_allclose([h["base_loss"] for h in a.history], [h["base_loss"] for h in b.history], rtol=2e-2)


def test_checkpoint_round_trip(ds, split, tmp_path):
    cfg = small_cfg(text="synopsis", epochs=1)
    res = train(ds, split, cfg, text=fake_text(ds), out_dir=tmp_path, progress=False)
    for name in ("config.json", "history.json", "result.json", "checkpoint.pt"):
        assert (tmp_path / name).is_file()
    assert json.loads((tmp_path / "config.json").read_text()) == cfg.to_dict()
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck.config == cfg
    np.testing.assert_array_equal(ck.model.predict(split.test), res.model.predict(split.test))
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, ck.model.state_dict()[k]), k
    ck.model.configure_training(ck.config)
    ck.model.load_optimizer_state(ck.optimizer_state)
    opt = ck.model.optimizer
    assert opt.rows.t == res.info["steps_per_epoch"]
    # explicit save/load of an arbitrary model + optimiser
    p = save_checkpoint(tmp_path / "again.pt", ck.model, cfg, extra={"note": 1})
    ck2 = load_checkpoint(p)
    assert ck2.extra == {"note": 1}
    assert torch.equal(ck2.optimizer_state["rows"]["state"]["entity_emb"]["mv"], opt.rows.state["entity_emb"]["mv"])


def test_early_stopping_and_restore_best(ds, split):
    res = train(ds, split, small_cfg(epochs=30, lr=0.2, patience=2), progress=False)
    aucs = [h["valid_auc"] for h in res.history]
    best = int(np.argmax(aucs)) + 1
    assert res.best_epoch == best
    assert res.epochs < 30 and res.epochs - best == 2  # stopped after `patience` non-improving epochs
    assert res.valid_auc == aucs[best - 1]


def test_cli_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    rc = main(["--dataset", "synthetic:tiny", "--epochs", "2", "--dim", "4", "--n-iter", "1", "--n-neighbors", "2",
               "--batch-size", "16", "--json", "--no-progress", "--out-dir", str(tmp_path / "run")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("test_auc", "test_f1", "valid_auc", "epochs", "seconds", "train_rows_per_s"):
        assert key in out
    assert out["epochs"] == 2
    assert (tmp_path / "run" / "config.json").is_file()


@pytest.mark.slow
def test_ml100k_smoke_real_data():
    """Smoke tier: real ML-100K, 3 epochs of L_base at the paper's movie settings."""
    root = os.environ.get("KGCL_DATA_DIR")
    if not root or not (Path(root) / "ml-100k").is_dir():
        pytest.skip("KGCL_DATA_DIR with ml-100k/ not available")
    from kgcl_lib.data import load_dataset

    ds = load_dataset("ml-100k", data_dir=root)
    split = split_ratings(ds.ratings, np.random.default_rng(0))
    res = train(ds, split, TrainConfig(dataset="ml-100k", **{**paper_settings("ml-100k"), "epochs": 3}), progress=False)
    assert res.valid_auc > 0.8


def test_table_l2_scope(ds, split):
    """KGCN's whole-table L2 (the default; lazy or dense Adam) shrinks rows no batch ever touches,
    and the lazy default equals dense Adam there; batch-row L2 leaves them alone."""
    assert TrainConfig().l2_scope == "table" and TrainConfig().optimizer == "adam"
    with pytest.raises(ValueError, match="lazy"):
        small_cfg(l2_scope="table", optimizer="lazy_adam")
    # user 0's rows are removed from the training data, so only the L2 term can move them
    keep = split.train[:, 0] != 0
    sp0 = type(split)(split.train[keep], split.valid, split.test)
    res = {}
    for scope, opt in (("batch", "adam"), ("table", "dense_adam"), ("table", "adam")):
        r = train(ds, sp0, small_cfg(l2_scope=scope, optimizer=opt, l2=0.5, epochs=2), progress=False)
        res[scope, opt] = r.model.user_emb.detach()[0].clone()
    init = build_model_for(ds, small_cfg()).user_emb.detach()[0]
    assert torch.equal(res["batch", "adam"], init)
    assert res["table", "dense_adam"].norm() < 0.9 * init.norm()
    assert torch.allclose(res["table", "adam"], res["table", "dense_adam"], rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (run on a GPU machine)")
def test_train_on_cuda_matches_cpu(ds, split):
    """Two epochs on CUDA give the CPU run's losses and test AUC (different kernels, same maths)."""
    res = {dev: train(ds, split, small_cfg(device=dev, seed=3), progress=False) for dev in ("cpu", "cuda")}
    assert res["cuda"].info["device"].startswith("cuda")
    for a, b in zip(res["cpu"].history, res["cuda"].history):
        assert abs(a["loss"] - b["loss"]) < 1e-3
    assert abs(res["cpu"].test_auc - res["cuda"].test_auc) < 1e-2


@pytest.mark.parametrize("optimizer, scope", [("adam", "batch"), ("dense_adam", "table"), ("adam", "table")])
def test_l2_shrinks_weights_and_rows(ds, split, optimizer, scope):
    """λ reaches both the dense weights (through autograd) and the table rows (inside TableAdam):
    with a large λ every part ends up much smaller than with λ = 0."""
    runs = {lam: train(ds, split, small_cfg(l2=lam, lr=0.05, epochs=3, optimizer=optimizer, l2_scope=scope),
                       progress=False).model for lam in (0.0, 1.0)}
    for name in ("agg_weights.0", "relation_emb", "entity_emb", "user_emb"):
        big, none = (dict(runs[lam].named_parameters())[name].detach().norm() for lam in (1.0, 0.0))
        assert big < 0.5 * none, (name, float(big), float(none))


@pytest.mark.parametrize("argv, want", [
    ([], "paper"), (["--settings", "generic"], "generic"), (["--lr", "0.5"], "paper+lr"),
    (["--settings", "kgcn"], "kgcn")])
def test_cli_paper_settings_are_the_default(monkeypatch, ds, argv, want):
    """``python -m kgcl_lib.train --dataset book-crossing`` trains with Table 1's settings;
    ``--settings generic`` gives TrainConfig's defaults, flags win."""
    import kgcl_lib.train.__main__ as cli_mod
    from kgcl_lib.train import loop

    seen = {}

    class Stop(Exception):
        pass

    def fake_train(ds_, split_, cfg, **kw):
        seen["cfg"] = cfg
        raise Stop

    monkeypatch.setattr(cli_mod, "load_dataset", lambda name, **kw: ds)
    monkeypatch.setattr(loop, "train", fake_train)
    with pytest.raises(Stop):
        main(["--dataset", "book-crossing", "--no-progress", *argv])
    cfg = seen["cfg"]
    paper = TrainConfig(dataset="book-crossing", **paper_settings("book-crossing"))
    if want == "generic":
        assert cfg == TrainConfig(dataset="book-crossing")
    elif want == "kgcn":  # KGCN's Book-Crossing settings, typed out from its paper
        assert (cfg.aggregator, cfg.n_neighbors, cfg.dim, cfg.n_iter, cfg.lr, cfg.l2, cfg.batch_size) == (
            "sum", 8, 64, 1, 2e-4, 2e-5, 256)
    elif want == "paper":
        assert cfg == paper
    else:
        assert cfg == TrainConfig(**{**paper.to_dict(), "lr": 0.5})
    assert cfg.l2_scope == "table" and cfg.optimizer == "adam"  # KGCN's optimiser either way


# ----------------------------------------------------------------------------- rows no score reads
@pytest.mark.parametrize("n_iter, K", [(1, 2), (2, 3), (1, 5)])
@pytest.mark.parametrize("kernels", [True, False])
def test_readable_entities_cover_every_row_a_forward_reads(ds, n_iter, K, kernels):
    """``readable_entities`` is exactly the union of every item's receptive field, and the row
    planner (compiled and pure torch) never asks for an entity row outside it."""
    model = build_backbone("kgcn", ds, small_cfg(n_iter=n_iter, n_neighbors=K))
    model.use_kernels = kernels
    mask = model.readable_entities()
    items = torch.arange(ds.n_items)
    field, _ = model.receptive_field(items)
    want = torch.zeros(ds.n_entities, dtype=torch.bool)
    want[field.reshape(-1)] = True
    assert torch.equal(mask, want)
    plan = model.plan(torch.zeros(ds.n_items, dtype=torch.int64), items, extra_items=items)
    assert bool(mask[plan.plain_ids].all()) and bool(mask[plan.text_ids].all())
    if n_iter == 1:
        assert int((~mask).sum()) > 0  # the fixture really has rows no forward reads


@pytest.mark.parametrize("restore", [True, False])
def test_unread_rows_flushed_once_give_the_same_weights(ds, split, monkeypatch, restore):
    """Skipping the unread rows' per-epoch flush and bringing them to the returned epoch's step at
    the end gives the same bits as flushing every row every epoch -- with the best epoch before
    the last (restore_best) and without -- and those rows did move (whole-table λ)."""
    cfg = small_cfg(n_iter=1, n_neighbors=2, epochs=8, lr=0.05, l2=0.05, restore_best=restore)
    got = train(ds, split, cfg, progress=False)
    if restore:
        assert got.best_epoch < got.epochs  # the end flush targets an earlier step than the last
    unread = ~got.model.readable_entities()
    assert int(unread.sum()) > 0
    monkeypatch.setattr(KGCN, "readable_entities", lambda self: torch.ones(self.n_entities, dtype=torch.bool))
    ref = train(ds, split, cfg, progress=False)
    assert ref.info["finish_seconds"] >= 0 and got.seconds >= got.info["finish_seconds"]
    for name in ("user_emb", "entity_emb", "relation_emb"):
        assert torch.equal(getattr(got.model, name), getattr(ref.model, name)), name
    init = build_model_for(ds, cfg).entity_emb.detach()
    assert not torch.equal(got.model.entity_emb.detach()[unread], init[unread])
    assert [h["loss"] for h in got.history] == [h["loss"] for h in ref.history]
    assert (got.test_auc, got.valid_auc) == (ref.test_auc, ref.valid_auc)


def build_model_for(ds, cfg):
    return build_backbone(cfg.backbone, ds, cfg)
