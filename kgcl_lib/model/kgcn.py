"""KGCN (Wang et al. 2019) with the semantic text of KGCL (Kim et al., Sec. 3.2-3.4).

Notation (shapes in comments use these names)
--------------------------------------------
``B`` batch rows, ``d`` embedding dim, ``K`` neighbours per entity, ``L`` = ``n_iter`` hops,
``R' = n_relations + 1`` (the extra relation is the self-loop of isolated entities),
``D`` text-encoder dimension.

KGCN, exactly as its reference code (and RecBole's port)
--------------------------------------------------------
For a pair (user ``u``, item ``v``) the receptive field of ``v`` is the tree of its K sampled
neighbours per hop over L hops.  A neighbour ``e_k`` reached over relation ``r_k`` gets the
user–relation attention

    π(u, r) = mean(u ⊙ r) = u·r / d,        π̃(u, r_k) = softmax_k π(u, r_k)

and the neighbourhood vector is ``v_N = reduce_k π̃(u, r_k) e_k`` where ``reduce`` is the *mean*
over K (KGCN's ``tf.reduce_mean``, i.e. ``Σ_k π̃ e_k / K``) or, with ``neighbor_reduce="sum"``,
the plain sum of the paper's formula.  An aggregator (:data:`AGGREGATOR`; one weight matrix per
iteration, shared by all hops of that iteration) mixes a node with its neighbourhood:

    sum       σ(W (v + v_N) + b)          concat    σ(W [v ; v_N] + b)          neighbor  σ(W v_N + b)

with σ = ReLU on inner iterations and tanh on the last.  After L iterations ``v_u`` is the item's
user-specific representation; the CTR logit is ``u · v_u`` and ``score = sigmoid(u · v_u)``.
:func:`reference_item_representations` is this propagation written as plainly as here; the fast
paths of :mod:`kgcl_lib.model.fast` and :mod:`kgcl_lib.model.scoring` are tested against it.

Semantic text (KGCL)
--------------------
With ``text_dim`` set, the initial representation of every item node that has a synopsis is
``h_c = MLP_α(E(x_c))``: ``E(x_c)`` a frozen, precomputed encoder vector (a buffer), ``MLP_α`` one
trainable linear layer ``D -> d`` (``W_α, b_α``).  Items without a synopsis and attribute entities
use their learned embedding row.  :meth:`KGCN.content_embeddings` returns these ``h_c``, which
the contrastive loss (Eq. 4) and the ``dot`` scoring mode (Fig. 4) use.

Training: ``L = γ·L_base + (1−γ)·CL + λ·½‖Θ‖²`` (Eq. 5; the trainer), with KGCN's L2 over the
whole user / entity / relation tables and the weight matrices (not biases), minimised by dense
Adam computed row-sparsely (:class:`~kgcl_lib.model.table_adam.TableAdam`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import sample_neighbors
from ..seeds import RunSeeds
from .backbone import Backbone, check_mode, check_sizes
from .fast import KGCNFastPath
from .kgcn_step import KGCNTraining
from .scoring import kgcn_score_chunks


@dataclass(frozen=True)
class Aggregator:
    """One KGCN aggregator ``σ(W · combine(v, v_N) + b)``.

    ``combine(v, v_N)`` builds the input (``v`` may be ``None`` when ``has_self`` is false);
    ``width``: input width in units of ``d`` (``W`` is ``[d, width·d]``); ``has_self``: the node's
    own vector enters; ``shared``: ``v`` and ``v_N`` share ``W`` (``W v + W v_N``), so the fast
    paths sum them in one weighted bag.  :meth:`split` gives ``(W_self, W_nbr)`` with
    ``W · combine(v, v_N) = W_self v + W_nbr v_N`` (``W_self = None`` without a self term).
    """

    combine: Callable[[Tensor | None, Tensor], Tensor]
    width: int
    has_self: bool
    shared: bool

    def split(self, W: Tensor) -> tuple[Tensor | None, Tensor]:
        if not self.has_self:
            return None, W
        if self.shared:
            return W, W
        d = W.shape[0]
        return W[:, :d], W[:, d:]


#: The aggregators by name: the one table every propagation (reference, fast, scoring) reads.
AGGREGATOR = {
    "sum": Aggregator(lambda v, v_n: v + v_n, 1, has_self=True, shared=True),
    "concat": Aggregator(lambda v, v_n: torch.cat([v, v_n], -1), 2, has_self=True, shared=False),
    "neighbor": Aggregator(lambda v, v_n: v_n, 1, has_self=False, shared=False),
}
AGGREGATORS = tuple(AGGREGATOR)
NEIGHBOR_REDUCE = ("mean", "sum")


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of :class:`KGCN` (sizes of the data come separately).

    Attributes:
        dim: embedding dimension ``d`` of users, entities and relations (default: 32).
        n_iter: number of KGCN iterations / hops ``L`` (default: 2).
        n_neighbors: neighbours per entity ``K``; must match the neighbour table (default: 4).
        aggregator: a key of :data:`AGGREGATOR` (default: ``"sum"``; the paper uses ``"concat"``).
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
        if self.aggregator not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {self.aggregator!r}; expected one of {AGGREGATORS}")
        if self.neighbor_reduce not in NEIGHBOR_REDUCE:
            raise ValueError(f"unknown neighbor_reduce {self.neighbor_reduce!r}; expected one of {NEIGHBOR_REDUCE}")
        check_sizes(self, {"n_neighbors": "n_neighbors (K)", "n_iter": "n_iter (L)", "dim": "dim"})

    def to_dict(self) -> dict:
        return asdict(self)


class KGCN(KGCNTraining, KGCNFastPath, Backbone):
    """KGCN with optional semantic text initialisation of item nodes (the paper's backbone).

    Args:
        cfg: :class:`ModelConfig`.
        n_users, n_items: numbers of users and items (items are entities ``0..n_items-1``).
        n_entities: entity-table size.
        n_relations: number of KG relations (the table gets ``n_relations + 1`` rows; the last is
            the self-loop relation of isolated entities).
        adj_entity, adj_relation: ``int64[n_entities, K]`` sampled neighbour entity / relation of
            each entity (:func:`kgcl_lib.data.sample_neighbors`).
        text_vectors: ``float32[n_items, D]`` frozen encoder vectors (zeros where missing) or
            ``None``; required iff ``cfg.text_dim`` is set.
        has_text: ``bool[n_items]`` which items have a synopsis (default: all, when text given).
        generator: ``torch.Generator`` for the initial weights (default: a fresh one seeded 0).

    Initialisation follows KGCN: Xavier-uniform for the embedding tables and aggregator /
    α weights (over the whole matrix, as ``tf.contrib.layers.xavier_initializer``), zero biases.
    """

    name = "kgcn"

    def __init__(self, cfg: ModelConfig, n_users: int, n_entities: int, n_relations: int, n_items: int,
                 adj_entity: Tensor, adj_relation: Tensor, text_vectors: Tensor | None = None,
                 has_text: Tensor | None = None, generator: torch.Generator | None = None):
        super().__init__()
        adj_entity = torch.as_tensor(adj_entity, dtype=torch.int64)
        adj_relation = torch.as_tensor(adj_relation, dtype=torch.int64)
        _check_tables(cfg, n_entities, n_relations, n_items, adj_entity, adj_relation, text_vectors)
        self.cfg, self.aggregator = cfg, AGGREGATOR[cfg.aggregator]
        self.n_users, self.n_entities, self.n_relations, self.n_items = n_users, n_entities, n_relations, n_items
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        d = cfg.dim

        def xavier(rows, cols):
            bound = math.sqrt(6.0 / (rows + cols))
            return (torch.rand(rows, cols, generator=g) * 2 - 1) * bound

        self.user_emb = nn.Parameter(xavier(n_users, d))
        self.entity_emb = nn.Parameter(xavier(n_entities, d))
        self.relation_emb = nn.Parameter(xavier(n_relations + 1, d))
        # torch Linear stores W as [out, in]; Xavier bound is symmetric in (in, out).
        self.agg_weights = nn.ParameterList([nn.Parameter(xavier(d, self.aggregator.width * d)) for _ in range(cfg.n_iter)])
        self.agg_biases = nn.ParameterList([nn.Parameter(torch.zeros(d)) for _ in range(cfg.n_iter)])
        self.register_buffer("adj_entity", adj_entity.contiguous())
        self.register_buffer("adj_relation", adj_relation.contiguous())
        text_entity = torch.zeros(n_entities, dtype=torch.bool)
        self.alpha_weight = self.alpha_bias = None
        self.register_buffer("text_vectors", None)
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
        # text_entity[e]: entity e's initial vector is MLP_α(text); a buffer so it checkpoints.
        self.register_buffer("text_entity", text_entity)
        # Scratch buffers of the batch plan: global -> local row maps (not state).
        for name, n, dtype in (("_mark_e", n_entities, torch.bool), ("_mark_u", n_users, torch.bool),
                               ("_remap_e", n_entities, torch.int64), ("_remap_u", n_users, torch.int64)):
            self.register_buffer(name, torch.zeros(n, dtype=dtype), persistent=False)
        # Heap layout of the receptive field: 1 + K + .. + K^L nodes per row.
        self.field_width = sum(cfg.n_neighbors**h for h in range(cfg.n_iter + 1))
        self.factor_linear: bool | None = None  # see KGCNFastPath
        self.use_kernels = True

    @classmethod
    def build(cls, ds, cfg, text=None, seeds: RunSeeds | None = None) -> KGCN:
        """The run's KGCN: neighbour table sampled once from ``seeds.neighbors()``, initial
        weights from ``seeds.weights()``; text vectors when ``cfg.text == "synopsis"``."""
        seeds = seeds or RunSeeds(cfg.seed)
        nt = sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, cfg.n_neighbors, seeds.neighbors())
        tv = ht = None
        if cfg.text == "synopsis":
            if text is None:
                raise ValueError("cfg.text='synopsis' needs text embeddings (kgcl_lib.text.item_text_embeddings)")
            tv = torch.tensor(np.array(text.vectors, dtype=np.float32))
            ht = torch.tensor(np.array(text.has_text, dtype=bool))
        mcfg = ModelConfig(cfg.dim, cfg.n_iter, cfg.n_neighbors, cfg.aggregator, cfg.neighbor_reduce,
                           None if tv is None else int(tv.shape[1]))
        return cls(mcfg, ds.n_users, ds.n_entities, ds.n_relations, ds.n_items, torch.from_numpy(nt.entities),
                   torch.from_numpy(nt.relations), tv, ht, generator=seeds.weights())

    def checkpoint_payload(self) -> dict:
        return {"model_config": self.cfg.to_dict(), "sizes": dict(n_users=self.n_users, n_entities=self.n_entities,
                                                                  n_relations=self.n_relations, n_items=self.n_items)}

    @classmethod
    def from_checkpoint(cls, payload: dict) -> KGCN:
        sd, sizes = payload["state_dict"], payload["sizes"]
        text = sd.get("text_vectors")
        model = cls(ModelConfig(**payload["model_config"]), **sizes, adj_entity=sd["adj_entity"],
                    adj_relation=sd["adj_relation"], text_vectors=None if text is None else torch.zeros_like(text),
                    has_text=None if text is None else sd["text_entity"][: sizes["n_items"]])
        model.load_state_dict(sd)
        return model

    # ------------------------------------------------------------------ representations
    def text_rows(self, item_ids: Tensor) -> Tensor:
        """``MLP_α(E(x_c))`` for items ``int64[n]`` -> ``float32[n, d]``."""
        return F.linear(self.text_vectors.index_select(0, item_ids), self.alpha_weight, self.alpha_bias)

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

    def user_embeddings(self, users: Tensor) -> Tensor:
        return self.user_emb.index_select(0, users)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits ``u · v_u`` ``float32[B]`` for pairs ``users, items`` (``int64[B]``); differentiable."""
        plan = self.plan(users, items)
        table = self.local_table(plan, self.entity_emb.index_select(0, plan.plain_ids))
        return self.forward_plan(plan, self.user_emb.index_select(0, plan.user_ids), table)

    def logits(self, users: Tensor, items: Tensor) -> Tensor:
        return self(users, items)

    def item_representations(self, users: Tensor, items: Tensor) -> Tensor:
        """User-specific item representations ``v_u`` ``float32[B, d]`` (the KGCN output)."""
        plan = self.plan(users, items)
        table = self.local_table(plan, self.entity_emb.index_select(0, plan.plain_ids))
        u = self.user_emb.index_select(0, plan.user_ids).index_select(0, plan.users)
        return self._propagate(u, plan.field, plan.relations, table)

    def score_chunks(self, users: Tensor, chunk: int = 32, mode: str = "kgcn", progress: bool = False):
        """As :meth:`Backbone.score_chunks`; own mode: :func:`kgcl_lib.model.scoring.kgcn_score_chunks`
        (exact KGCN scores of every item, each entity's representation computed once per user)."""
        check_mode(mode)
        if mode == "dot":
            return super().score_chunks(users, chunk, mode, progress)
        return kgcn_score_chunks(self, users, chunk, progress)

    # ------------------------------------------------------------------ L2 (the training step: KGCNTraining)
    def regularized_weights(self) -> list[Tensor]:
        """Weights (not biases) in the L2 term, as KGCN: relations, aggregators, α."""
        return [self.relation_emb, *self.agg_weights] + ([self.alpha_weight] if self.alpha_weight is not None else [])

    def l2_penalty(self, user_rows: Tensor, entity_rows: Tensor) -> Tensor:
        """``½ Σ x²`` over the given user / entity rows plus the relation table and the aggregator /
        α weights (KGCN's ``tf.nn.l2_loss``; biases are not regularised).  Multiply by λ."""
        total = user_rows.pow(2).sum() + entity_rows.pow(2).sum()
        for w in self.regularized_weights():
            total = total + w.pow(2).sum()
        return 0.5 * total

def _check_tables(cfg: ModelConfig, n_entities, n_relations, n_items, adj_entity, adj_relation, text_vectors) -> None:
    """Raise ``ValueError`` naming the neighbour table or text argument that does not fit."""
    K = cfg.n_neighbors
    if adj_entity.shape != (n_entities, K) or adj_relation.shape != (n_entities, K):
        raise ValueError(f"neighbour tables must be [n_entities={n_entities}, K={K}], got "
                         f"{tuple(adj_entity.shape)} and {tuple(adj_relation.shape)}")
    if n_items > n_entities:
        raise ValueError(f"n_items {n_items} > n_entities {n_entities}")
    if len(adj_entity) and (int(adj_entity.min()) < 0 or int(adj_entity.max()) >= n_entities):
        raise ValueError(f"adj_entity holds ids outside 0..{n_entities - 1}")
    if len(adj_relation) and (int(adj_relation.min()) < 0 or int(adj_relation.max()) > n_relations):
        raise ValueError(f"adj_relation holds ids outside 0..{n_relations} (self-loop = {n_relations})")
    if (text_vectors is None) != (cfg.text_dim is None):
        raise ValueError("text_vectors must be given exactly when cfg.text_dim is set")


def reference_item_representations(model: KGCN, users: Tensor, items: Tensor) -> Tensor:
    """User-specific item representations ``v_u`` ``float[B, d]``, written as directly as the
    module docstring's maths: the specification every fast path is tested against.

    KGCN's reference layout: per hop ``h`` a ``[B, K^h, d]`` block of vectors, each iteration
    mixing every hop with the hop below it, ``L − i`` hops left after iteration ``i``.
    ``users, items``: ``int64[B]``.  Differentiable; no kernels, no row planning.
    """
    cfg, agg = model.cfg, model.aggregator
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
            w = torch.softmax(pi, dim=-1)  # π̃(u, r_k)
            v_n = (w.unsqueeze(-1) * nbr).sum(2)  # [B, n_nodes, d]
            if cfg.neighbor_reduce == "mean":
                v_n = v_n / K
            out = F.linear(agg.combine(vectors[hop], v_n), W, b)
            mixed.append(torch.tanh(out) if i == L - 1 else torch.relu(out))
        vectors = mixed
    return vectors[0][:, 0]
