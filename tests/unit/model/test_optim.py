"""Whole-table L2 with lazy idle steps (kgcl_lib.model.TableAdam) against dense torch Adam."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgcl_lib.model.kernels import cpp_kernels
from kgcl_lib.model import TableAdam

torch.set_num_threads(1)

N_USERS, N_ENTITIES, N_RELATIONS, D = 50, 300, 6, 8
STEPS = 300
LAM = 0.05  # large enough that the idle rows' L2 steps move them visibly within the run


def _use_cpp_params():
    """Pure torch always; the compiled row kernels when they build here."""
    return [False, pytest.param(True, marks=pytest.mark.skipif(cpp_kernels() is None, reason="no compiled kernels"))]


def _batches(steps: int, seed: int = 1):
    """Per step: unique user ids, unique entity ids (as many), relation ids, targets.

    Pinned rows give every idle stretch: user 0 every step (Δ = 0), user 1 every other step
    (Δ = 1), entity 0 at steps 1 and 280 (Δ = 278 > 256), entities ≥ 290 never (Δ = 300);
    the rest at random (stretches of a few to a few hundred steps).
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in range(1, steps + 1):
        users = torch.randperm(N_USERS - 2, generator=g)[:4] + 2
        users = torch.cat([torch.tensor([0]), users, torch.tensor([1]) if t % 2 else torch.tensor([], dtype=torch.int64)])
        n = len(users)
        ents = torch.randperm(289, generator=g)[:n] + 1
        if t in (1, 280):
            ents[0] = 0
        rels = torch.randint(0, N_RELATIONS, (n,), generator=g)
        y = torch.randint(0, 2, (n,), generator=g).float()
        out.append((users, ents, rels, y))
    return out


def _base_loss(u, e, r, W, y):
    """A KGCN-like loss on gathered rows: BCE of ((u W + r) · e)."""
    logits = ((u @ W + r) * e).sum(-1)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum")


def _init(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, D, generator=g) * 0.5 for n in (N_USERS, N_ENTITIES, N_RELATIONS, D)]


def _dense_reference(batches, lr):
    """Dense ``torch.optim.Adam`` (single-tensor) on the explicit whole-table loss
    ``L_base + λ·(½‖U‖² + ½‖E‖² + ½‖R‖² + ½‖W‖²)``."""
    U, E, R, W = (x.clone().requires_grad_() for x in _init())
    opt = torch.optim.Adam([U, E, R, W], lr=lr, foreach=False)
    for users, ents, rels, y in batches:
        opt.zero_grad()
        loss = _base_loss(U[users], E[ents], R[rels], W, y)
        loss = loss + LAM * 0.5 * ((U**2).sum() + (E**2).sum() + (R**2).sum() + (W**2).sum())
        loss.backward()
        opt.step()
    return [x.detach() for x in (U, E, R, W)]


def _lazy(batches, lr, use_cpp, flush_every=None):
    """The trainer's split: TableAdam (whole-table λ, lazy idle steps) for U and E, torch Adam
    with λ through autograd for the relation table R and the weights W."""
    U, E, R, W = _init()
    R, W = R.requires_grad_(), W.requires_grad_()
    rows = TableAdam({"user_emb": U, "entity_emb": E}, lr=lr, table_l2=LAM)
    rows.use_cpp = use_cpp
    dense = torch.optim.Adam([R, W], lr=lr, foreach=False)
    for t, (users, ents, rels, y) in enumerate(batches, 1):
        rows.tick()
        u = rows.begin("user_emb", users)
        e = rows.begin("entity_emb", ents)
        loss = _base_loss(u, e, R[rels], W, y) + LAM * 0.5 * ((R**2).sum() + (W**2).sum())
        dense.zero_grad()
        loss.backward()
        dense.step()
        rows.finish("user_emb", users, u, u.grad)
        rows.finish("entity_emb", ents, e, e.grad)
        if flush_every and t % flush_every == 0:
            rows.flush()  # as at an epoch end: must not change the outcome
    rows.flush()
    return [U, E, R.detach(), W.detach()]


def _assert_close(got, ref, name):
    err = (got - ref).abs()
    ok = err <= torch.maximum(1e-5 * ref.abs(), torch.full_like(ref, 1e-7))
    assert bool(ok.all()), (name, float(err.max()), float((err / ref.abs().clamp(min=1e-30)).max()))


@pytest.mark.parametrize("use_cpp", _use_cpp_params())
@pytest.mark.parametrize("flush_every", [None, 45])
def test_lazy_whole_table_l2_equals_dense_torch_adam(use_cpp, flush_every):
    """≥ 200 steps of random sparse batches, idle stretches 1 .. > 256: every table and the
    weights agree with dense torch Adam on the explicit whole-table loss (rel 1e-5, abs 1e-7)."""
    batches = _batches(STEPS)
    ref = _dense_reference(batches, lr=0.01)
    got = _lazy(batches, lr=0.01, use_cpp=use_cpp, flush_every=flush_every)
    init = _init()
    for name, a, b, x0 in zip(("users", "entities", "relations", "weights"), got, ref, init):
        _assert_close(a, b, name)
        assert (b - x0).abs().max() > 0.1, name  # everything really moved
    # the never-used entities moved under L2 alone (towards 0)
    assert float(ref[1][290:].norm()) < 0.9 * float(init[1][290:].norm())


def _recurrence_f64(p0: np.ndarray, steps: int, lam: float, lr: float, b1=0.9, b2=0.999, eps=1e-8) -> np.ndarray:
    """Dense Adam on ``λ·½‖p‖²`` alone, element-wise in float64 (an independent implementation)."""
    p, m, v = p0.astype(np.float64), np.zeros(p0.shape), np.zeros(p0.shape)
    for s in range(1, steps + 1):
        g = lam * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1**s) * m / (np.sqrt(v) / np.sqrt(1 - b2**s) + eps)
    return p


@pytest.mark.parametrize("use_cpp", _use_cpp_params())
def test_idle_rows_decay_under_whole_table_l2(use_cpp):
    """Rows no batch touches follow dense Adam's L2-only recurrence (fails if the idle rows'
    decay is skipped: those rows would keep their initial values)."""
    p0 = torch.randn(20, 16, generator=torch.Generator().manual_seed(3))
    P = p0.clone()
    opt = TableAdam({"x": P}, lr=0.01, table_l2=0.1)
    opt.use_cpp = use_cpp
    g = torch.Generator().manual_seed(4)
    for t in range(1, 401):
        opt.tick()
        ids = torch.tensor([0, 1]) if t % 3 else torch.tensor([1])  # rows 2.. stay idle throughout
        rows = opt.begin("x", ids)
        opt.finish("x", ids, rows, torch.randn(rows.shape, generator=g))
    opt.flush()
    want = _recurrence_f64(p0[2:].numpy(), 400, 0.1, 0.01)
    assert np.abs(want - p0[2:].numpy()).max() > 1.0  # the recurrence moves them a lot in 400 steps
    np.testing.assert_allclose(P[2:].numpy(), want, rtol=1e-4, atol=1e-6)


def test_lazy_adam_rejects_whole_table_l2():
    with pytest.raises(ValueError, match="lazy"):
        TableAdam({"x": torch.zeros(3, 2)}, lr=0.1, mode="lazy", table_l2=1e-3)


@pytest.mark.parametrize("use_cpp", _use_cpp_params())
@pytest.mark.parametrize("dim", [5, 16, 40, 64, 136])
def test_idle_iteration_any_width_equals_dense_torch_adam(use_cpp, dim):
    """Many rows, each last touched at a different step, then a long idle stretch: the row kernels
    advance chunks of several rows together (grouped by their last step, masked tails for widths
    that are not a multiple of the vector length).  Fixed batch gradients keep the trajectory free
    of feedback, so any rounding slip in the idle iteration shows as it is, against dense
    ``torch.optim.Adam`` with the explicit gradient ``λ·P`` everywhere (rel 1e-5 / abs 1e-7)."""
    n_rows, steps, lam, lr = 53, 420, 0.02, 0.003
    g = torch.Generator().manual_seed(dim)
    p0 = torch.randn(n_rows, dim, generator=g) * 0.3
    touches = []  # per step: (ids, grad rows); row r is touched until step 5 + 7r (then idle)
    for t in range(1, steps + 1):
        ids = torch.tensor([r for r in range(n_rows) if t <= 5 + 7 * r and (t + r) % 3 == 0], dtype=torch.int64)
        touches.append((ids, torch.randn(len(ids), dim, generator=g)))
    ref = p0.clone().requires_grad_()
    dense = torch.optim.Adam([ref], lr=lr, foreach=False)
    for ids, grad in touches:
        dense.zero_grad()
        full = lam * ref.detach().clone()
        full.index_add_(0, ids, grad)
        ref.grad = full
        dense.step()
    P = p0.clone()
    opt = TableAdam({"x": P}, lr=lr, table_l2=lam)
    opt.use_cpp = use_cpp
    for t, (ids, grad) in enumerate(touches, 1):
        opt.tick()
        rows = opt.begin("x", ids)
        opt.finish("x", ids, rows, grad)
        if t == 300:
            opt.flush()  # an epoch end in the middle of the idle stretches
    opt.flush()
    _assert_close(P, ref.detach(), f"dim {dim}")
    assert float((ref.detach() - p0).abs().min()) > 0  # every element moved


@pytest.mark.skipif(cpp_kernels() is None, reason="no compiled kernels")
def test_idle_iteration_same_bits_on_any_thread_count():
    """The row kernels cut the rows into per-thread ranges of equal idle work; each element's
    arithmetic does not depend on which range or vector group it lands in, so 1, 2 and 3 threads
    give the same bits."""
    g = torch.Generator().manual_seed(7)
    p0 = torch.randn(301, 40, generator=g)
    last = torch.randint(0, 250, (301,), generator=g)
    out = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        try:
            P = p0.clone()
            opt = TableAdam({"x": P}, lr=0.01, table_l2=0.05)
            opt.state["x"]["mv"].normal_(0, 1e-3, generator=torch.Generator().manual_seed(8))
            opt.state["x"]["mv"][:, 1].abs_()
            opt.state["x"]["last"].copy_(last)
            opt.t = 260
            opt.flush()
            out.append((P.clone(), opt.state["x"]["mv"].clone()))
        finally:
            torch.set_num_threads(1)
    for p, mv in out[1:]:
        assert torch.equal(p, out[0][0]) and torch.equal(mv, out[0][1])
    assert not torch.equal(out[0][0], p0)


@pytest.mark.parametrize("use_cpp", [True, False])
def test_unread_rows_flush_later_in_pieces_same_bits(use_cpp):
    """Rows outside ``live`` wait for ``flush(unread=True)``; advancing them in pieces to an
    earlier target and then on to the end gives the bits of flushing them every step."""
    from kgcl_lib.model import TableAdam

    g = torch.Generator().manual_seed(3)
    n, d = 40, 24
    p0 = torch.randn(n, d, generator=g)
    live = torch.zeros(n, dtype=torch.bool)
    live[::3] = True
    runs = {}
    for how in ("every step", "pieces"):
        p = p0.clone()
        opt = TableAdam({"t": p}, lr=0.05, table_l2=0.3)
        opt.use_cpp = use_cpp
        if how == "pieces":
            opt.live["t"] = live
        for step in range(1, 61):
            opt.tick()
            ids = live.nonzero().view(-1)[step % 2 :: 2]  # live rows only, idle every other step
            rows = opt.begin("t", ids)
            opt.finish("t", ids, rows, torch.randn(rows.shape, generator=torch.Generator().manual_seed(step)))
            if how == "every step":
                opt.flush()
            elif step == 25:
                opt.flush()
                assert torch.equal(p[~live], p0[~live])  # unread rows wait
                opt.flush(target=17, unread=True)
                opt.flush(target=17, unread=True)  # idempotent
                with pytest.raises(ValueError, match="past step 9"):
                    opt.flush(target=9, unread=True)
        opt.flush()
        opt.flush(unread=True)
        runs[how] = p
    assert not torch.equal(runs["pieces"][~live], p0[~live])
    assert torch.equal(runs["pieces"], runs["every step"])
