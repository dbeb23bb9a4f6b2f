"""KGCN model: hand-computed cases, a naive per-pair reference, gradients, scoring, losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgcl_lib.data import sample_neighbors
from kgcl_lib.model import KGCN, ModelConfig, cl_bce_loss, info_nce_loss

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- helpers
def tiny_kg(seed=0, n_users=5, n_items=6, n_entities=14, n_relations=3, n_triples=20, K=2):
    """A random tiny KG (with an isolated entity) and its neighbour table."""
    rng = np.random.default_rng(seed)
    kg = np.stack(
        [rng.integers(0, n_entities - 1, n_triples), rng.integers(0, n_relations, n_triples), rng.integers(0, n_entities - 1, n_triples)],
        1,
    )  # entity n_entities-1 never appears -> isolated, self-loop relation
    nt = sample_neighbors(kg, n_entities, n_relations, K, rng)
    return dict(n_users=n_users, n_entities=n_entities, n_relations=n_relations, n_items=n_items,
                adj_entity=torch.from_numpy(nt.entities), adj_relation=torch.from_numpy(nt.relations))


def make_model(dim=4, n_iter=2, K=2, aggregator="sum", text=False, reduce="mean", seed=0):
    sizes = tiny_kg(seed=seed, K=K)
    text_vectors = has_text = None
    text_dim = None
    if text:
        g = torch.Generator().manual_seed(seed + 1)
        text_dim = 7
        text_vectors = torch.randn(sizes["n_items"], text_dim, generator=g)
        has_text = torch.tensor([True, False, True, True, False, True])
        text_vectors[~has_text] = 0
    cfg = ModelConfig(dim=dim, n_iter=n_iter, n_neighbors=K, aggregator=aggregator, neighbor_reduce=reduce, text_dim=text_dim)
    m = KGCN(cfg, **sizes, text_vectors=text_vectors, has_text=has_text, generator=torch.Generator().manual_seed(seed))
    # Larger-than-Xavier weights so that the test exercises non-trivial values.
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)
        for b in m.agg_biases:
            b.uniform_(-0.3, 0.3, generator=torch.Generator().manual_seed(seed + 2))
    return m


def naive_logit(m: KGCN, u: int, v: int) -> torch.Tensor:
    """Independent per-pair KGCN: recursion over (entity, iteration), plain Python loops."""
    cfg = m.cfg
    d, K, L = cfg.dim, cfg.n_neighbors, cfg.n_iter
    uvec = m.user_emb[u]

    def initial(e):
        if m.text_vectors is not None and e < m.n_items and bool(m.text_entity[e]):
            return m.text_vectors[e] @ m.alpha_weight.t() + m.alpha_bias
        return m.entity_emb[e]

    def rep(e, it):
        if it == 0:
            return initial(e)
        self_v = rep(e, it - 1)
        nbrs = [rep(int(m.adj_entity[e, k]), it - 1) for k in range(K)]
        scores = torch.stack([(uvec * m.relation_emb[int(m.adj_relation[e, k])]).mean() for k in range(K)])
        w = torch.exp(scores - scores.max())
        w = w / w.sum()
        v_n = sum(w[k] * nbrs[k] for k in range(K))
        if cfg.neighbor_reduce == "mean":
            v_n = v_n / K
        W, b = m.agg_weights[it - 1], m.agg_biases[it - 1]
        if cfg.aggregator == "sum":
            out = W @ (self_v + v_n) + b
        elif cfg.aggregator == "concat":
            out = W @ torch.cat([self_v, v_n]) + b
        else:
            out = W @ v_n + b
        return torch.tanh(out) if it == L else torch.relu(out)

    return (uvec * rep(v, L)).sum()


# ----------------------------------------------------------------------------- hand-computed
def hand_model(aggregator):
    """d=2, K=2, L=1; item 0 has neighbours 1 (rel 0) and 2 (rel 1)."""
    adj_e = torch.tensor([[1, 2], [0, 0], [0, 0]])
    adj_r = torch.tensor([[0, 1], [0, 0], [1, 1]])
    cfg = ModelConfig(dim=2, n_iter=1, n_neighbors=2, aggregator=aggregator)
    m = KGCN(cfg, n_users=1, n_entities=3, n_relations=2, n_items=1, adj_entity=adj_e, adj_relation=adj_r)
    W = {"sum": [[1.0, 0], [0, 1]], "concat": [[1.0, 0, 0, 1], [0, 1, 1, 0]], "neighbor": [[0.0, 1], [1, 0]]}[aggregator]
    with torch.no_grad():
        m.user_emb.copy_(torch.tensor([[1.0, 0.0]]))
        m.relation_emb.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.0], [5.0, 5.0]]))
        m.entity_emb.copy_(torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 4.0]]))
        m.agg_weights[0].copy_(torch.tensor(W))
        m.agg_biases[0].zero_()
    return m


@pytest.mark.parametrize("aggregator", ["sum", "concat", "neighbor"])
def test_hand_computed_k2_l1(aggregator):
    m = hand_model(aggregator)
    # π = mean(u ⊙ r): rel 0 -> (1*2 + 0)/2 = 1, rel 1 -> 0; softmax -> e/(e+1), 1/(e+1)
    w0, w1 = math.e / (math.e + 1), 1 / (math.e + 1)
    # v_N = mean_k w_k e_k = (w0 [2,0] + w1 [0,4]) / 2 = [w0, 2 w1]; v = [1, 1]; logit = u·out = out[0]
    expected_rep = {
        "sum": [math.tanh(1 + w0), math.tanh(1 + 2 * w1)],
        "concat": [math.tanh(1 + 2 * w1), math.tanh(1 + w0)],
        "neighbor": [math.tanh(2 * w1), math.tanh(w0)],
    }[aggregator]
    rep = m.item_representations(torch.tensor([0]), torch.tensor([0]))
    assert torch.allclose(rep, torch.tensor([expected_rep]), atol=1e-6)
    logit = m(torch.tensor([0]), torch.tensor([0]))
    assert logit.item() == pytest.approx(expected_rep[0], abs=1e-6)


def test_sum_reduce_is_k_times_mean_neighbourhood():
    m = hand_model("neighbor")
    m2 = KGCN(ModelConfig(dim=2, n_iter=1, n_neighbors=2, aggregator="neighbor", neighbor_reduce="sum"),
              1, 3, 2, 1, m.adj_entity, m.adj_relation)
    m2.load_state_dict(m.state_dict())
    w0, w1 = math.e / (math.e + 1), 1 / (math.e + 1)
    assert m2(torch.tensor([0]), torch.tensor([0])).item() == pytest.approx(math.tanh(4 * w1), abs=1e-6)


# ----------------------------------------------------------------------------- naive loop
@pytest.mark.parametrize("aggregator", ["sum", "concat", "neighbor"])
@pytest.mark.parametrize("n_iter", [1, 2, 3])
@pytest.mark.parametrize("text", [False, True])
def test_batched_forward_equals_naive_loop(aggregator, n_iter, text):
    m = make_model(n_iter=n_iter, aggregator=aggregator, text=text, K=2 if n_iter == 3 else 3)
    users = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
    items = torch.tensor([0, 1, 2, 3, 4, 5, 5, 1])
    with torch.no_grad():
        batched = m(users, items)
        naive = torch.stack([naive_logit(m, int(u), int(v)) for u, v in zip(users, items)])
    assert batched.shape == (8,)
    assert torch.allclose(batched, naive, atol=1e-5), (batched, naive)


def test_isolated_entity_self_loop():
    m = make_model(n_iter=1)
    iso = m.n_entities - 1
    assert (m.adj_entity[iso] == iso).all() and (m.adj_relation[iso] == m.n_relations).all()
    assert m.relation_emb.shape[0] == m.n_relations + 1


# ----------------------------------------------------------------------------- shapes and gradients
def test_shapes_and_gradients_reach_used_rows_only():
    m = make_model(n_iter=2, aggregator="concat", text=True)
    users, items = torch.tensor([0, 3]), torch.tensor([1, 4])
    logits = m(users, items)
    assert logits.shape == (2,) and logits.dtype == torch.float32
    logits.sum().backward()
    assert m.user_emb.grad.shape == m.user_emb.shape
    touched_users = m.user_emb.grad.abs().sum(1) > 0
    assert touched_users.nonzero().view(-1).tolist() == [0, 3]
    field, _ = m.receptive_field(items)
    used = set(field.reshape(-1).tolist())
    touched = set((m.entity_emb.grad.abs().sum(1) > 0).nonzero().view(-1).tolist())
    # text items take their vector from MLP_α, so their entity row gets no gradient
    expected = {e for e in used if not (e < m.n_items and bool(m.text_entity[e]))}
    assert touched <= expected and len(touched) > 0
    for p in m.dense_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert m.alpha_weight.grad.abs().sum() > 0


def test_gradcheck_double():
    m = make_model(n_iter=2, aggregator="concat", text=True).double()
    users, items = torch.tensor([0, 2, 4]), torch.tensor([1, 2, 5])
    names = ["user_emb", "entity_emb", "relation_emb", "agg_weights.0", "alpha_weight"]
    params = dict(m.named_parameters())

    def fn(*tensors):
        state = {**params, **dict(zip(names, tensors))}
        return torch.func.functional_call(m, state, (users, items))

    inputs = tuple(params[n].detach().clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_plan_path_matches_dense_path_and_grads():
    """The trainer's row-sparse path (leaf copies of the used rows) equals forward()."""
    m = make_model(n_iter=2, aggregator="concat", text=True)
    users, items = torch.tensor([4, 1, 1, 0]), torch.tensor([2, 3, 0, 5])
    plan = m.plan(users, items, extra_items=torch.tensor([1, 4]))
    u_rows = m.user_emb.detach()[plan.user_ids].requires_grad_()
    e_rows = m.entity_emb.detach()[plan.plain_ids].requires_grad_()
    out = m.forward_plan(plan, u_rows, m.local_table(plan, e_rows))
    ref = m(users, items)
    assert torch.allclose(out, ref, atol=1e-6)
    out.sum().backward()
    ref.sum().backward()
    assert torch.allclose(u_rows.grad, m.user_emb.grad[plan.user_ids], atol=1e-6)
    assert torch.allclose(e_rows.grad, m.entity_emb.grad[plan.plain_ids], atol=1e-6)
    # the unique sets are exactly the rows used
    assert plan.user_ids.tolist() == [0, 1, 4]
    field, _ = m.receptive_field(items)
    used = set(field.reshape(-1).tolist()) | {1, 4}
    assert set(plan.text_ids.tolist()) | set(plan.plain_ids.tolist()) == used
    assert all(bool(m.text_entity[e]) for e in plan.text_ids.tolist())


# ----------------------------------------------------------------------------- content + losses
def test_content_embeddings():
    m = make_model(text=True)
    hc = m.content_embeddings()
    assert hc.shape == (m.n_items, m.cfg.dim)
    with torch.no_grad():
        for c in range(m.n_items):
            expected = m.text_vectors[c] @ m.alpha_weight.t() + m.alpha_bias if m.text_entity[c] else m.entity_emb[c]
            assert torch.allclose(hc[c], expected, atol=1e-6)
    m2 = make_model(text=False)
    assert torch.equal(m2.content_embeddings(torch.tensor([3, 1])), m2.entity_emb[[3, 1]])


def test_cl_bce_loss_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    o = torch.tensor([[2.0, 0.0], [1.0, -1.0]])
    label = torch.tensor([1, 0])
    # dots 2 (positive) and -1 (negative): -log σ(2) and -log(1 - σ(-1)) = log(1 + e^-2), log(1 + e^-1)
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))) / 2
    assert cl_bce_loss(a, o, label).item() == pytest.approx(expected, rel=1e-6)
    assert cl_bce_loss(a[:0], o[:0], label[:0]).item() == 0.0


def test_info_nce_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    t = 0.5
    # logits/t: row0 [1, 1]/t -> -log(e^2/(e^2+e^2)) = log 2; row1 [0, 1]/t -> -log(e^2/(1+e^2))
    expected = (math.log(2) + math.log1p(math.exp(-2))) / 2
    assert info_nce_loss(a, p, t).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(a, p, 0.0)


# ----------------------------------------------------------------------------- scoring
@pytest.mark.parametrize("aggregator", ["sum", "concat", "neighbor"])
@pytest.mark.parametrize("n_iter", [1, 2])
@pytest.mark.parametrize("text", [False, True])
def test_score_all_kgcn_equals_per_pair_forward(aggregator, n_iter, text):
    m = make_model(n_iter=n_iter, aggregator=aggregator, text=text, K=3)
    users = torch.tensor([4, 0, 2, 1, 3])
    scores = m.score_all(users, chunk=2)
    uu = users.repeat_interleave(m.n_items)
    ii = torch.arange(m.n_items).repeat(len(users))
    with torch.no_grad():
        ref = torch.sigmoid(m(uu, ii)).view(len(users), m.n_items)
    assert scores.shape == (5, m.n_items)
    assert torch.allclose(scores, ref, atol=1e-5)


def test_score_all_dot_mode():
    m = make_model(text=True)
    users = torch.tensor([1, 3])
    with torch.no_grad():
        ref = torch.sigmoid(m.user_emb[users] @ m.content_embeddings().t())
    assert torch.allclose(m.score_all(users, mode="dot"), ref, atol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        m.score_all(users, mode="bogus")


@pytest.mark.parametrize("mode", ["kgcn", "dot"])
def test_topk_masks_excluded_and_matches_argsort(mode):
    m = make_model(n_iter=2, K=3)
    users = np.array([0, 2, 3, 4])
    excl = sp.csr_matrix((np.ones(4), ([0, 0, 3, 4], [1, 2, 0, 5])), shape=(m.n_users, m.n_items))
    got = m.topk(users, 3, exclude=excl, mode=mode, chunk=3)
    scores = m.score_all(torch.from_numpy(users), mode=mode).numpy()
    dense = excl.toarray()[users].astype(bool)
    scores[dense] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    assert got.shape == (4, 3) and got.dtype == torch.int64
    np.testing.assert_array_equal(np.sort(scores, axis=1)[:, ::-1][:, :3], np.take_along_axis(scores, got.numpy(), 1))
    assert not dense[np.arange(4)[:, None], got.numpy()].any()
    assert set(map(tuple, np.sort(got.numpy(), 1))) == set(map(tuple, np.sort(expected, 1)))


# ----------------------------------------------------------------------------- bad config
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(aggregator="max"), "aggregator"),
        (dict(n_neighbors=0), "n_neighbors"),
        (dict(n_iter=0), "n_iter"),
        (dict(neighbor_reduce="median"), "neighbor_reduce"),
        (dict(dim=0), "dim"),
    ],
)
def test_bad_model_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


def test_bad_tables_raise():
    sizes = tiny_kg(K=2)
    with pytest.raises(ValueError, match="neighbour tables"):
        KGCN(ModelConfig(n_neighbors=3), **sizes)
    with pytest.raises(ValueError, match="text_vectors"):
        KGCN(ModelConfig(n_neighbors=2, text_dim=5), **sizes)
    bad = dict(sizes, adj_entity=sizes["adj_entity"].clone())
    bad["adj_entity"][0, 0] = 999
    with pytest.raises(ValueError, match="adj_entity"):
        KGCN(ModelConfig(n_neighbors=2), **bad)


# ----------------------------------------------------------------------------- C++ kernels
def _need_kernels():
    from kgcl_lib.model import kernels

    if kernels.cpp_kernels() is None:
        pytest.skip("no C++ toolchain for torch.utils.cpp_extension (pure-torch paths are tested)")
    return kernels


def test_pure_weighted_bag_backward_equals_autograd():
    """The pure-torch bag (CUDA / no-compiler path) equals autograd through an explicit gather."""
    from kgcl_lib.model.fast import _WeightedBag

    g = torch.Generator().manual_seed(0)
    table = torch.randn(50, 8, generator=g, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(0, 50, (300, 4), generator=g)
    w = torch.rand(300, 4, generator=g, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(300, 8, generator=g, dtype=torch.float64)
    _WeightedBag.apply(table, idx, w).backward(grad)
    ref_t = table.detach().clone().requires_grad_()
    ref_w = w.detach().clone().requires_grad_()
    (ref_w.unsqueeze(2) * ref_t[idx]).sum(1).backward(grad)
    assert torch.allclose(table.grad, ref_t.grad, atol=1e-12)
    assert torch.allclose(w.grad, ref_w.grad, atol=1e-12)


def test_kernel_gradcheck_double():
    """Each compiled kernel's hand-written backward against finite differences (float64)."""
    K_ = _need_kernels()
    g = torch.Generator().manual_seed(3)
    B, K, S, n, d, R = 3, 2, 3, 6, 4, 5  # S = 1 + K nodes aggregate (L = 2 heap layout)
    field = torch.randint(0, n, (B, 1 + S * K), generator=g)
    field[0, 1:3] = field[0, 0]  # repeated rows inside one row's field
    rel = torch.randint(0, R, (B, S * K), generator=g)
    rel[1, :2] = 2  # one node whose K edges share a relation
    ur = torch.randn(B, R, generator=g, dtype=torch.float64, requires_grad=True)
    for scale in (0.5, 1.0):
        assert torch.autograd.gradcheck(lambda x: K_.EdgeSoftmax.apply(x, rel, K, scale), (ur,))
    w = torch.rand(B, S * K, generator=g, dtype=torch.float64, requires_grad=True)
    ts = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    tn = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(d, generator=g, dtype=torch.float64, requires_grad=True)
    for act in (K_.ACT_NONE, K_.ACT_RELU, K_.ACT_TANH):
        for s_tab, shared in ((ts, False), (None, False), (None, True)):
            for b_ in (bias, None):
                for S_ in (1, S):
                    args = [x for x in (s_tab, tn, w, b_) if x is not None]

                    def fn(*xs, s_tab=s_tab, b_=b_, S_=S_, act=act, shared=shared):
                        it = iter(xs)
                        st = next(it) if s_tab is not None else None
                        tn_, w_ = next(it), next(it)
                        bb = next(it) if b_ is not None else None
                        return K_.TreeBag.apply(st, tn_, field, w_, bb, S_, K, act, shared)

                    assert torch.autograd.gradcheck(fn, tuple(args)), (act, s_tab is not None, shared, b_ is not None, S_)
    h = torch.randn(B, 1 + S * K, d, generator=g, dtype=torch.float64, requires_grad=True)
    for S_ in (1, S):  # S_ = S: nodes 1..S-1 are both aggregating and aggregated
        for mode in (K_.NODE_NBR, K_.NODE_SUM, K_.NODE_CONCAT):
            assert torch.autograd.gradcheck(lambda hh, ww: K_.NodeBag.apply(hh, ww, S_, K, mode), (h, w)), (S_, mode)


def test_tree_bag_forward_hand_computed():
    K_ = _need_kernels()
    field = torch.tensor([[0, 1, 2]])  # one row, node 0 with children 1, 2 (K = 2, S = 1)
    tab = torch.tensor([[1.0, -1.0], [2.0, 0.0], [0.0, 4.0]])
    w = torch.tensor([[0.25, 0.75]])
    bias = torch.tensor([0.5, -10.0])
    # sum: relu(b + T[0] + .25 T[1] + .75 T[2]) = relu([0.5+1+0.5+0, -10-1+0+3]) = [2, 0]
    out = K_.TreeBag.apply(None, tab, field, w, bias, 1, 2, K_.ACT_RELU, True)
    assert out.tolist() == [[[2.0, 0.0]]]


@pytest.mark.parametrize("aggregator", ["sum", "concat"])
def test_fused_kernels_multithreaded_equal_single_thread(aggregator):
    """The kernels' several-thread code (two-pass scatter with owned table rows, per-thread bias
    sums) gives the single-thread result on a batch large enough to be split."""
    _need_kernels()
    m = make_model(n_iter=2, aggregator=aggregator, K=3)
    g = torch.Generator().manual_seed(7)
    users, items = torch.randint(0, 5, (600,), generator=g), torch.randint(0, 6, (600,), generator=g)
    res = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for factor in (True, False):
                m.factor_linear = factor
                m.zero_grad()
                out = m(users, items)
                (out * torch.linspace(-1, 1, len(out))).sum().backward()
                res.append((threads, factor, out.detach(), [p.grad.clone() for p in m.parameters() if p.grad is not None]))
    finally:
        torch.set_num_threads(before)
    one = {f: (o, gr) for t, f, o, gr in res if t == 1}
    for t, f, o, gr in res:
        assert torch.allclose(o, one[f][0], atol=1e-5)
        for a, b in zip(gr, one[f][1]):
            assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("aggregator", ["sum", "concat", "neighbor"])
@pytest.mark.parametrize("n_iter", [1, 2, 3])
@pytest.mark.parametrize("factor", [True, False])
@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_fused_kernels_equal_pure_torch(aggregator, n_iter, factor, reduce):
    """Logits and every parameter gradient: compiled path == pure-torch path."""
    _need_kernels()
    m = make_model(n_iter=n_iter, aggregator=aggregator, text=True, K=3, reduce=reduce)
    m.factor_linear = factor
    users = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4, 1])
    items = torch.tensor([0, 1, 2, 3, 4, 5, 5, 1, 1])
    res = {}
    for fused in (True, False):
        m.use_kernels = fused
        m.zero_grad()
        out = m(users, items)
        (out * torch.linspace(-1, 1, len(out))).sum().backward()
        res[fused] = (out.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None})
    assert torch.allclose(res[True][0], res[False][0], atol=1e-5)
    assert res[True][1].keys() == res[False][1].keys()
    for k in res[True][1]:
        assert torch.allclose(res[True][1][k], res[False][1][k], atol=1e-5), k


@pytest.mark.parametrize("aggregator", ["sum", "concat", "neighbor"])
@pytest.mark.parametrize("factor", [True, False])
def test_factored_first_iteration_equals_naive(aggregator, factor):
    """Both ways of applying the first aggregator (W before / after the neighbour sum)."""
    m = make_model(n_iter=2, aggregator=aggregator, text=True, K=3)
    m.factor_linear = factor
    users = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
    items = torch.tensor([0, 1, 2, 3, 4, 5, 5, 1])
    batched = m(users, items)
    with torch.no_grad():
        naive = torch.stack([naive_logit(m, int(u), int(v)) for u, v in zip(users, items)])
    assert torch.allclose(batched, naive, atol=1e-5)
    batched.sum().backward()  # gradients flow through both paths
    assert m.entity_emb.grad.abs().sum() > 0 and m.agg_weights[0].grad.abs().sum() > 0


# ----------------------------------------------------------------------------- CUDA (GPU machines only)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (run on a GPU machine)")
@pytest.mark.parametrize("aggregator", ["sum", "concat", "neighbor"])
def test_cuda_forward_backward_and_scores_match_cpu(aggregator):
    """The CUDA path (pure torch) equals the CPU path: logits, gradients, full-catalogue scores;
    CPU index tensors are accepted by a CUDA model."""
    import copy

    m = make_model(n_iter=2, aggregator=aggregator, text=True, K=3)
    mc = copy.deepcopy(m).cuda()
    users = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4, 1])
    items = torch.tensor([0, 1, 2, 3, 4, 5, 5, 1, 1])
    for model in (m, mc):
        model.zero_grad()
        out = model(users, items)
        (out * torch.linspace(-1, 1, len(out), device=out.device)).sum().backward()
    assert torch.allclose(mc(users, items).detach().cpu(), m(users, items).detach(), atol=1e-5)
    for (name, p), (_, pc) in zip(m.named_parameters(), mc.named_parameters()):
        if p.grad is not None:
            assert torch.allclose(pc.grad.cpu(), p.grad, atol=1e-5), name
    assert torch.allclose(mc.score_all(torch.arange(5)).cpu(), m.score_all(torch.arange(5)), atol=1e-5)
