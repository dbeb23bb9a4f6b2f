"""KGCN backbone + semantic text MLP + content contrastive losses (Kim et al., Sec. 3.2-3.4).

Pure torch: no I/O, no dataset objects.  The model takes primitive sizes and the fixed
neighbour tables (``kgcl_lib.data.sample_neighbors``) as tensors.

Notation (shapes in comments use these names)
--------------------------------------------
``B`` batch rows, ``d`` embedding dim, ``K`` neighbours per entity, ``L`` = ``n_iter`` hops,
``R' = n_relations + 1`` (the extra relation is the self-loop of isolated entities),
``D`` text-encoder dimension.

KGCN (Wang et al. 2019), exactly as its reference code (and RecBole's port)
----------------------------------------------------------------------------
For a pair (user ``u``, item ``v``) the receptive field of ``v`` is the tree of its K sampled
neighbours per hop over L hops.  A neighbour reached over relation ``r`` gets the weight

    π(u, r) = mean(u ⊙ r) = u·r / d,        w_k = softmax_k π(u, r_k)

and the neighbourhood vector is ``v_N = reduce_k w_k e_k`` where ``reduce`` is the *mean* over
K (KGCN's ``tf.reduce_mean`` -- i.e. Σ_k w_k e_k / K) or, with ``neighbor_reduce="sum"``,
the plain sum of the paper's formula.  Aggregators (one weight matrix per iteration, shared by
all hops of that iteration): ``sum`` σ(W(v + v_N) + b), ``concat`` σ(W[v ; v_N] + b),
``neighbor`` σ(W v_N + b); σ = ReLU on inner iterations, tanh on the last.  The logit of the
pair is ``u · v_u``; ``score = sigmoid(logit)``.

Semantic text
-------------
With ``text_dim`` set, the initial representation of every item node that has a synopsis is
``h_c = MLP_α(E(x_c))`` where ``E(x_c)`` is a frozen, precomputed encoder vector (a buffer) and
``MLP_α`` is one trainable linear layer ``D -> d`` (the paper's ``W_α, b_α``).  Items without a
synopsis and all attribute entities use their learned embedding row.  ``content_embeddings``
returns these ``h_c`` (the "content representation after α"), which the contrastive loss and
the ``dot`` scoring mode (Fig. 4) use.

Batches touch only a few rows of the big tables
-----------------------------------------------
:meth:`KGCN.plan` collects the unique users / entities that a batch (and its content pairs)
touches and maps the receptive field to *local* row indices.  :meth:`KGCN.forward_plan` then
runs on just those rows, which is what lets the trainer update only the rows a batch used
(``kgcl_lib.optim.TableAdam``) instead of densely rewriting 78k x 64 tables every step.
``forward(users, items)`` is the ordinary, differentiable convenience path built on the same
two calls.  Speed notes: on the CPU, :meth:`KGCN.plan` and the propagation run as compiled
kernels fused per batch row (:mod:`kgcl_lib.kernels`; ``use_kernels = False`` or
``KGCL_NO_CPP=1`` selects the pure-torch twins, which CUDA always uses: weighted bags with
``F.embedding_bag`` forward and a sort-free backward).  In both, the first iteration applies its
weight matrix to the batch's local table before the neighbour sum when that table is smaller than
the receptive field (exact, by linearity), and attention logits come from one ``[B, R']`` product
``u Rᵀ / d`` gathered per edge.

One reference, fast paths tested against it
-------------------------------------------
:func:`reference_item_representations` is the propagation written as plainly as the maths above;
the forward's two fast paths (pure torch and compiled) and :mod:`kgcl_lib.scoring`'s
full-catalogue scorer are tested against it (``tests/test_scoring.py``).

Full-catalogue scoring
----------------------
Exact scores of every (user, item) pair and top-K lists live in :mod:`kgcl_lib.scoring`
(``score_all``, ``topk``; importable from here too for existing callers).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import kernels as _K

AGGREGATORS = ("sum", "concat", "neighbor")


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


NEIGHBOR_REDUCE = ("mean", "sum")


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of :class:`KGCN` (sizes of the data come separately).

    Attributes:
        dim: embedding dimension ``d`` of users, entities and relations (default: 32).
        n_iter: number of KGCN iterations / hops ``L`` (default: 2).
        n_neighbors: neighbours per entity ``K``; must match the neighbour table (default: 4).
        aggregator: ``"sum"``, ``"concat"`` or ``"neighbor"`` (default: ``"sum"``; the paper
            uses ``"concat"`` with text).
        neighbor_reduce: ``"mean"`` (KGCN/RecBole code: Σ_k w_k e_k / K) or ``"sum"``
            (the KGCN paper's formula) (default: ``"mean"``).
        text_dim: encoder dimension ``D`` of the precomputed synopsis vectors, or ``None`` for no
            text (default: ``None``).
    """

    dim: int = 32
    n_iter: int = 2
    n_neighbors: int = 4
    aggregator: str = "sum"
    neighbor_reduce: str = "mean"
    text_dim: int | None = None

    def __post_init__(self):
        validate_model_config(self)

    def to_dict(self) -> dict:
        return asdict(self)


def validate_model_config(cfg: ModelConfig) -> None:
    """Raise ``ValueError`` naming the bad field and value."""
    if cfg.aggregator not in AGGREGATORS:
        raise ValueError(f"unknown aggregator {cfg.aggregator!r}; expected one of {AGGREGATORS}")
    if cfg.neighbor_reduce not in NEIGHBOR_REDUCE:
        raise ValueError(f"unknown neighbor_reduce {cfg.neighbor_reduce!r}; expected one of {NEIGHBOR_REDUCE}")
    if not isinstance(cfg.n_neighbors, int) or cfg.n_neighbors < 1:
        raise ValueError(f"n_neighbors (K) must be an int >= 1, got {cfg.n_neighbors!r}")
    if not isinstance(cfg.n_iter, int) or cfg.n_iter < 1:
        raise ValueError(f"n_iter (L) must be an int >= 1, got {cfg.n_iter!r}")
    if not isinstance(cfg.dim, int) or cfg.dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {cfg.dim!r}")
    if cfg.text_dim is not None and (not isinstance(cfg.text_dim, int) or cfg.text_dim < 1):
        raise ValueError(f"text_dim must be None or an int >= 1, got {cfg.text_dim!r}")


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


class KGCN(nn.Module):
    """KGCN with optional semantic text initialisation of item nodes.

    Args:
        cfg: :class:`ModelConfig`.
        n_users: number of users.
        n_entities: entity-table size (items are entities ``0..n_items-1``).
        n_relations: number of KG relations (the table gets ``n_relations + 1`` rows; the last is
            the self-loop relation of isolated entities).
        n_items: number of items.
        adj_entity: ``int64[n_entities, K]`` sampled neighbour entity of each entity.
        adj_relation: ``int64[n_entities, K]`` relation of each sampled edge.
        text_vectors: ``float32[n_items, D]`` frozen encoder vectors (zeros where missing) or
            ``None``; required iff ``cfg.text_dim`` is set.
        has_text: ``bool[n_items]`` which items have a synopsis (default: all, when text given).
        generator: ``torch.Generator`` for the initial weights (default: a fresh one seeded 0).

    Initialisation follows KGCN: Xavier-uniform for the embedding tables and aggregator /
    α weights (over the whole matrix, as ``tf.contrib.layers.xavier_initializer``), zero biases.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        n_users: int,
        n_entities: int,
        n_relations: int,
        n_items: int,
        adj_entity: Tensor,
        adj_relation: Tensor,
        text_vectors: Tensor | None = None,
        has_text: Tensor | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        validate_model_config(cfg)
        adj_entity = torch.as_tensor(adj_entity, dtype=torch.int64)
        adj_relation = torch.as_tensor(adj_relation, dtype=torch.int64)
        K = cfg.n_neighbors
        if adj_entity.shape != (n_entities, K) or adj_relation.shape != (n_entities, K):
            raise ValueError(
                f"neighbour tables must be [n_entities={n_entities}, K={K}], got "
                f"{tuple(adj_entity.shape)} and {tuple(adj_relation.shape)}"
            )
        if n_items > n_entities:
            raise ValueError(f"n_items {n_items} > n_entities {n_entities}")
        if len(adj_entity) and (int(adj_entity.min()) < 0 or int(adj_entity.max()) >= n_entities):
            raise ValueError(f"adj_entity holds ids outside 0..{n_entities - 1}")
        if len(adj_relation) and (int(adj_relation.min()) < 0 or int(adj_relation.max()) > n_relations):
            raise ValueError(f"adj_relation holds ids outside 0..{n_relations} (self-loop = {n_relations})")
        if (text_vectors is None) != (cfg.text_dim is None):
            raise ValueError("text_vectors must be given exactly when cfg.text_dim is set")

        self.cfg = cfg
        self.n_users, self.n_entities, self.n_relations, self.n_items = n_users, n_entities, n_relations, n_items
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        d = cfg.dim

        def xavier(rows, cols):
            bound = math.sqrt(6.0 / (rows + cols))
            return (torch.rand(rows, cols, generator=g) * 2 - 1) * bound

        self.user_emb = nn.Parameter(xavier(n_users, d))
        self.entity_emb = nn.Parameter(xavier(n_entities, d))
        self.relation_emb = nn.Parameter(xavier(n_relations + 1, d))
        in_dim = 2 * d if cfg.aggregator == "concat" else d
        # torch Linear stores W as [out, in]; Xavier bound is symmetric in (in, out).
        self.agg_weights = nn.ParameterList([nn.Parameter(xavier(d, in_dim)) for _ in range(cfg.n_iter)])
        self.agg_biases = nn.ParameterList([nn.Parameter(torch.zeros(d)) for _ in range(cfg.n_iter)])
        self.register_buffer("adj_entity", adj_entity.contiguous())
        self.register_buffer("adj_relation", adj_relation.contiguous())

        text_entity = torch.zeros(n_entities, dtype=torch.bool)
        if cfg.text_dim is not None:
            tv = torch.as_tensor(text_vectors, dtype=torch.float32)
            if tv.shape != (n_items, cfg.text_dim):
                raise ValueError(f"text_vectors must be [n_items={n_items}, D={cfg.text_dim}], got {tuple(tv.shape)}")
            ht = torch.ones(n_items, dtype=torch.bool) if has_text is None else torch.as_tensor(has_text, dtype=torch.bool)
            if ht.shape != (n_items,):
                raise ValueError(f"has_text must be bool[{n_items}], got {tuple(ht.shape)}")
            self.register_buffer("text_vectors", tv.contiguous())
            self.alpha_weight = nn.Parameter(xavier(d, cfg.text_dim))
            self.alpha_bias = nn.Parameter(torch.zeros(d))
            text_entity[:n_items] = ht
        else:
            self.register_buffer("text_vectors", None)
            self.alpha_weight = None
            self.alpha_bias = None
        # text_entity[e]: entity e's initial vector is MLP_α(text); a buffer so it checkpoints.
        self.register_buffer("text_entity", text_entity)
        # Scratch buffers for plan(): global -> local row maps (not state).
        self.register_buffer("_mark_e", torch.zeros(n_entities, dtype=torch.bool), persistent=False)
        self.register_buffer("_mark_u", torch.zeros(n_users, dtype=torch.bool), persistent=False)
        self.register_buffer("_remap_e", torch.zeros(n_entities, dtype=torch.int64), persistent=False)
        self.register_buffer("_remap_u", torch.zeros(n_users, dtype=torch.int64), persistent=False)
        # Heap offsets of the receptive field: hop h occupies [off[h], off[h+1]).
        self.field_width = sum(K**h for h in range(cfg.n_iter + 1))
        #: First-iteration linear map before (True) or after (False) the neighbour sum; ``None``
        #: picks per batch: before when the batch's local table has fewer rows than field nodes.
        self.factor_linear: bool | None = None
        #: Use the compiled CPU kernels (:mod:`kgcl_lib.kernels`) when they are available.
        self.use_kernels = True

    # ------------------------------------------------------------------ parameters
    def dense_parameters(self) -> list[nn.Parameter]:
        """Parameters updated densely every step: relations, aggregator and α weights."""
        ps = [self.relation_emb, *self.agg_weights, *self.agg_biases]
        if self.alpha_weight is not None:
            ps += [self.alpha_weight, self.alpha_bias]
        return ps

    def regularized_weights(self) -> list[Tensor]:
        """Weights (not biases) in the L2 term, as KGCN: relations, aggregators, α."""
        ws = [self.relation_emb, *self.agg_weights]
        if self.alpha_weight is not None:
            ws.append(self.alpha_weight)
        return ws

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

    def readable_entities(self) -> Tensor:
        """``bool[n_entities]``: the entity rows some forward pass can read -- every item
        (``0..n_items-1``) and the entities of its receptive field over the fixed sampled
        neighbours (``adj_entity``, ``n_iter`` hops).  No score depends on the other rows (on
        Book-Crossing at K = 4, L = 1: 69 % of the entity table), so the trainer leaves their idle
        optimiser steps until it returns the weights.  Text items are included (conservative).
        """
        dev = self.adj_entity.device
        seen = torch.zeros(self.n_entities, dtype=torch.bool, device=dev)
        frontier = torch.arange(self.n_items, device=dev)
        seen[frontier] = True
        for _ in range(self.cfg.n_iter):
            nxt = torch.zeros_like(seen)
            nxt[self.adj_entity.index_select(0, frontier).view(-1)] = True
            frontier = (nxt & ~seen).nonzero().view(-1)
            seen |= nxt
        return seen

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
    def text_rows(self, item_ids: Tensor) -> Tensor:
        """``MLP_α(E(x_c))`` for items ``int64[n]`` -> ``float32[n, d]``."""
        return F.linear(self.text_vectors.index_select(0, item_ids), self.alpha_weight, self.alpha_bias)

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
        :func:`reference_item_representations` and are tested against it
        (``tests/test_scoring.py::test_forward_fast_paths_equal_reference``).
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
        n_rows = table.shape[0]
        factor = self._first_linear_first(n_rows, B * S)
        if factor:
            # Apply W before the neighbour sum (it is linear): one [n_rows, d] projection of the
            # local table instead of a GEMM over all B*S field nodes, then a single bag over
            # [self | neighbours] with weights [1 | w] (concat: self rows from W_a·table, the
            # neighbours from W_b·table, stacked as one [2·n_rows, d] table).
            if cfg.aggregator == "concat":
                proj = torch.cat([table @ W[:, :d].t(), table @ W[:, d:].t()], 0)
                idx, wts = torch.cat([self_idx, nbr_idx + n_rows], 1), torch.cat([w0.new_ones(B * S, 1), w0], 1)
            elif cfg.aggregator == "sum":
                proj = table @ W.t()
                idx, wts = torch.cat([self_idx, nbr_idx], 1), torch.cat([w0.new_ones(B * S, 1), w0], 1)
            else:
                proj, idx, wts = table @ W.t(), nbr_idx, w0
            out = _WeightedBag.apply(proj, idx, wts) + b
        elif cfg.aggregator == "sum":
            # v + v_N is one bag of K + 1 rows: the node itself with weight 1 and its neighbours
            bag = _WeightedBag.apply(table, torch.cat([self_idx, nbr_idx], 1), torch.cat([w0.new_ones(B * S, 1), w0], 1))
            out = F.linear(bag, W, b)
        else:
            agg = _WeightedBag.apply(table, nbr_idx, w0)
            out = F.linear(torch.cat([table.index_select(0, self_idx.view(-1)), agg], 1) if cfg.aggregator == "concat" else agg, W, b)
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
                if cfg.aggregator == "sum":  # self + v_N in one bag, weights [1 | w]
                    bag = _WeightedBag.apply(flat, base + torch.arange(1 + K, device=h.device),
                                             torch.cat([w.new_ones(B, 1), w[:, 0]], 1))
                    out = F.linear(bag, self.agg_weights[i], self.agg_biases[i])
                    h = (torch.tanh(out) if i == L - 1 else torch.relu(out)).view(B, 1, d)
                    continue
                agg = _WeightedBag.apply(flat, base + 1 + torch.arange(K, device=h.device), w[:, 0].contiguous())
                self_v = h.select(1, 0) if cfg.aggregator == "concat" else None
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
        """:meth:`_propagate` with the compiled kernels (:mod:`kgcl_lib.kernels`); same maths.

        It exists because on the CPU the fused per-row kernels are the fast training step (see
        ``BENCHMARKS.md``); it is tested against :func:`reference_item_representations`.

        ``ur``: ``[B, R']`` attention logits; returns ``[B, d]``.
        """
        cfg = self.cfg
        B, d, K, L = ur.shape[0], cfg.dim, cfg.n_neighbors, cfg.n_iter
        S = relations.shape[1] // K
        w = _K.EdgeSoftmax.apply(ur, relations, K, 1.0 / K if cfg.neighbor_reduce == "mean" else 1.0)  # [B, S*K]
        W, b = self.agg_weights[0], self.agg_biases[0]
        act = _K.ACT_TANH if L == 1 else _K.ACT_RELU
        if self._first_linear_first(table.shape[0], B * S):
            # W applied per local row, then bias + weighted sum + activation in one kernel
            if cfg.aggregator == "concat":
                h = _K.TreeBag.apply(table @ W[:, :d].t(), table @ W[:, d:].t(), field, w, b, S, K, act, False)
            else:
                proj = table @ W.t()
                h = _K.TreeBag.apply(None, proj, field, w, b, S, K, act, cfg.aggregator == "sum")
        else:
            # weighted sum of raw rows first (sum: v + v_N in the same pass), then W
            agg = _K.TreeBag.apply(None, table, field, w, None, S, K, _K.ACT_NONE, cfg.aggregator == "sum")
            if cfg.aggregator == "concat":
                self_v = table.index_select(0, field[:, :S].reshape(-1)).view(B, S, d)
                agg = torch.cat([self_v, agg], -1)
            out = F.linear(agg, W, b)
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
        W, b = self.agg_weights[i], self.agg_biases[i]
        if self.cfg.aggregator == "sum":
            out = F.linear(self_vec + nbr_vec, W, b)
        elif self.cfg.aggregator == "concat":
            out = F.linear(torch.cat([self_vec, nbr_vec], -1), W, b)
        else:
            out = F.linear(nbr_vec, W, b)
        return torch.tanh(out) if i == self.cfg.n_iter - 1 else torch.relu(out)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits ``float32[B]`` for pairs ``users, items`` (``int64[B]``); differentiable."""
        plan = self.plan(users, items)
        table = self.local_table(plan, self.entity_emb.index_select(0, plan.plain_ids))
        return self.forward_plan(plan, self.user_emb.index_select(0, plan.user_ids), table)

    def item_representations(self, users: Tensor, items: Tensor) -> Tensor:
        """User-specific item representations ``v_u`` ``float32[B, d]`` (the KGCN output)."""
        plan = self.plan(users, items)
        table = self.local_table(plan, self.entity_emb.index_select(0, plan.plain_ids))
        u = self.user_emb.index_select(0, plan.user_ids).index_select(0, plan.users)
        return self._propagate(u, plan.field, plan.relations, table)

    def initial_embeddings(self) -> Tensor:
        """``float32[n_entities, d]``: every entity's initial vector (text MLP for text items)."""
        if self.text_vectors is None:
            return self.entity_emb
        ids = self.text_entity.nonzero().view(-1)
        return self.entity_emb.index_put((ids,), self.text_rows(ids))

    def content_embeddings(self, items: Tensor | None = None) -> Tensor:
        """Content representations ``h_c`` ``float32[n, d]`` of ``items`` (default: all items):
        ``MLP_α(E(x_c))`` for items with text, the entity row otherwise."""
        dev = self.entity_emb.device
        items = torch.arange(self.n_items, device=dev) if items is None else items.to(device=dev, dtype=torch.int64)
        h = self.entity_emb.index_select(0, items)
        if self.text_vectors is None:
            return h
        t = self.text_entity.index_select(0, items)
        if t.any():
            pos = t.nonzero().view(-1)
            h = h.index_put((pos,), self.text_rows(items.index_select(0, pos)))
        return h

    def l2_penalty(self, user_rows: Tensor, entity_rows: Tensor) -> Tensor:
        """``½ Σ x²`` over the user rows and (learned) entity rows a batch used plus the
        relation table and the aggregator / α weights (KGCN's ``tf.nn.l2_loss``; biases are not
        regularised).  Multiply by λ."""
        total = user_rows.pow(2).sum() + entity_rows.pow(2).sum()
        for w in self.regularized_weights():
            total = total + w.pow(2).sum()
        return 0.5 * total


# ---------------------------------------------------------------------- reference propagation
def reference_item_representations(model: KGCN, users: Tensor, items: Tensor) -> Tensor:
    """User-specific item representations ``v_u`` ``float[B, d]``, written as directly as the
    module docstring's maths: the specification that every fast path is tested against.

    The fast paths -- :meth:`KGCN._propagate` (pure torch, weighted bags, the CUDA path),
    :meth:`KGCN._propagate_fused` (compiled CPU kernels) and
    :func:`kgcl_lib.scoring.score_all` (every item at once) -- reorder the same sums for speed.
    This one keeps KGCN's reference layout: per hop ``h`` a ``[B, K^h, d]`` block of vectors,
    each iteration mixing every hop with the hop below it, ``L − i`` hops left after iteration
    ``i``.  ``users, items``: ``int64[B]``.  Differentiable; no kernels, no row planning.
    """
    cfg = model.cfg
    d, K, L = cfg.dim, cfg.n_neighbors, cfg.n_iter
    users = torch.as_tensor(users, dtype=torch.int64, device=model.adj_entity.device)
    items = torch.as_tensor(items, dtype=torch.int64, device=model.adj_entity.device)
    B = items.shape[0]
    u = model.user_emb[users]  # [B, d]
    entities, relations = [items.view(B, 1)], []  # hop h: [B, K^h] ids; relations[h]: [B, K^(h+1)]
    for _ in range(L):
        entities.append(model.adj_entity[entities[-1]].view(B, -1))
        relations.append(model.adj_relation[entities[-2]].view(B, -1))
    initial = model.initial_embeddings()
    vectors = [initial[e] for e in entities]  # hop h: [B, K^h, d]
    for i in range(L):
        W, b = model.agg_weights[i], model.agg_biases[i]
        mixed = []
        for hop in range(L - i):
            n_nodes = vectors[hop].shape[1]
            nbr = vectors[hop + 1].view(B, n_nodes, K, d)
            r = model.relation_emb[relations[hop]].view(B, n_nodes, K, d)
            pi = (u.view(B, 1, 1, d) * r).mean(-1)  # π(u, r) = u·r / d   [B, n_nodes, K]
            w = torch.softmax(pi, dim=-1)
            v_n = (w.unsqueeze(-1) * nbr).sum(2)  # [B, n_nodes, d]
            if cfg.neighbor_reduce == "mean":
                v_n = v_n / K
            v = vectors[hop]
            if cfg.aggregator == "sum":
                out = F.linear(v + v_n, W, b)
            elif cfg.aggregator == "concat":
                out = F.linear(torch.cat([v, v_n], -1), W, b)
            else:
                out = F.linear(v_n, W, b)
            mixed.append(torch.tanh(out) if i == L - 1 else torch.relu(out))
        vectors = mixed
    return vectors[0][:, 0]


# ---------------------------------------------------------------------- contrastive losses
def cl_bce_loss(anchor: Tensor, other: Tensor, label: Tensor) -> Tensor:
    """Content contrastive loss of Eq. 4: ``mean BCE-with-logits(h_c · h_c', label)``.

    ``anchor, other``: ``float[n, d]`` content representations; ``label``: ``[n]`` 1 = positive
    pair, 0 = negative.  Returns a scalar (mean over pairs; 0 for an empty batch).
    """
    if anchor.shape[0] == 0:
        return anchor.sum() * 0.0
    logits = (anchor * other).sum(-1)
    return F.binary_cross_entropy_with_logits(logits, label.to(logits.dtype))


def info_nce_loss(anchor: Tensor, positive: Tensor, temperature: float = 0.1) -> Tensor:
    """In-batch InfoNCE of Eq. 1 with ``sim = dot product`` (the paper's sim for CL).

    ``anchor, positive``: ``float[n, d]``, row i of ``positive`` is i's positive; every other row
    is an in-batch negative.  ``-mean_i log softmax_j(z_i·z+_j / t)[i]``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if anchor.shape[0] == 0:
        return anchor.sum() * 0.0
    logits = anchor @ positive.t() / temperature
    return F.cross_entropy(logits, torch.arange(anchor.shape[0], device=logits.device))


def __getattr__(name: str):
    """``from kgcl_lib.model import score_all, topk`` keeps working: they moved to
    :mod:`kgcl_lib.scoring` (imported lazily, so ``model`` does not import the module below it)."""
    if name in ("score_all", "topk"):
        from . import scoring

        return getattr(scoring, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
