"""The one reference propagation (``model.reference_item_representations``) and the fast paths
tested against it: the pure-torch forward, the compiled forward, and ``kgcl_lib.model.scoring``'s
full-catalogue scores and top-K."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgcl_lib.model import kernels
from kgcl_lib.model import reference_item_representations
from tests.unit.model.test_model import hand_model, make_model, naive_logit

torch.set_num_threads(1)

USERS = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4, 1])
ITEMS = torch.tensor([0, 1, 2, 3, 4, 5, 5, 1, 1])
CASES = [(agg, L, reduce) for agg in ("sum", "concat", "neighbor") for L in (1, 2, 3) for reduce in ("mean", "sum")]


def _reference_logits(m, users, items):
    return (m.user_emb[users] * reference_item_representations(m, users, items)).sum(-1)


def _grads(m, fn):
    """``(output, {parameter: gradient})`` of ``Σ_b c_b out_b`` with fixed, distinct weights ``c``."""
    m.zero_grad()
    out = fn()
    (out * torch.linspace(-1, 1, len(out), device=out.device)).sum().backward()
    return out.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}


# ----------------------------------------------------------------------------- the reference itself
@pytest.mark.parametrize("aggregator", ["sum", "concat", "neighbor"])
def test_reference_hand_computed(aggregator):
    """d=2, K=2, L=1; π = mean(u ⊙ r): rel 0 -> 1, rel 1 -> 0, so w = (e, 1)/(e + 1);
    v_N = (w0 [2, 0] + w1 [0, 4]) / 2 = [w0, 2 w1], v = [1, 1]."""
    m = hand_model(aggregator)
    w0, w1 = math.e / (math.e + 1), 1 / (math.e + 1)
    expected = {"sum": [1 + w0, 1 + 2 * w1], "concat": [1 + 2 * w1, 1 + w0], "neighbor": [2 * w1, w0]}[aggregator]
    got = reference_item_representations(m, torch.tensor([0]), torch.tensor([0]))
    torch.testing.assert_close(got, torch.tanh(torch.tensor([expected])))


@pytest.mark.parametrize("aggregator, n_iter, reduce", CASES)
@pytest.mark.parametrize("text", [False, True])
def test_reference_equals_per_pair_recursion(aggregator, n_iter, reduce, text):
    """The batched reference equals an independent per-pair recursion (plain Python loops)."""
    m = make_model(n_iter=n_iter, aggregator=aggregator, text=text, K=2 if n_iter == 3 else 3, reduce=reduce)
    with torch.no_grad():
        ref = _reference_logits(m, USERS, ITEMS)
        naive = torch.stack([naive_logit(m, int(u), int(v)) for u, v in zip(USERS, ITEMS)])
    torch.testing.assert_close(ref, naive, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- training forward
@pytest.mark.parametrize("aggregator, n_iter, reduce", CASES)
@pytest.mark.parametrize("compiled, factor", [(False, True), (False, False), (True, True), (True, False)])
def test_forward_fast_paths_equal_reference(aggregator, n_iter, reduce, compiled, factor):
    """Logits and every parameter's gradient: forward (pure torch / compiled; W before or after
    the neighbour sum) == the reference."""
    if compiled and kernels.cpp_kernels() is None:
        pytest.skip("compiled kernels unavailable")
    m = make_model(n_iter=n_iter, aggregator=aggregator, text=True, K=2 if n_iter == 3 else 3, reduce=reduce)
    m.use_kernels, m.factor_linear = compiled, factor
    fast, g_fast = _grads(m, lambda: m(USERS, ITEMS))
    ref, g_ref = _grads(m, lambda: _reference_logits(m, USERS, ITEMS))
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    assert g_fast.keys() == g_ref.keys()
    for k in g_ref:
        torch.testing.assert_close(g_fast[k], g_ref[k], atol=1e-5, rtol=1e-4, msg=k)


# ----------------------------------------------------------------------------- full catalogue
@pytest.mark.parametrize("aggregator, n_iter, reduce", [c for c in CASES if c[1] < 3])
@pytest.mark.parametrize("text", [False, True])
def test_score_all_equals_reference(aggregator, n_iter, reduce, text):
    m = make_model(n_iter=n_iter, aggregator=aggregator, text=text, K=3, reduce=reduce)
    users = torch.tensor([4, 0, 2, 1, 3])
    uu = users.repeat_interleave(m.n_items)
    ii = torch.arange(m.n_items).repeat(len(users))
    with torch.no_grad():
        ref = torch.sigmoid(_reference_logits(m, uu, ii)).view(len(users), m.n_items)
    torch.testing.assert_close(m.score_all(users, chunk=2), ref, atol=1e-5, rtol=1e-5)


def test_score_all_survives_a_wide_attention_spread():
    """π spread > 69 for a user: exp underflows, so the L = 1 path falls back to an exact softmax."""
    m = make_model(n_iter=1, aggregator="concat", K=3)
    with torch.no_grad():
        m.relation_emb.mul_(400.0)
        users = torch.arange(5)
        uu = users.repeat_interleave(m.n_items)
        ii = torch.arange(m.n_items).repeat(5)
        ref = torch.sigmoid(_reference_logits(m, uu, ii)).view(5, m.n_items)
    torch.testing.assert_close(m.score_all(users), ref, atol=1e-5, rtol=1e-5)


def test_topk_ranks_reference_scores_with_exclusions():
    m = make_model(n_iter=2, aggregator="concat", K=3)
    users = np.array([0, 2, 3, 4])
    excl = sp.csr_matrix((np.ones(4), ([0, 0, 3, 4], [1, 2, 0, 5])), shape=(m.n_users, m.n_items))
    uu = torch.from_numpy(users).repeat_interleave(m.n_items)
    ii = torch.arange(m.n_items).repeat(len(users))
    with torch.no_grad():
        ref = _reference_logits(m, uu, ii).view(len(users), m.n_items).numpy()
    ref[excl.toarray()[users].astype(bool)] = -np.inf
    got = m.topk(users, 3, exclude=excl, chunk=3).numpy()
    np.testing.assert_array_equal(got, np.argsort(-ref, axis=1, kind="stable")[:, :3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (run on a GPU machine)")
def test_cuda_fast_paths_equal_reference():
    m = make_model(n_iter=2, aggregator="concat", text=True, K=3).cuda()
    fast, g_fast = _grads(m, lambda: m(USERS, ITEMS))
    ref, g_ref = _grads(m, lambda: _reference_logits(m, USERS.cuda(), ITEMS.cuda()))
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    for k in g_ref:
        torch.testing.assert_close(g_fast[k], g_ref[k], atol=1e-5, rtol=1e-4, msg=k)
    users = torch.arange(5)
    with torch.no_grad():
        full = torch.sigmoid(_reference_logits(m, users.repeat_interleave(6).cuda(), torch.arange(6).repeat(5).cuda()))
    torch.testing.assert_close(m.score_all(users), full.view(5, 6), atol=1e-5, rtol=1e-5)
