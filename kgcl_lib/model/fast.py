"""KGCN's fast path: the batch plan and the two fast propagations of the training step.

:func:`~kgcl_lib.model.kgcn.reference_item_representations` is the propagation written as the
maths; this module computes the same numbers fast, and is tested against it
(``tests/unit/model/test_scoring.py``).  :class:`KGCNFastPath` is a mixin of
:class:`~kgcl_lib.model.kgcn.KGCN` (it reads the model's tables, ``cfg`` and ``aggregator``).

Batches touch only a few rows of the big tables
-----------------------------------------------
:meth:`KGCNFastPath.plan` collects the unique users / entities that a batch (and its content
pairs) touches and maps the receptive field to *local* row indices.
:meth:`KGCNFastPath.forward_plan` then runs on just those rows, which is what lets the trainer
update only the rows a batch used (:class:`~kgcl_lib.model.table_adam.TableAdam`) instead of
densely rewriting 78k x 64 tables every step.  On the CPU, the plan and the propagation run as
compiled kernels fused per batch row (:mod:`kgcl_lib.model.kernels`; ``use_kernels = False`` or
``KGCL_NO_CPP=1`` selects the pure-torch twins, which CUDA always uses: weighted bags with
``F.embedding_bag`` forward and a sort-free backward).  In both, the first iteration applies its
weight matrix to the batch's local table before the neighbour sum when that table is smaller than
the receptive field (exact, by linearity: ``W·agg(v, v_N) = W_self v + Σ_k w_k W_nbr e_k``, with
``(W_self, W_nbr) = aggregator.split(W)``), and attention logits come from one ``[B, R']``
product ``u Rᵀ / d`` gathered per edge.

Notation as in :mod:`kgcl_lib.model.kgcn`: ``B`` rows, ``d`` dim, ``K`` neighbours, ``L`` hops,
``S = 1 + K + .. + K^(L-1)`` field nodes with children.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from . import kernels as _K

class _WeightedBag(torch.autograd.Function):
    """``out[n] = Σ_k w[n, k] · table[idx[n, k]]`` -> ``[N, d]``.

    Forward is ``F.embedding_bag`` (no ``[N, K, d]`` temporary).  Backward uses ``index_add_``
    instead of ``embedding_bag``'s dense backward, which sorts all ``N·K`` indices every step
    (≈ 5x slower on CPU for KGCN's 1M-lookup batches).
    """

    @staticmethod
    def forward(ctx, table: Tensor, idx: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(table, idx, w)
        return F.embedding_bag(idx, table, per_sample_weights=w, mode="sum")

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        table, idx, w = ctx.saved_tensors
        N, K = idx.shape
        flat = idx.reshape(-1)
        grad_table = grad_w = None
        if ctx.needs_input_grad[2]:
            rows = table.index_select(0, flat).view(N, K, -1)  # [N, K, d]
            grad_w = torch.bmm(rows, grad_out.unsqueeze(2)).view(N, K)
        if ctx.needs_input_grad[0]:
            src = (w.unsqueeze(2) * grad_out.unsqueeze(1)).view(N * K, -1)  # [N*K, d]
            grad_table = torch.zeros_like(table).index_add_(0, flat, src)
        return grad_table, None, grad_w

@dataclass(frozen=True, eq=False)
class BatchPlan:
    """The rows one batch touches, and its receptive field in local row indices.

    Entity rows are ordered text items first, then plain entities (learned rows), so that the
    local initial-representation table is ``cat([MLP_α(T[text_ids]), entity_rows])``.

    Attributes:
        user_ids: ``int64[n_u]`` unique global user ids (sorted).
        text_ids: ``int64[n_t]`` unique global item ids whose initial vector is ``MLP_α(text)``.
        plain_ids: ``int64[n_p]`` unique global entity ids that use their embedding row.
        users: ``int64[B]`` local user index of each batch row (into ``user_ids``).
        field: ``int64[B, 1 + K + ... + K^L]`` local entity index of the receptive field, heap
            layout (node ``p``'s neighbours sit at ``1 + p*K .. p*K + K``; node 0 is the item).
        relations: ``int64[B, K + ... + K^L]`` relation of each non-root field node's edge.
        extra: ``int64[n_extra]`` local entity indices of ``extra_items`` (content pairs), or
            an empty tensor.
    """

    user_ids: Tensor
    text_ids: Tensor
    plain_ids: Tensor
    users: Tensor
    field: Tensor
    relations: Tensor
    extra: Tensor



class KGCNFastPath:
    """The batch plan and the fast propagations of :class:`~kgcl_lib.model.kgcn.KGCN` (a mixin).

    Attributes set by the model: ``factor_linear`` (first-iteration linear map before (True) or
    after (False) the neighbour sum; ``None`` picks per batch) and ``use_kernels`` (use the
    compiled CPU kernels when they are available).
    """

    # ------------------------------------------------------------------ planning
    def receptive_field(self, items: Tensor) -> tuple[Tensor, Tensor]:
        """Global receptive field of ``items`` (``int64[B]``).

        Returns ``(field int64[B, 1+K+..+K^L], relations int64[B, K+..+K^L])`` in heap layout.
        """
        ents, rels = [items.view(-1, 1)], []
        B = items.shape[0]
        for _ in range(self.cfg.n_iter):
            flat = ents[-1].reshape(-1)
            ents.append(self.adj_entity.index_select(0, flat).view(B, -1))
            rels.append(self.adj_relation.index_select(0, flat).view(B, -1))
        return torch.cat(ents, 1), torch.cat(rels, 1)

    def plan(self, users: Tensor, items: Tensor, extra_items: Tensor | None = None) -> BatchPlan:
        """Unique rows touched by ``(users, items)`` (+ ``extra_items``) and local indices.

        ``users, items``: ``int64[B]``; ``extra_items``: ``int64[n]`` items whose content
        embedding is also needed (contrastive pairs).  Runs in O(B·|field| + n_entities) with
        boolean marks instead of sorting.
        """
        dev = self.adj_entity.device  # indices may come from the CPU (e.g. numpy rows)
        users = torch.as_tensor(users).to(device=dev, dtype=torch.int64)
        items = torch.as_tensor(items).to(device=dev, dtype=torch.int64)
        extra = extra_items.to(device=dev, dtype=torch.int64) if extra_items is not None else items.new_empty(0)
        mod = _K.cpp_kernels() if self.use_kernels and dev.type == "cpu" else None
        if mod is not None:  # the same steps in one compiled pass
            text = self.text_entity if self.text_vectors is not None else self.text_entity[:0]
            out = mod.plan_batch(self.adj_entity, self.adj_relation, users.contiguous(), items.contiguous(),
                                 extra.contiguous(), text, self.n_users, self.cfg.n_iter)
            return BatchPlan(*out)
        field, relations = self.receptive_field(items)
        flat = field.reshape(-1)
        mark = self._mark_e
        mark.zero_()
        mark[flat] = True
        if extra.numel():
            mark[extra] = True
        if self.text_vectors is None:  # no text: every entity uses its learned row
            text_ids = flat.new_empty(0)
            plain_ids = mark.nonzero().view(-1)
        else:
            text_ids = (mark & self.text_entity).nonzero().view(-1)
            plain_ids = (mark & ~self.text_entity).nonzero().view(-1)
        remap = self._remap_e
        if len(text_ids):
            remap[text_ids] = torch.arange(len(text_ids), device=dev)
        remap[plain_ids] = torch.arange(len(text_ids), len(text_ids) + len(plain_ids), device=dev)
        mu = self._mark_u
        mu.zero_()
        mu[users] = True
        user_ids = mu.nonzero().view(-1)
        self._remap_u[user_ids] = torch.arange(len(user_ids), device=dev)
        return BatchPlan(
            user_ids=user_ids,
            text_ids=text_ids,
            plain_ids=plain_ids,
            users=self._remap_u[users],
            field=remap[flat].view(field.shape),
            relations=relations,
            extra=remap[extra],
        )

    # ------------------------------------------------------------------ forward
    def local_table(self, plan: BatchPlan, entity_rows: Tensor) -> Tensor:
        """Initial representations of the plan's entities, ``[n_t + n_p, d]`` in local order.

        ``entity_rows``: ``[n_p, d]`` rows of ``entity_emb`` for ``plan.plain_ids`` (a view of
        the table or a leaf copy the trainer updates lazily).
        """
        if plan.text_ids.numel():
            return torch.cat([self.text_rows(plan.text_ids), entity_rows], 0)
        return entity_rows

    def forward_plan(self, plan: BatchPlan, user_rows: Tensor, table: Tensor) -> Tensor:
        """Logits ``float32[B]`` of the plan's pairs from local rows.

        ``user_rows``: ``[n_u, d]`` rows for ``plan.user_ids``; ``table``: ``[n_t + n_p, d]``
        from :meth:`local_table`.
        """
        u = user_rows.index_select(0, plan.users)  # [B, d]
        v = self._propagate(u, plan.field, plan.relations, table)  # [B, d]
        return (u * v).sum(-1)

    def _propagate(self, u: Tensor, field: Tensor, relations: Tensor, table: Tensor) -> Tensor:
        """Item representations ``[B, d]`` after L iterations (see module docstring).

        ``u``: ``[B, d]`` user rows; ``field``, ``relations``: the plan's receptive field;
        ``table``: ``[n_local, d]`` from :meth:`local_table`.  Two fast paths compute it, because
        the training step is this function: the compiled kernels (:meth:`_propagate_fused`, CPU)
        fuse each batch row's tree in one pass, and the pure-torch weighted bags below (CUDA,
        and CPU without a compiler) batch it as whole-tensor ops; both reorder the sums of
        :func:`~kgcl_lib.model.kgcn.reference_item_representations` and are tested against it
        (``tests/unit/model/test_scoring.py::test_forward_fast_paths_equal_reference``).
        """
        d = self.cfg.dim
        # π(u, r) for every relation once per row: [B, R'], then gathered per edge.
        ur = (u @ self.relation_emb.t()) / d
        if self.use_kernels and _K.usable(table) is not None:
            return self._propagate_fused(ur, field, relations, table)
        w = self._edge_weights(ur, relations)  # [B, S, K]
        h = self._first_iteration(w, field, table)  # [B, S, d]
        return self._later_iterations(h, w)

    def _edge_weights(self, ur: Tensor, relations: Tensor) -> Tensor:
        """Attention weights ``[B, S, K]`` of every edge of the field (``/K`` for the mean reduce)
        from the ``[B, R']`` logits ``ur``; ``S = 1 + K + .. + K^(L-1)`` field nodes with children."""
        cfg = self.cfg
        B, K = ur.shape[0], cfg.n_neighbors
        # softmax over each node's K edges via exp once per (row, relation): shift by the row's
        # max over all relations (softmax is shift-invariant), exponentiate [B, R'], gather per
        # edge and normalise -- 2x cheaper than a softmax over a last dim of size K.  The clamp
        # only matters if π spreads by > 69 within a row (then tiny weights are floored).
        e = (ur - ur.detach().amax(1, keepdim=True)).exp().clamp_min(1e-30)
        S = relations.shape[1] // K  # S = 1 + K + .. + K^(L-1)
        g = e.gather(1, relations).view(B, S, K)
        z = g.sum(-1, keepdim=True)
        return g / (z * K if cfg.neighbor_reduce == "mean" else z)  # [B, S, K]

    def _first_iteration(self, w: Tensor, field: Tensor, table: Tensor) -> Tensor:
        """``[B, S, d]``: every field node at hops ``0..L-1`` after the first iteration, from the
        edge weights ``w`` ``[B, S, K]`` and the initial local ``table``."""
        cfg = self.cfg
        B, S, K = w.shape
        d, L = cfg.dim, cfg.n_iter
        # Iteration 0: every node at hops 0..L-1 aggregates its K neighbours' initial vectors;
        # embedding_bag does the weighted gather-sum without materialising [B, S, K, d].
        self_idx = field[:, :S].reshape(B * S, 1)
        nbr_idx = field[:, 1 : 1 + S * K].reshape(B * S, K)
        w0 = w.reshape(B * S, K)
        W, b = self.agg_weights[0], self.agg_biases[0]
        agg = self.aggregator
        n_rows = table.shape[0]
        # bag indices [self | neighbours] and weights [1 | w] of aggregators with a self term
        with_self = (torch.cat([self_idx, nbr_idx], 1), torch.cat([w0.new_ones(B * S, 1), w0], 1)) if agg.has_self else None
        if self._first_linear_first(n_rows, B * S):
            # Apply W before the neighbour sum (it is linear): one [n_rows, d] projection of the
            # local table instead of a GEMM over all B*S field nodes, then a single bag over
            # [self | neighbours] with weights [1 | w] (concat: self rows from W_self·table, the
            # neighbours from W_nbr·table, stacked as one [2·n_rows, d] table).
            W_self, W_nbr = agg.split(W)
            if agg.shared:  # one projection serves self and neighbours
                proj, (idx, wts) = table @ W.t(), with_self
            elif agg.has_self:
                proj = torch.cat([table @ W_self.t(), table @ W_nbr.t()], 0)
                idx, wts = torch.cat([self_idx, nbr_idx + n_rows], 1), with_self[1]
            else:
                proj, idx, wts = table @ W_nbr.t(), nbr_idx, w0
            out = _WeightedBag.apply(proj, idx, wts) + b
        elif agg.shared:  # v + v_N is one bag of K + 1 rows: the node itself with weight 1 and its neighbours
            out = F.linear(_WeightedBag.apply(table, *with_self), W, b)
        else:
            v_n = _WeightedBag.apply(table, nbr_idx, w0)
            v = table.index_select(0, self_idx.view(-1)) if agg.has_self else None
            out = F.linear(agg.combine(v, v_n), W, b)
        return (torch.tanh(out) if L == 1 else torch.relu(out)).view(B, S, d)

    def _later_iterations(self, h: Tensor, w: Tensor) -> Tensor:
        """Iterations ``1..L-1`` on the first iteration's ``h`` ``[B, S, d]``; returns ``[B, d]``."""
        cfg = self.cfg
        B, K, d, L = h.shape[0], cfg.n_neighbors, cfg.dim, cfg.n_iter
        # Iteration i >= 1: nodes [0, S_i) aggregate nodes [1, 1 + S_i*K) of the previous output.
        for i in range(1, L):
            S_i = sum(K**hop for hop in range(L - i))
            if S_i == 1:
                # Last iteration: node 0 aggregates nodes 1..K of h.  Treat h as a [B*(1+K), d]
                # table and use the weighted bag (2x faster than a batched [1,K]@[K,d] bmm).
                flat = h.reshape(B * (1 + K), d)
                base = torch.arange(B, device=h.device).unsqueeze(1) * (1 + K)
                if self.aggregator.shared:  # self + v_N in one bag, weights [1 | w]
                    bag = _WeightedBag.apply(flat, base + torch.arange(1 + K, device=h.device),
                                             torch.cat([w.new_ones(B, 1), w[:, 0]], 1))
                    out = F.linear(bag, self.agg_weights[i], self.agg_biases[i])
                    h = (torch.tanh(out) if i == L - 1 else torch.relu(out)).view(B, 1, d)
                    continue
                agg = _WeightedBag.apply(flat, base + 1 + torch.arange(K, device=h.device), w[:, 0].contiguous())
                self_v = h.select(1, 0) if self.aggregator.has_self else None
                h = self._aggregate(i, self_v, agg).view(B, 1, d)
                continue
            self_v, nbr = h[:, :S_i].reshape(B * S_i, d), h[:, 1 : 1 + S_i * K]  # L >= 3, inner iterations
            agg = torch.bmm(w[:, :S_i].reshape(B * S_i, 1, K), nbr.reshape(B * S_i, K, d)).view(B * S_i, d)
            h = self._aggregate(i, self_v, agg).view(B, S_i, d)
        return h[:, 0]

    def _first_linear_first(self, n_rows: int, n_nodes: int) -> bool:
        """Apply the first iteration's W before the neighbour sum (see :meth:`_propagate`)?"""
        return self.factor_linear if self.factor_linear is not None else n_rows < n_nodes

    def _propagate_fused(self, ur: Tensor, field: Tensor, relations: Tensor, table: Tensor) -> Tensor:
        """:meth:`_propagate` with the compiled kernels (:mod:`kgcl_lib.model.kernels`); same maths.

        It exists because on the CPU the fused per-row kernels are the fast training step (see
        ``BENCHMARKS.md``); it is tested against :func:`~kgcl_lib.model.kgcn.reference_item_representations`.

        ``ur``: ``[B, R']`` attention logits; returns ``[B, d]``.
        """
        cfg = self.cfg
        B, d, K, L = ur.shape[0], cfg.dim, cfg.n_neighbors, cfg.n_iter
        S = relations.shape[1] // K
        w = _K.EdgeSoftmax.apply(ur, relations, K, 1.0 / K if cfg.neighbor_reduce == "mean" else 1.0)  # [B, S*K]
        W, b = self.agg_weights[0], self.agg_biases[0]
        agg = self.aggregator
        separate_self = agg.has_self and not agg.shared  # concat: W_self and W_nbr differ
        act = _K.ACT_TANH if L == 1 else _K.ACT_RELU
        if self._first_linear_first(table.shape[0], B * S):
            # W applied per local row, then bias + weighted sum + activation in one kernel
            if separate_self:
                W_self, W_nbr = agg.split(W)
                h = _K.TreeBag.apply(table @ W_self.t(), table @ W_nbr.t(), field, w, b, S, K, act, False)
            else:
                h = _K.TreeBag.apply(None, table @ W.t(), field, w, b, S, K, act, agg.shared)
        else:
            # weighted sum of raw rows first (sum: v + v_N in the same pass), then W
            x = _K.TreeBag.apply(None, table, field, w, None, S, K, _K.ACT_NONE, agg.shared)
            if separate_self:
                x = agg.combine(table.index_select(0, field[:, :S].reshape(-1)).view(B, S, d), x)
            out = F.linear(x, W, b)
            h = torch.tanh(out) if L == 1 else torch.relu(out)
        mode = _K.NODE_MODE[cfg.aggregator]
        for i in range(1, L):  # h: [B, S_prev, d] per-row trees
            S_i = sum(K**hop for hop in range(L - i))
            x = _K.NodeBag.apply(h, w, S_i, K, mode)  # the aggregator's input [B, S_i, d or 2d]
            out = F.linear(x, self.agg_weights[i], self.agg_biases[i])
            h = torch.tanh(out) if i == L - 1 else torch.relu(out)
        return h[:, 0]

    def _aggregate(self, i: int, self_vec: Tensor, nbr_vec: Tensor) -> Tensor:
        """One aggregator application on ``[N, d]`` self / neighbourhood vectors."""
        out = F.linear(self.aggregator.combine(self_vec, nbr_vec), self.agg_weights[i], self.agg_biases[i])
        return torch.tanh(out) if i == self.cfg.n_iter - 1 else torch.relu(out)
