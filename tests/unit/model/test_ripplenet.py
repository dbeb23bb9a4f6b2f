"""RippleNet (kgcl_lib.ripplenet) and its ripple sets (kgcl_lib.data.ripple) on tiny KGs.

References are independent: a naive per-user sampler written with Python lists exactly as the
reference ``get_ripple_set`` (for the support and the branch rules), a naive loop over rows and
triples for the forward pass and the loss terms, finite differences (``gradcheck``, float64)
for the gradients.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from kgcl_lib.data.ripple import sample_ripple_sets
from kgcl_lib.model.ripplenet import ITEM_UPDATE_MODES, RippleNet, RippleNetConfig

torch.set_num_threads(1)


def tiny_kg(seed=0, n_items=6, n_attrs=8, n_relations=3, n_triples=30):
    """Items 0..n_items-1, attributes after; random directed triples (heads: items and attrs)."""
    rng = np.random.default_rng(seed)
    n_entities = n_items + n_attrs
    heads = rng.integers(0, n_entities, n_triples)
    heads[:n_items] = np.arange(n_items)  # every item has an out-edge
    kg = np.stack([heads, rng.integers(0, n_relations, n_triples), rng.integers(0, n_entities, n_triples)], 1)
    return kg.astype(np.int64), n_entities, n_relations, n_items


def naive_candidates(kg, seeds):
    """The reference's candidate list for one user and hop: out-edges of every seed, in order."""
    out = collections.defaultdict(list)
    for h, r, t in kg:
        out[h].append((h, r, t))
    return [tri for e in seeds for tri in out[e]]


# ---------------------------------------------------------------------- ripple sets
def test_ripple_sets_follow_the_reference_rules():
    kg, n_ent, n_rel, n_items = tiny_kg()
    # user 0: many positives (draw without replacement); user 1: one item with few edges
    # (with replacement); user 2: no positive (no set); user 3: an item whose tails have no
    # out-edge (hop 1 copies hop 0)
    sink = n_ent  # an entity with no out-edge
    kg = np.concatenate([kg, [[5, 0, sink], [5, 1, sink]]])
    kg = kg[~((kg[:, 0] == 5) & (kg[:, 2] != sink))]
    n_ent += 1
    positives = np.array([[0, 0], [0, 1], [0, 2], [0, 3], [1, 4], [3, 5]])
    M = 4
    rs = sample_ripple_sets(kg, n_ent, 4, positives, n_hop=2, n_memory=M, rng=0)
    assert rs.heads.shape == (2, 4, M) and rs.has_set.tolist() == [True, True, False, True]
    triples = np.stack([rs.heads, rs.relations, rs.tails], -1)  # [H, U, M, 3]
    for u in (0, 1, 3):
        seeds = positives[positives[:, 0] == u, 1].tolist()
        for hop in range(2):
            cands = naive_candidates(kg, seeds)
            got = [tuple(x) for x in triples[hop, u].tolist()]
            if not cands:  # empty hop: copy of the previous hop
                assert hop > 0 and got == [tuple(x) for x in triples[hop - 1, u].tolist()]
            else:
                pool = collections.Counter(map(tuple, np.asarray(cands).tolist()))
                drawn = collections.Counter(got)
                assert set(drawn) <= set(pool)
                if len(cands) >= M:  # without replacement: each candidate (with multiplicity) at most once
                    assert all(drawn[k] <= pool[k] for k in drawn)
            seeds = [t for _, _, t in got]
    assert (triples[:, 2] == 0).all()
    # user 3's hop 1 is a copy (its hop-0 tails are the sink)
    assert (triples[1, 3] == triples[0, 3]).all()


def test_ripple_sets_are_seeded_and_reproducible():
    kg, n_ent, _, n_items = tiny_kg(seed=1, n_triples=200)
    rng = np.random.default_rng(5)
    positives = np.stack([rng.integers(0, 20, 80), rng.integers(0, n_items, 80)], 1)
    a = sample_ripple_sets(kg, n_ent, 20, positives, 2, 8, np.random.default_rng(3))
    b = sample_ripple_sets(kg, n_ent, 20, positives, 2, 8, np.random.default_rng(3))
    c = sample_ripple_sets(kg, n_ent, 20, positives, 2, 8, np.random.default_rng(4))
    for name in ("heads", "relations", "tails", "has_set"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.tails, c.tails)


def test_ripple_draws_are_uniform_without_replacement():
    """One user, 6 candidates, 3 drawn without replacement: every candidate is drawn with
    probability 1/2 (chi-square over 1,500 seeded draws)."""
    kg = np.array([[0, r, 1 + r] for r in range(6)], dtype=np.int64)
    counts = np.zeros(6)
    for s in range(1500):
        rs = sample_ripple_sets(kg, 7, 1, np.array([[0, 0]]), 1, 3, s)
        rel = rs.relations[0, 0]
        assert len(set(rel.tolist())) == 3
        counts[rel] += 1
    expected = 1500 * 3 / 6
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 20.5, counts  # 5 d.o.f., p ≈ 0.001


def test_ripple_sets_reject_bad_ids():
    kg, n_ent, _, _ = tiny_kg()
    with pytest.raises(ValueError, match="positives item row 0"):
        sample_ripple_sets(kg, n_ent, 2, np.array([[0, n_ent]]), 1, 2, 0)


# ---------------------------------------------------------------------- model
def make_model(mode="plus_transform", all_hops=True, text=False, dtype=torch.float32, seed=0, dim=4):
    kg, n_ent, n_rel, n_items = tiny_kg(seed=seed, n_triples=60)
    n_users = 5
    positives = np.array([[0, 0], [0, 3], [1, 1], [2, 2], [2, 4], [2, 5], [4, 0]])  # user 3: none
    rs = sample_ripple_sets(kg, n_ent, n_users, positives, 2, 6, seed)
    tv = None
    if text:
        tv = torch.randn(n_items, 5, generator=torch.Generator().manual_seed(seed))
    cfg = RippleNetConfig(dim=dim, n_hop=2, n_memory=6, item_update_mode=mode, using_all_hops=all_hops,
                          text_dim=5 if text else None)
    has_text = torch.tensor([True, False, True, True, False, True]) if text else None
    m = RippleNet(cfg, n_users, n_ent, n_rel, n_items, torch.from_numpy(rs.heads), torch.from_numpy(rs.relations),
                  torch.from_numpy(rs.tails), torch.from_numpy(rs.has_set), tv, has_text,
                  generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():  # larger weights than Xavier's so that attention is far from uniform
        for p in m.parameters():
            p.mul_(3.0)
    return m.to(dtype)


def naive_forward(model, users, items):
    """Per row and per triple, as the reference graph: ``(logits, kge, l2)``."""
    logits, kge_sum, l2, n_valid = [], 0.0, 0.0, 0
    H, M = model.cfg.n_hop, model.cfg.n_memory
    for u, i in zip(users.tolist(), items.tolist()):
        v = model.entity_rows(torch.tensor([i]))[0]
        valid = bool(model.has_set[u])
        o_list = []
        for k in range(H):
            h = model.entity_rows(model.mem_heads[k, u])
            t = model.entity_rows(model.mem_tails[k, u])
            Rs = [model.relation_mat[r] for r in model.mem_relations[k, u].tolist()]
            scores = torch.stack([v @ (Rs[j] @ h[j]) for j in range(M)])
            p = torch.softmax(scores, 0) if valid else torch.zeros_like(scores)
            o = sum(p[j] * t[j] for j in range(M))
            v = model._update(v, o)
            o_list.append(o)
            if valid:
                kge_sum = kge_sum + sum(torch.sigmoid(h[j] @ Rs[j] @ t[j]) for j in range(M)) / M
                l2 = l2 + sum((h[j] ** 2).sum() + (t[j] ** 2).sum() + (Rs[j] ** 2).sum() for j in range(M))
        n_valid += valid
        y = sum(o_list) if model.cfg.using_all_hops else o_list[-1]
        logits.append(v @ y)
    kge = kge_sum / max(n_valid, 1)
    if model.alpha_weight is not None:
        l2 = l2 + (model.alpha_weight ** 2).sum()
    return torch.stack(logits), kge, l2


BATCH_U = torch.tensor([0, 1, 2, 3, 4, 0, 2, 2, 1])
BATCH_I = torch.tensor([0, 1, 2, 3, 4, 5, 0, 2, 3])


@pytest.mark.parametrize("mode", ITEM_UPDATE_MODES)
@pytest.mark.parametrize("all_hops", [True, False])
def test_forward_and_terms_match_naive_loop(mode, all_hops):
    m = make_model(mode, all_hops, dtype=torch.float64)
    logits, kge, l2 = m.terms(BATCH_U, BATCH_I)
    ref_logits, ref_kge, ref_l2 = naive_forward(m, BATCH_U, BATCH_I)
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(kge, torch.as_tensor(ref_kge, dtype=kge.dtype))
    torch.testing.assert_close(l2, torch.as_tensor(ref_l2, dtype=l2.dtype))
    assert logits[3] == 0  # user 3 has no ripple set: empty memory, logit 0
    assert logits.std() > 0.1  # attention is not degenerate


def test_forward_with_text_matches_naive_loop():
    m = make_model(text=True, dtype=torch.float64)
    logits, kge, l2 = m.terms(BATCH_U, BATCH_I)
    ref = naive_forward(m, BATCH_U, BATCH_I)
    torch.testing.assert_close(logits, ref[0])
    torch.testing.assert_close(l2, torch.as_tensor(ref[2], dtype=l2.dtype))
    # text items start from MLP_α(E(x)), the others from their embedding row
    hc = m.content_embeddings()
    torch.testing.assert_close(hc[0], m.text_vectors[0] @ m.alpha_weight.t() + m.alpha_bias)
    torch.testing.assert_close(hc[1], m.entity_emb[1])


@pytest.mark.parametrize("mode", ["plus_transform", "replace"])
def test_full_catalogue_scores_equal_per_row_forward(mode):
    m = make_model(mode, text=True)
    users = torch.arange(m.n_users)
    uu, ii = torch.meshgrid(users, torch.arange(m.n_items), indexing="ij")
    with torch.no_grad():
        rows = torch.sigmoid(m(uu.reshape(-1), ii.reshape(-1))).view(m.n_users, m.n_items)
    torch.testing.assert_close(m.scores(users, item_block=4), rows, atol=1e-6, rtol=1e-5)  # blocks that do not divide
    torch.testing.assert_close(m.score_all(users.flip(0)), rows.flip(0), atol=1e-6, rtol=1e-5)
    assert (rows[3] == 0.5).all()  # no ripple set
    top = m.topk(users, 3)
    assert torch.equal(torch.sort(top, 1).values, torch.sort(torch.topk(rows, 3, 1).indices, 1).values)
    with pytest.raises(ValueError, match="no item-independent user vector"):
        m.score_all(users, mode="dot")


def test_logit_gradients_by_finite_differences():
    m = make_model(text=True, dtype=torch.float64)
    names = [n for n, _ in m.named_parameters()]

    def f(*tensors):
        return torch.func.functional_call(m, dict(zip(names, tensors)), (BATCH_U, BATCH_I))

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in m.parameters())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


def test_loss_terms_gradients_by_finite_differences():
    m = make_model(text=True, dtype=torch.float64)
    names = [n for n, _ in m.named_parameters()]
    labels = torch.tensor([1.0, 0, 1, 0, 1, 0, 1, 1, 0], dtype=torch.float64)

    class Loss(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, u, i):
            logits, kge, l2 = self.inner.terms(u, i)
            base = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
            return base - 0.3 * kge + 1e-2 * l2

    wrapped = Loss(m)

    def f(*tensors):
        return torch.func.functional_call(wrapped, {f"inner.{n}": x for n, x in zip(names, tensors)}, (BATCH_U, BATCH_I))

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in m.parameters())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


def test_bad_config_and_sets_are_rejected():
    with pytest.raises(ValueError, match="item_update_mode"):
        RippleNetConfig(item_update_mode="nonlinear")
    with pytest.raises(ValueError, match="heads must be"):
        RippleNet(RippleNetConfig(n_memory=2, n_hop=1), 2, 3, 1, 2, torch.zeros(1, 2, 3, dtype=torch.int64),
                  torch.zeros(1, 2, 2, dtype=torch.int64), torch.zeros(1, 2, 2, dtype=torch.int64), torch.ones(2, dtype=torch.bool))


# ---------------------------------------------------------------------- through the seam
def synthetic():
    from kgcl_lib.data import split_ratings
    from kgcl_lib.data.synthetic import SyntheticShape, make_synthetic

    ds = make_synthetic(SyntheticShape("rn", 30, 25, 500, 60, 4, 90), np.random.default_rng(1))
    return ds, split_ratings(ds.ratings, np.random.default_rng(0))


def test_trains_through_the_trainer_and_checkpoints(tmp_path):
    from kgcl_lib.train import TrainConfig, load_checkpoint, train

    ds, split = synthetic()
    cfg = TrainConfig(dataset="rn", backbone="ripplenet", dim=8, n_memory=8, epochs=3, batch_size=64, lr=2e-2,
                      l2=1e-6, kge_weight=0.1, device="cpu")
    res = train(ds, split, cfg, out_dir=tmp_path / "run", progress=False)
    assert res.epochs == 3 and np.isfinite(res.test_auc)
    assert res.history[-1]["base_loss"] < res.history[0]["base_loss"]
    # the ripple sets come from split.train's positives only: every hop-0 head is a training positive
    m = res.model
    pos = {(u, i) for u, i, y in split.train.tolist() if y == 1}
    users = torch.nonzero(m.has_set).view(-1).tolist()
    assert users and all((u, h) in pos for u in users for h in m.mem_heads[0, u].tolist())
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert isinstance(ck.model, RippleNet) and ck.config.n_memory == 8 and ck.model.kge_weight == 0.1
    np.testing.assert_array_equal(ck.model.predict(split.test), m.predict(split.test))
    # the same seed gives the same run (ripple sets, weights, shuffles)
    again = train(ds, split, cfg, progress=False)
    assert [h["loss"] for h in again.history] == [h["loss"] for h in res.history]


def test_config_cli_and_published_settings():
    from kgcl_lib.train import TrainConfig
    from kgcl_lib.train.__main__ import config_from_args, parser

    assert "n_hop" not in TrainConfig().to_dict()  # KGCN's config dicts (and run hashes) unchanged
    rc = TrainConfig(backbone="ripplenet").to_dict()
    assert rc["n_hop"] == 2 and rc["item_update_mode"] == "plus_transform" and rc["backbone"] == "ripplenet"
    book = TrainConfig.for_dataset("book-crossing", backbone="ripplenet")
    assert (book.dim, book.n_hop, book.kge_weight, book.l2, book.lr, book.batch_size, book.epochs, book.n_memory) == \
        (4, 2, 1e-2, 1e-5, 1e-3, 1024, 10, 32)
    movie = TrainConfig.for_dataset("ml-100k", backbone="ripplenet", seed=3)
    assert (movie.dim, movie.l2, movie.lr, movie.seed) == (16, 1e-7, 2e-2, 3)
    args = parser().parse_args(["--dataset", "ml-100k", "--backbone", "ripplenet", "--n-hop", "3",
                                "--item-update-mode", "replace"])
    cfg = config_from_args(args)
    assert (cfg.backbone, cfg.n_hop, cfg.item_update_mode, cfg.dim) == ("ripplenet", 3, "replace", 16)
    with pytest.raises(ValueError, match="item_update_mode"):
        TrainConfig(item_update_mode="nonlinear")


def test_build_needs_the_training_rows():
    from kgcl_lib.model import build_backbone
    from kgcl_lib.train import TrainConfig

    ds, _ = synthetic()
    with pytest.raises(ValueError, match="training rows"):
        build_backbone("ripplenet", ds, TrainConfig(backbone="ripplenet"))


# ---------------------------------------------------------------------- CL moves embeddings the intended way
def _planted_alignment(planted, gamma, train_pairs=None) -> float:
    """As tests/unit/train/test_cl_direction.py for KGCN: ℓ_align of the trained positive pairs' content
    embeddings after training RippleNet with CL weight 1 − γ."""
    from kgcl_lib import metrics as M
    from kgcl_lib.train import TrainConfig, train

    ds, split, pairs = planted
    cfg = TrainConfig(dataset="planted", backbone="ripplenet", variant="cl_genre", gamma=gamma, epochs=15, dim=8,
                      n_memory=4, batch_size=16, lr=2e-2, l2=1e-5, device="cpu", restore_best=False)
    # restore_best=False: the labels are random, so the best valid epoch is an early one, before
    # CL has acted; the question is where training moves the embeddings
    res = train(ds, split, cfg, pairs=pairs if train_pairs is None else train_pairs, progress=False)
    with torch.no_grad():
        emb = res.model.content_embeddings().numpy()
    pos = pairs.positives[["anchor", "other"]].to_numpy()
    return M.alignment(emb[pos[:, 0]], emb[pos[:, 1]])


@pytest.fixture(scope="module")
def planted():
    from kgcl_lib.data import split_ratings
    from kgcl_lib.pairs import build_pairs
    from tests.unit.train.test_cl_direction import planted_dataset

    ds = planted_dataset()
    pairs = build_pairs(ds, "genre", n=3, sampler="kg", seed=0, cache=False, show_progress=False)
    return ds, split_ratings(ds.ratings, np.random.default_rng(0)), pairs


def test_cl_on_ripplenet_improves_alignment_of_trained_positive_pairs(planted):
    without_cl = _planted_alignment(planted, gamma=1.0)
    with_cl = _planted_alignment(planted, gamma=0.5)
    assert with_cl < 0.5 * without_cl, (with_cl, without_cl)


def test_cl_on_ripplenet_controls_do_not_improve_alignment(planted, monkeypatch):
    """The test above can fail: shuffled partners, or a sign-flipped CL loss, give no gain."""
    from kgcl_lib.train import loop

    ds, split, pairs = planted
    without_cl = _planted_alignment(planted, gamma=1.0)
    shuffled = pairs.table.copy()
    shuffled["other"] = np.random.default_rng(1).permutation(shuffled["other"].to_numpy())
    assert _planted_alignment(planted, gamma=0.5, train_pairs=shuffled) > 0.8 * without_cl
    monkeypatch.setattr(loop, "cl_bce_loss", lambda a, o, y: -loop.F.binary_cross_entropy_with_logits((a * o).sum(-1), y))
    assert _planted_alignment(planted, gamma=0.5) > without_cl


@pytest.mark.slow
def test_grid_run_with_ripplenet_is_evaluated_and_stored(tmp_path, kgcl_cache):
    """A grid cell of backbone ripplenet (text + CL) trains, is evaluated (top-K, diversity,
    alignment) and lands in the results store under its own run id and backbone column."""
    from kgcl_lib import experiments as X

    options = {"synthetic-small": {"shape": {"name": "small", "n_users": 60, "n_items": 150, "n_rows": 1500,
                                             "n_entities": 300, "n_relations": 4, "n_triples": 600}}}
    specs = X.grid_specs(["synthetic-small"], ["base", "cl_genre"], ["with"], [0],
                         overrides={"*": {"epochs": 2, "batch_size": 128}}, backbones=["ripplenet"])
    df = X.run_grid(specs, tmp_path, dataset_options=options, text_model="sentence-transformers/all-MiniLM-L6-v2",
                    pair_n=4, threads=1, progress=False)
    df = X.trained(df)
    assert set(df["backbone"]) == {"ripplenet"} and len(df) == 2
    assert df["ndcg@20"].notna().all() and df["test_auc"].between(0, 1).all()
