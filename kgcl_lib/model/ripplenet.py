"""RippleNet backbone (Wang et al., "RippleNet: Propagating User Preferences on the Knowledge
Graph for Recommender Systems", CIKM 2018) + semantic text init; pure torch, no I/O.

Follows the authors' reference code (hwwang55/RippleNet, ``src/model.py``, ``src/train.py``);
the ripple sets come from :func:`kgcl_lib.data.sample_ripple_sets`.

Notation: ``B`` batch rows, ``U`` distinct users of a batch, ``d`` embedding dim, ``H`` hops,
``M`` = ``n_memory`` triples per hop, ``D`` text-encoder dimension.

Model (reference ``_key_addressing``, ``predict``)
--------------------------------------------------
Entities have vectors ``e ∈ R^d``, relations matrices ``R ∈ R^{d×d}``.  For a pair (user ``u``,
item ``v``), at hop ``k = 0..H−1`` over the user's hop-``k`` triples ``(h_i, r_i, t_i)``:

    p_i = softmax_i(v_kᵀ R_i h_i),       o_k = Σ_i p_i t_i

and the item vector is updated after every hop (``item_update_mode``): ``replace`` ``v ← o``,
``plus`` ``v ← v + o``, ``replace_transform`` ``v ← o T``, ``plus_transform`` (the reference's
default) ``v ← (v + o) T`` with one ``d×d`` matrix ``T`` shared by all hops.  The user vector is
``y = Σ_k o_k`` (``using_all_hops``; else ``o_{H−1}``), the logit ``v_Hᵀ y`` -- with ``v_H`` the
item vector after the *last* update, as the reference (its ``predict`` receives the updated
``self.item_embeddings``) -- and the score ``sigmoid(logit)``.

Loss terms (reference ``_build_loss``), returned unweighted by :meth:`RippleNet.terms`
-------------------------------------------------------------------------------------
* ``kge = Σ_k mean_{rows, i} sigmoid(h_iᵀ R_i t_i)`` over the batch's ripple triples; the loss
  adds ``−kge_weight · kge``.
* ``l2 = Σ_k Σ_{rows, i} (‖h_i‖² + ‖t_i‖² + ‖R_i‖_F²)``: squared norms of the ripple triples of
  every batch row, summed (not halved, not averaged: the reference's ``reduce_mean`` is over a
  scalar); the item vectors ``v`` and ``T`` are not in it (the reference regularises ``T`` only
  in modes it does not implement).  With text, ``‖W_α‖²`` is added (KGCN's L2 covers α too).
  The loss adds ``l2_weight · l2``.

A user appears in many rows of a batch with the same ripple set, so ``R_i h_i``, the KGE and L2
terms are computed once per distinct user and weighted by the user's row count: the same sums
(and gradients) as the reference's per-row computation, ``B/U`` times cheaper.

Users without a ripple set
--------------------------
The reference removes the rows of users with no training positive from every split.  The KGCN
protocol keeps them; their memory is empty (``p = 0``, so ``o = 0``, ``y = 0``, logit 0, score
0.5: ties in AUC), and they add nothing to the KGE / L2 terms.

Semantic text
-------------
As :class:`kgcl_lib.model.KGCN`: with ``text_dim`` set, the vector of every item entity that has
a synopsis is ``MLP_α(E(x_c))`` (one trainable ``D -> d`` linear layer over the frozen encoder
vector) wherever RippleNet reads it: the candidate item ``v`` and items that appear as ripple
heads / tails.  :meth:`RippleNet.content_embeddings` returns these initial item vectors
``h_c``, the item representations that the scores start from and that CL (Eq. 4) shapes.

Initialisation (reference: ``tf.contrib.layers.xavier_initializer``, uniform): entity table
``±√(6/(n_entities + d))``, relation matrices ``±√(6/(2·d·n_relations))`` (TF's fans of a
``[n_relations, d, d]`` tensor), ``T`` ``±√(6/(2d))``; α as KGCN's.  The reference computes in
float64; this module in float32.

Tests: ``tests/unit/model/test_ripplenet.py`` holds the forward, :meth:`RippleNet.score_all` and the loss
terms against a naive loop over rows and triples, and gradients against finite differences.

Full-catalogue scores: :meth:`RippleNet.score_all` (the user vector depends on the item through
the attention, so a block of users × a block of items is scored with batched matrix products,
no loop over users or items).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.ripple import sample_ripple_sets
from ..seeds import RunSeeds
from .backbone import Backbone, StepOutput, check_mode, check_sizes

ITEM_UPDATE_MODES = ("replace", "plus", "replace_transform", "plus_transform")


@dataclass(frozen=True)
class RippleNetConfig:
    """Hyper-parameters of :class:`RippleNet` (data sizes and ripple sets come separately).

    Attributes:
        dim: embedding dimension ``d`` (reference default 16: its MovieLens-1M setting).
        n_hop: hops ``H`` (default 2).
        n_memory: ripple-set size per hop ``M`` (default 32).
        item_update_mode: one of :data:`ITEM_UPDATE_MODES` (default ``"plus_transform"``).
        using_all_hops: user vector ``Σ_k o_k`` (True, default) or the last hop's ``o`` only.
        text_dim: encoder dimension ``D`` of the synopsis vectors, or ``None`` (no text).
    """

    dim: int = 16
    n_hop: int = 2
    n_memory: int = 32
    item_update_mode: str = "plus_transform"
    using_all_hops: bool = True
    text_dim: int | None = None

    def __post_init__(self):
        if self.item_update_mode not in ITEM_UPDATE_MODES:
            raise ValueError(f"unknown item_update_mode {self.item_update_mode!r}; expected one of {ITEM_UPDATE_MODES}")
        check_sizes(self, {n: f"RippleNetConfig.{n}" for n in ("dim", "n_hop", "n_memory")}, "RippleNetConfig.text_dim")

    def to_dict(self) -> dict:
        return asdict(self)


class RippleNet(Backbone):
    """RippleNet with optional semantic text initialisation of item entities (backbone ``"ripplenet"``).

    Args:
        cfg: :class:`RippleNetConfig`.
        n_users, n_entities, n_relations, n_items: sizes (items are entities ``0..n_items-1``).
        heads, relations, tails: ``int64[H, n_users, M]`` ripple sets
            (:class:`kgcl_lib.data.RippleSets`).
        has_set: ``bool[n_users]``: users with a ripple set (the others get an empty memory).
        text_vectors: ``float32[n_items, D]`` frozen encoder vectors or ``None``; required iff
            ``cfg.text_dim`` is set.  has_text: ``bool[n_items]`` (default: all).
        generator: ``torch.Generator`` for the initial weights (default: seeded 0).

    ``kge_weight`` (attribute; :meth:`build` sets it from ``TrainConfig.kge_weight``): the weight
    of the KG-embedding term in :meth:`step_forward`'s ``extra``.
    """

    name = "ripplenet"
    needs_train = True

    def __init__(self, cfg: RippleNetConfig, n_users: int, n_entities: int, n_relations: int, n_items: int,
                 heads: Tensor, relations: Tensor, tails: Tensor, has_set: Tensor,
                 text_vectors: Tensor | None = None, has_text: Tensor | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        H, M, d = cfg.n_hop, cfg.n_memory, cfg.dim
        heads, relations, tails = (torch.as_tensor(x, dtype=torch.int64) for x in (heads, relations, tails))
        has_set = torch.as_tensor(has_set, dtype=torch.bool)
        for name, x, hi in (("heads", heads, n_entities), ("relations", relations, n_relations), ("tails", tails, n_entities)):
            if x.shape != (H, n_users, M):
                raise ValueError(f"ripple {name} must be [n_hop={H}, n_users={n_users}, n_memory={M}], got {tuple(x.shape)}")
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= hi):
                raise ValueError(f"ripple {name} hold ids outside 0..{hi - 1}")
        if has_set.shape != (n_users,):
            raise ValueError(f"has_set must be bool[{n_users}], got {tuple(has_set.shape)}")
        if n_items > n_entities:
            raise ValueError(f"n_items {n_items} > n_entities {n_entities}")
        if (text_vectors is None) != (cfg.text_dim is None):
            raise ValueError("text_vectors must be given exactly when cfg.text_dim is set")
        self.cfg = cfg
        self.kge_weight = 0.0
        self.n_users, self.n_entities, self.n_relations, self.n_items = n_users, n_entities, n_relations, n_items
        g = generator if generator is not None else torch.Generator().manual_seed(0)

        def uniform(shape, bound):
            return (torch.rand(*shape, generator=g) * 2 - 1) * bound

        self.entity_emb = nn.Parameter(uniform((n_entities, d), math.sqrt(6.0 / (n_entities + d))))
        self.relation_mat = nn.Parameter(uniform((n_relations, d, d), math.sqrt(6.0 / (2 * d * n_relations))))
        self.transform = nn.Parameter(uniform((d, d), math.sqrt(6.0 / (2 * d))))  # v ← (v + o) @ T
        self.register_buffer("mem_heads", heads.contiguous())
        self.register_buffer("mem_relations", relations.contiguous())
        self.register_buffer("mem_tails", tails.contiguous())
        self.register_buffer("has_set", has_set.contiguous())
        text_entity = torch.zeros(n_entities, dtype=torch.bool)
        if cfg.text_dim is not None:
            tv = torch.as_tensor(text_vectors, dtype=torch.float32)
            if tv.shape != (n_items, cfg.text_dim):
                raise ValueError(f"text_vectors must be [n_items={n_items}, D={cfg.text_dim}], got {tuple(tv.shape)}")
            ht = torch.ones(n_items, dtype=torch.bool) if has_text is None else torch.as_tensor(has_text, dtype=torch.bool)
            if ht.shape != (n_items,):
                raise ValueError(f"has_text must be bool[{n_items}], got {tuple(ht.shape)}")
            self.register_buffer("text_vectors", tv.contiguous())
            self.alpha_weight = nn.Parameter(uniform((d, cfg.text_dim), math.sqrt(6.0 / (d + cfg.text_dim))))
            self.alpha_bias = nn.Parameter(torch.zeros(d))
            text_entity[:n_items] = ht
        else:
            self.register_buffer("text_vectors", None)
            self.alpha_weight = None
            self.alpha_bias = None
        self.register_buffer("text_entity", text_entity)

    # ------------------------------------------------------------------ construction (the seam)
    @staticmethod
    def published_settings(dataset: str) -> dict:
        """The reference's experiment settings for ``dataset`` as :class:`~kgcl_lib.train.TrainConfig`
        fields (hwwang55/RippleNet ``src/main.py`` at ba7ce72, "update default settings": the
        active defaults are MovieLens-1M's, the commented block Book-Crossing's).

        ``book-crossing``: d = 4, H = 2, kge_weight = 1e-2, l2_weight = 1e-5, η = 1e-3, batch 1,024,
        10 epochs, n_memory = 32.  Movie datasets (``ml-*``; the reference's MovieLens-1M):
        d = 16, H = 2, kge_weight = 1e-2, l2_weight = 1e-7, η = 2e-2, batch 1,024, 10 epochs,
        n_memory = 32.  Both: ``item_update_mode = "plus_transform"``, ``using_all_hops = True``.
        """
        name = dataset.lower()
        common = dict(n_hop=2, n_memory=32, kge_weight=1e-2, item_update_mode="plus_transform", using_all_hops=True,
                      batch_size=1024, epochs=10)
        if name in ("book-crossing", "book", "bx"):
            return dict(common, dim=4, l2=1e-5, lr=1e-3)
        if name.startswith("ml-") or name.startswith("movielens"):
            return dict(common, dim=16, l2=1e-7, lr=2e-2)
        raise ValueError(f"no published RippleNet settings for dataset {dataset!r} (known: book-crossing, ml-*)")

    @classmethod
    def build(cls, ds, cfg, text=None, seeds: RunSeeds | None = None, train=None) -> RippleNet:
        """The run's RippleNet: ripple sets sampled once from the training positives of ``train``
        (``int64[n, 3]`` labelled rows, the run's ``split.train``) with ``seeds.ripple_sets()``,
        initial weights from ``seeds.weights()``; text vectors when ``cfg.text == "synopsis"``."""
        if train is None:
            raise ValueError("RippleNet.build needs the run's training rows (train=split.train): the ripple sets "
                             "start from each user's training positives")
        seeds = seeds or RunSeeds(cfg.seed)
        train = np.asarray(train, dtype=np.int64)
        positives = train[train[:, 2] == 1, :2]
        rs = sample_ripple_sets(ds.kg, ds.n_entities, ds.n_users, positives, cfg.n_hop, cfg.n_memory, seeds.ripple_sets())
        tv = ht = None
        if cfg.text == "synopsis":
            if text is None:
                raise ValueError("cfg.text='synopsis' needs text embeddings (kgcl_lib.text.item_text_embeddings)")
            tv = torch.tensor(np.array(text.vectors, dtype=np.float32))
            ht = torch.tensor(np.array(text.has_text, dtype=bool))
        rcfg = RippleNetConfig(cfg.dim, cfg.n_hop, cfg.n_memory, cfg.item_update_mode, cfg.using_all_hops,
                               None if tv is None else int(tv.shape[1]))
        model = cls(rcfg, ds.n_users, ds.n_entities, ds.n_relations, ds.n_items, torch.from_numpy(rs.heads),
                    torch.from_numpy(rs.relations), torch.from_numpy(rs.tails), torch.from_numpy(rs.has_set), tv, ht,
                    generator=seeds.weights())
        model.kge_weight = float(cfg.kge_weight)
        return model

    def checkpoint_payload(self) -> dict:
        return {"model_config": self.cfg.to_dict(), "kge_weight": self.kge_weight,
                "sizes": dict(n_users=self.n_users, n_entities=self.n_entities, n_relations=self.n_relations,
                              n_items=self.n_items)}

    @classmethod
    def from_checkpoint(cls, payload: dict) -> RippleNet:
        sd, sizes = payload["state_dict"], payload["sizes"]
        text = sd.get("text_vectors")
        model = cls(RippleNetConfig(**payload["model_config"]), **sizes, heads=sd["mem_heads"],
                    relations=sd["mem_relations"], tails=sd["mem_tails"], has_set=sd["has_set"],
                    text_vectors=None if text is None else torch.zeros_like(text),
                    has_text=None if text is None else sd["text_entity"][: sizes["n_items"]])
        model.load_state_dict(sd)
        model.kge_weight = float(payload.get("kge_weight", 0.0))
        return model

    # ------------------------------------------------------------------ entity vectors
    def text_rows(self, items: Tensor) -> Tensor:
        """``MLP_α(E(x))`` ``[n, d]`` of ``items`` (all must have text)."""
        return F.linear(self.text_vectors.index_select(0, items), self.alpha_weight, self.alpha_bias)

    def entity_rows(self, ids: Tensor) -> Tensor:
        """Initial vectors ``[n, d]`` of entities ``ids``: ``MLP_α(text)`` for text items, the
        embedding row otherwise (differentiable)."""
        rows = self.entity_emb.index_select(0, ids)
        if self.text_vectors is None:
            return rows
        t = self.text_entity.index_select(0, ids)
        if not bool(t.any()):
            return rows
        pos = t.nonzero().view(-1)
        return rows.index_put((pos,), self.text_rows(ids.index_select(0, pos)))

    def initial_embeddings(self) -> Tensor:
        """``float32[n_entities, d]``: every entity's initial vector."""
        return self.entity_rows(torch.arange(self.n_entities, device=self.entity_emb.device))

    def content_embeddings(self, items: Tensor | None = None) -> Tensor:
        """Content representations ``h_c`` ``float32[n, d]`` of ``items`` (default: all items): the
        initial item vectors RippleNet scores with (``v`` before the first hop)."""
        dev = self.entity_emb.device
        items = torch.arange(self.n_items, device=dev) if items is None else items.to(device=dev, dtype=torch.int64)
        return self.entity_rows(items)

    def user_embeddings(self, users: Tensor) -> Tensor:
        """RippleNet has no item-independent user vector (``y`` depends on the candidate item
        through the attention), so the ``"dot"`` scoring mode is not defined for it."""
        raise ValueError("RippleNet has no item-independent user vector: its user representation depends on the "
                         "candidate item; use scoring mode 'kgcn' (the backbone's own score)")

    # ------------------------------------------------------------------ forward
    def _update(self, v: Tensor, o: Tensor) -> Tensor:
        mode = self.cfg.item_update_mode
        if mode == "replace":
            return o
        if mode == "plus":
            return v + o
        if mode == "replace_transform":
            return o @ self.transform
        return (v + o) @ self.transform

    def _relation_apply(self, x: Tensor, rel: Tensor) -> Tensor:
        """``out[n] = R[rel[n]] @ x[n]`` for ``x [N, d]``: rows grouped by relation, one ``[n_r, d]
        @ [d, d]`` product per relation (a loop over the few relations; per-row d×d products or a
        gathered ``[N, d, d]`` tensor are 4-10x slower).  Differentiable."""
        order = torch.argsort(rel)
        counts = torch.bincount(rel, minlength=self.n_relations).tolist()
        parts = torch.split(x.index_select(0, order), counts)
        out = torch.cat([p @ self.relation_mat[r].t() for r, p in enumerate(parts) if len(p)])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        return out.index_select(0, inverse)

    def _memories(self, user_ids: Tensor, items: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(v [B, d], h [H, U, M, d], t [H, U, M, d], r [H, U, M])`` for ``items`` and the ripple
        sets of ``user_ids`` (distinct users); each entity's vector is computed once."""
        H, M = self.cfg.n_hop, self.cfg.n_memory
        U, B = len(user_ids), len(items)
        h_ids = self.mem_heads.index_select(1, user_ids)  # [H, U, M]
        t_ids = self.mem_tails.index_select(1, user_ids)
        ids = torch.cat([items, h_ids.reshape(-1), t_ids.reshape(-1)])
        if self.text_vectors is not None:  # the text MLP once per distinct entity
            uniq, inv = torch.unique(ids, return_inverse=True)
            vec = self.entity_rows(uniq).index_select(0, inv)
        else:
            vec = self.entity_emb.index_select(0, ids)
        d = vec.shape[1]
        v = vec[:B]
        h = vec[B : B + H * U * M].view(H, U, M, d)
        t = vec[B + H * U * M :].view(H, U, M, d)
        return v, h, t, self.mem_relations.index_select(1, user_ids)

    def terms(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(logits [B], kge, l2)`` for pairs ``users, items`` (``int64[B]``); see the module
        docstring for ``kge`` and ``l2`` (unweighted scalars).  Differentiable."""
        users = users.to(self.mem_heads.device)
        items = items.to(self.mem_heads.device)
        user_ids, row_user = torch.unique(users, return_inverse=True)
        v, h, t, rel = self._memories(user_ids, items)
        H, U, M, d = h.shape
        # R_i h_i and R_i t_i of every ripple triple in one grouped pass
        Rx = self._relation_apply(torch.cat([h.reshape(-1, d), t.reshape(-1, d)]), rel.reshape(-1).repeat(2))
        Rh, Rt = Rx[: H * U * M].view(H, U, M, d), Rx[H * U * M :].view(H, U, M, d)
        valid = self.has_set.index_select(0, user_ids)  # [U]
        mask = valid.index_select(0, row_user).to(v.dtype).unsqueeze(1)  # [B, 1]
        o_list = []
        for k in range(H):
            Rh_k = Rh[k].index_select(0, row_user)  # [B, M, d]
            probs = torch.softmax((Rh_k * v.unsqueeze(1)).sum(-1), dim=1) * mask  # [B, M]:  p_i = softmax(vᵀ R_i h_i)
            o = (probs.unsqueeze(-1) * t[k].index_select(0, row_user)).sum(1)  # [B, d]:  Σ_i p_i t_i
            v = self._update(v, o)
            o_list.append(o)
        y = sum(o_list[:-1], o_list[-1]) if self.cfg.using_all_hops else o_list[-1]
        logits = (v * y).sum(-1)
        # per distinct user, weighted by its row count (users without a set weigh 0)
        weight = torch.bincount(row_user, minlength=U).to(v.dtype) * valid.to(v.dtype)  # [U]
        n_rows = weight.sum()
        kge_u = torch.sigmoid((h * Rt).sum(-1)).sum(-1)  # [H, U]:  Σ_i sigmoid(h_iᵀ R_i t_i)
        kge = (kge_u * weight).sum() / (n_rows * M).clamp_min(1.0)
        # Σ over rows and triples of ‖h‖² + ‖t‖² + ‖R‖²; ‖R_r‖² once per relation, times its count
        l2_ht = ((h.pow(2).sum((-1, -2)) + t.pow(2).sum((-1, -2))) * weight).sum()
        rel_weight = torch.zeros(self.n_relations, dtype=v.dtype, device=v.device).index_add_(
            0, rel.reshape(-1), weight.view(1, U, 1).expand(H, U, M).reshape(-1))
        l2 = l2_ht + (rel_weight * self.relation_mat.pow(2).sum((-1, -2))).sum()
        if self.alpha_weight is not None:
            l2 = l2 + self.alpha_weight.pow(2).sum()
        return logits, kge, l2

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits ``float32[B]`` for pairs ``users, items`` (``int64[B]``); differentiable."""
        return self.terms(users, items)[0]

    def logits(self, users: Tensor, items: Tensor) -> Tensor:
        return self.terms(users, items)[0]

    # ------------------------------------------------------------------ training (the seam)
    def step_forward(self, users: Tensor, items: Tensor, anchor: Tensor | None = None,
                     other: Tensor | None = None) -> StepOutput:
        """Logits, the content representations of the pairs (CL, Eq. 4), ``l2`` (the reference's
        unhalved sum, see the module docstring; the trainer multiplies it by ``cfg.l2``) and
        ``extra = −kge_weight · kge``.  Optimiser: the seam's default, dense Adam over every
        parameter (the reference's ``tf.train.AdamOptimizer``, whose sparse updates keep dense
        moment decay)."""
        logits, kge, l2 = self.terms(users, items)
        ha = ho = None
        if anchor is not None:
            h = self.content_embeddings(torch.cat([anchor, other]).to(self.mem_heads.device))
            ha, ho = h[: len(anchor)], h[len(anchor) :]
        return StepOutput(logits, ha, ho, l2, -self.kge_weight * kge if self.kge_weight else None)

    # ------------------------------------------------------------------ full catalogue
    def score_chunks(self, users: Tensor, chunk: int = 32, mode: str = "kgcn", progress: bool = False):
        """As :meth:`Backbone.score_chunks`; own mode (``"kgcn"``): :meth:`scores` on chunks of at
        least 64 users; ``"dot"`` is not defined (:meth:`user_embeddings`)."""
        check_mode(mode)
        if mode == "dot":
            self.user_embeddings(users)  # raises
        step = max(chunk, 64)
        it = range(0, len(users), step)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="score_all(ripplenet)", unit="chunk")
        for s in it:
            yield s, self.scores(users[s : s + step])

    @torch.no_grad()
    def scores(self, users: Tensor, item_block: int = 1024) -> Tensor:
        """Scores ``float32[len(users), n_items]`` (sigmoid) of every item for ``users``.

        Per hop the ``[c, M, d]`` keys ``R_i h_i`` of the users meet a block of ``item_block``
        item vectors in one batched product (``[c, n, M]`` attention; blocks of ~1,000 items stay
        in cache, 2x faster than 4,096 on Book-Crossing), so memory is ``O(c · item_block ·
        max(M, d))`` and nothing loops over users or items.  Users without a ripple set score 0.5
        everywhere and are not computed.  Equals :meth:`forward` on every (user, item) pair up to
        float rounding (``tests/unit/model/test_ripplenet.py``).
        """
        dev = self.mem_heads.device
        users = torch.as_tensor(users, dtype=torch.int64).to(dev)
        out = torch.full((len(users), self.n_items), 0.5, device=dev)
        rows = self.has_set.index_select(0, users).nonzero().view(-1)  # rows that have a ripple set
        if len(rows) == 0:
            return out
        uid = users.index_select(0, rows)
        items_vec = self.content_embeddings()  # [n_items, d]
        H, M = self.cfg.n_hop, self.cfg.n_memory
        c = len(uid)
        h = self.entity_rows(self.mem_heads.index_select(1, uid).reshape(-1))
        t = self.entity_rows(self.mem_tails.index_select(1, uid).reshape(-1)).view(H, c, M, -1)
        d = h.shape[1]
        keys_t = self._relation_apply(h, self.mem_relations.index_select(1, uid).reshape(-1))
        keys_t = keys_t.view(H, c, M, d).transpose(-1, -2).contiguous()  # [H, c, d, M]:  (R_i h_i)ᵀ
        block = torch.empty(c, self.n_items, device=dev)
        for vs in range(0, self.n_items, item_block):
            v0 = items_vec[vs : vs + item_block]  # [n, d]
            v = v0.unsqueeze(0).expand(c, -1, -1)  # [c, n, d]
            y = None
            for k in range(H):
                probs = torch.softmax(torch.bmm(v, keys_t[k]), dim=2)  # [c, n, M]
                o = torch.bmm(probs, t[k])  # [c, n, d]
                v = self._update(v, o)
                y = o if (y is None or not self.cfg.using_all_hops) else y + o
            block[:, vs : vs + len(v0)] = torch.sigmoid((v * y).sum(-1))
        out.index_copy_(0, rows, block)
        return out
