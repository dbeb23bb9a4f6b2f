"""Full-catalogue KGCN scores of a trained :class:`~kgcl_lib.model.kgcn.KGCN` (torch, no I/O).

:func:`kgcn_score_chunks` computes the exact KGCN score of every (user, item) pair without
repeating each user over every item: the attention weights come from a ``[users, R']`` table, the
first-iteration linear maps are applied once per entity (``W·agg(v, v_N) = W_self v + Σ_k w_k
W_nbr e_k`` because the neighbour sum is linear; ``(W_self, W_nbr) = aggregator.split(W)``), and
every entity's deeper representation is computed once per user, not once per (user, item).  It
equals :meth:`KGCN.forward` and :func:`~kgcl_lib.model.kgcn.reference_item_representations` up to
float rounding (tested at 1e-5).  ``KGCN.score_all`` / ``KGCN.topk``
(:class:`~kgcl_lib.model.backbone.Backbone`) rank its chunks.  Notation as in
:mod:`kgcl_lib.model.kgcn`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from tqdm.auto import tqdm

if TYPE_CHECKING:  # annotations only: the model imports this module
    from .kgcn import KGCN


@torch.no_grad()
def _field_sets(model: KGCN) -> list[Tensor]:
    """``need[i]``: sorted global ids of entities whose representation after ``i`` iterations is
    needed to score every item (``need[L]`` = all items)."""
    L = model.cfg.n_iter
    need = [None] * (L + 1)
    need[L] = torch.arange(model.n_items, device=model.adj_entity.device)
    for i in range(L - 1, -1, -1):
        nxt = need[i + 1]
        need[i] = torch.unique(torch.cat([nxt, model.adj_entity.index_select(0, nxt).reshape(-1)]))
    return need


@torch.no_grad()
def kgcn_score_chunks(model: KGCN, users: Tensor, chunk: int = 32, progress: bool = False, item_block: int = 128):
    """Yield ``(start, float32[c, n_items])`` exact KGCN scores per chunk of ``c`` users.

    Iteration ``i`` produces the representation after ``i + 1`` iterations of every entity in
    ``need[i + 1]`` (see :func:`_field_sets`) from those of ``need[i]``; an entity's
    representation for a user does not depend on the hop it is reached from, so each is computed
    once per user.  The linear maps are applied before the neighbour sum (``W_b Σ_k w_k e_k =
    Σ_k w_k W_b e_k``), once per entity for the user-independent first iteration
    (:func:`_catalogue_plan`).  The last iteration runs in tiles of ``item_block`` items so that
    its ``[tile, c, d]`` pre-activations stay in cache while tanh and the dot product with ``u``
    consume them.
    """
    plan = _catalogue_plan(model)
    d = model.cfg.dim
    R = model.relation_emb.detach()
    U = model.user_emb.detach()
    it = range(0, len(users), chunk)
    if progress:
        it = tqdm(it, desc="score_all(kgcn)", unit="chunk")
    for s in it:
        u = U.index_select(0, users[s : s + chunk])  # [c, d]
        ur = (u @ R.t()) / d  # [c, R']  π(u, r) for every relation
        if model.cfg.n_iter == 1:
            logits = _one_iteration_logits(plan, u, ur, item_block)
        else:
            logits = _deep_logits(plan, u, ur, item_block)
        yield s, torch.sigmoid_(logits)


@dataclass(frozen=True, eq=False)
class _CataloguePlan:
    """The user-independent part of :func:`_iter_kgcn_scores`, for a model with ``L`` iterations.

    ``steps[i]``: ``(self_pos int64[n], nbr_pos int64[n, K], rel int64[n, K])`` of the nodes
    ``need[i + 1]``: their own and their neighbours' positions in ``need[i]`` and the edges'
    relations.  ``split[i]``: iteration ``i``'s weight as ``(W_a or None, W_b)`` (self and
    neighbour parts).  ``base0 [n1, d]`` = ``h0 W_a0ᵀ + b0`` and ``q0 [n1, K, d]`` = the
    neighbours' ``h0 W_b0ᵀ`` (times ``1/K`` for the mean reduce) per node of ``need[1]``.
    """

    K: int
    d: int
    n_items: int
    steps: list
    split: list
    biases: list
    scale: float
    base0: Tensor
    q0: Tensor


@torch.no_grad()
def _catalogue_plan(model: KGCN) -> _CataloguePlan:
    """Positions, split weights and the first iteration's projections (see :class:`_CataloguePlan`)."""
    cfg = model.cfg
    d, K, L = cfg.dim, cfg.n_neighbors, cfg.n_iter
    dev = model.adj_entity.device
    need = _field_sets(model)
    # For each iteration i: node set need[i+1], its self/neighbour positions in need[i].
    steps = []
    for i in range(L):
        pos = torch.full((model.n_entities,), -1, dtype=torch.int64, device=dev)
        pos[need[i]] = torch.arange(len(need[i]), device=dev)
        nodes = need[i + 1]
        steps.append((pos[nodes], pos[model.adj_entity.index_select(0, nodes)], model.adj_relation.index_select(0, nodes)))
    h0 = model.initial_embeddings().detach().index_select(0, need[0])  # [n0, d], user-independent
    # Split each iteration's W into the self part W_a and neighbour part W_b.
    split = [model.aggregator.split(W.detach()) for W in model.agg_weights]
    biases = [b.detach() for b in model.agg_biases]
    scale = 1.0 / K if cfg.neighbor_reduce == "mean" else 1.0
    # First iteration's projections once per entity: P_self = h0 W_a^T + b, P_nbr = h0 W_b^T,
    # laid out per node of need[1] as base [n1, d] and q [n1, K, d].
    Wa0, Wb0 = split[0]
    self_pos0, nbr_pos0, rel0 = steps[0]
    n1 = len(self_pos0)
    base0 = biases[0].expand(n1, d).clone()
    if Wa0 is not None:
        base0 += (h0 @ Wa0.t()).index_select(0, self_pos0)
    # the 1/K of the mean-reduce is folded into q0 (saves a pass over the weights)
    q0 = (h0 @ Wb0.t()).index_select(0, nbr_pos0.reshape(-1)).view(n1, K, d) * scale
    return _CataloguePlan(K, d, model.n_items, steps, split, biases, scale, base0, q0)


def _one_iteration_logits(plan: _CataloguePlan, u: Tensor, ur: Tensor, item_block: int) -> Tensor:
    """Logits ``[c, n_items]`` of a one-iteration model (``L = 1``) for the users ``u [c, d]``
    with attention logits ``ur [c, R']``."""
    K, c = plan.K, u.shape[0]
    rel0 = plan.steps[0][2]
    n1 = len(rel0)
    u_sum = u.sum(-1)  # [c], for _tanh_dot
    urT = ur.t().contiguous()  # [R', c]
    # exp(π − max_r π) per user once: the softmax over an item's K edges is then a gather
    # and a normalisation (no exp per (user, item, edge)).  Exact: softmax is shift-invariant.
    expT = (urT - urT.max(0, keepdim=True).values).exp_()  # [R', c], values in (0, 1]
    logits = torch.empty(c, plan.n_items, device=u.device)
    for vs in range(0, n1, item_block):
        ve = min(n1, vs + item_block)
        nb = ve - vs
        # softmax over each item's K edges, laid out [nb, K, c]
        w = expT.index_select(0, rel0[vs:ve].reshape(-1)).view(nb, K, c)
        z = w.sum(1, keepdim=True)
        if bool((z < 1e-30).any()):  # π spread > ~69 for some user: exact softmax
            w = urT.index_select(0, rel0[vs:ve].reshape(-1)).view(nb, K, c).softmax(dim=1)
        else:
            w.div_(z)
        # [nb, c, d] = base + w^T @ q   (one small GEMM per item)
        pre = torch.baddbmm(plan.base0[vs:ve].unsqueeze(1), w.transpose(1, 2), plan.q0[vs:ve])
        logits[:, vs:ve] = _tanh_dot(pre, u, u_sum).t()
    return logits


def _deep_logits(plan: _CataloguePlan, u: Tensor, ur: Tensor, item_block: int) -> Tensor:
    """Logits ``[c, n_items]`` of a model with ``L >= 2`` iterations (arguments as
    :func:`_one_iteration_logits`); the last iteration runs in tiles of ``item_block`` items."""
    K, d, c, L = plan.K, plan.d, u.shape[0], len(plan.steps)
    u_sum = u.sum(-1)  # [c], for _tanh_dot
    urT = ur.t().contiguous()  # [R', c]
    rel0 = plan.steps[0][2]
    n1 = len(rel0)
    logits = torch.empty(c, plan.n_items, device=u.device)
    # First iteration (user-independent inputs), all nodes of need[1]: h [c, n1, d]
    w = urT.index_select(0, rel0.reshape(-1)).view(n1, K, c).softmax(dim=1)
    h = torch.baddbmm(plan.base0.unsqueeze(1), w.transpose(1, 2), plan.q0).relu_().transpose(0, 1).contiguous()
    for i in range(1, L):
        Wa, Wb = plan.split[i]
        self_pos, nbr_pos, rel = plan.steps[i]
        n = len(self_pos)
        p_nbr = h @ Wb.t()  # [c, n_prev, d]
        p_self = h @ Wa.t() if Wa is not None else None
        last = i == L - 1
        out = logits if last else torch.empty(c, n, d, device=u.device)
        blk = item_block if last else n
        for vs in range(0, n, blk):
            ve = min(n, vs + blk)
            nb = ve - vs
            w = ur.index_select(1, rel[vs:ve].reshape(-1)).view(c * nb, 1, K).softmax(dim=-1)
            if plan.scale != 1.0:
                w.mul_(plan.scale)
            # index_select, not p_nbr[:, idx]: same gather, ~5x faster than aten::index on CPU
            g = p_nbr.index_select(1, nbr_pos[vs:ve].reshape(-1)).view(c * nb, K, d)
            pre = torch.bmm(w, g).view(c, nb, d)
            if p_self is not None:
                pre += p_self.index_select(1, self_pos[vs:ve])
            pre += plan.biases[i]
            if last:
                out[:, vs:ve] = _tanh_dot(pre, u.unsqueeze(1), u_sum.unsqueeze(1))
            else:
                out[:, vs:ve] = pre.relu_()
        if not last:
            h = out
    return logits


def _tanh_dot(pre: Tensor, u: Tensor, u_sum: Tensor) -> Tensor:
    """``(tanh(pre) * u).sum(-1)`` via ``tanh(x) = 2 σ(2x) − 1``, i.e. ``2 (σ(2 pre) · u) − Σ u``;
    ``pre`` is overwritten.  ``u`` and ``u_sum = u.sum(-1)`` broadcast against ``pre [..., d]``.

    Why: on CPU torch's ``sigmoid`` is ~6x faster than ``tanh`` (measured 2.3 vs 0.36 G
    elements/s, AVX-512, 1 thread) and this tanh was half of Book-Crossing's full-catalogue
    scoring.  The identity is exact; in float32 the absolute error of each tanh value is
    ≲ 1e-7 (one rounding of a number of magnitude ≤ 1), the same order as the rounding of the
    d-term dot product itself.
    """
    s = pre.mul_(2.0).sigmoid_().mul_(u).sum(-1)
    return s.mul_(2.0).sub_(u_sum)
