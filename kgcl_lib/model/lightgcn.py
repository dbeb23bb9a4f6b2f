"""LightGCN (He et al. 2020) on the user–item graph of the training positives (issue 29).

Graph: nodes are the ``n_users`` users then the ``n_items`` items; an edge joins ``u`` and ``i``
for every *positive* training row ``(u, i, 1)`` (each distinct pair once; negatives and
valid / test rows never enter).  ``Â = D^{-1/2} A D^{-1/2}`` with ``A`` the symmetric
``(n_users + n_items)²`` adjacency and ``D`` its degrees (an isolated node: a zero row).

Propagation (no weights, no non-linearity)::

    E⁽⁰⁾ = [U; I] (learned),   E⁽ᵏ⁺¹⁾ = Â E⁽ᵏ⁾,   E = Σ_{k=0..L} α_k E⁽ᵏ⁾,   α_k = 1 / (L + 1)

``logit(u, i) = e_u · e_i``, ``score = sigmoid(logit)`` -- the CTR score of the issue.  Trained by
the project's trainer with the same mean BCE on labelled rows as KGCN (``L_base``; LightGCN's
paper uses BPR) plus ``λ · ½ ‖E⁽⁰⁾‖²`` over the whole tables, with Adam.  ``Â`` is a sparse
CSR matrix; a propagation is ``L`` sparse × dense products, ``O(L · nnz · d)``, once per training
step (every node) and once per evaluation (cached while the weights do not change).  An item's
content embedding is its final ``e_i``.  ``TrainConfig`` fields used: ``dim``, ``n_iter`` (= the
number of layers ``L``), ``lr``, ``l2``, ``batch_size``, ``epochs``, ``patience``.
Initialisation ``N(0, 0.1²)`` as LightGCN's code.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor, nn

from ..seeds import RunSeeds
from .backbone import Backbone, StepOutput
from .mf import INIT_STD, fast_adam


class _SymmetricSpMM(torch.autograd.Function):
    """``Â E`` for a *symmetric* sparse CSR ``Â``; the backward is ``Âᵀ G = Â G`` (no transpose,
    no COO coalescing per step)."""

    @staticmethod
    def forward(ctx, adj: Tensor, e: Tensor) -> Tensor:
        ctx.adj = adj
        return adj @ e

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, ctx.adj @ grad


def positive_edges(train_rows, n_users: int, n_items: int) -> np.ndarray:
    """``int64[n_edges, 2]``: the distinct ``(user, item)`` pairs of the label-1 rows of ``train_rows``."""
    rows = np.asarray(train_rows)
    if rows.ndim != 2 or rows.shape[1] < 3:
        raise ValueError(f"train rows must be int[n, 3] (user, item, label), got shape {rows.shape}")
    pos = rows[rows[:, 2] == 1, :2].astype(np.int64)
    bad = (pos[:, 0] < 0) | (pos[:, 0] >= n_users) | (pos[:, 1] < 0) | (pos[:, 1] >= n_items)
    if bad.any():
        u, i = pos[bad][0]
        raise ValueError(f"train row (user {u}, item {i}) lies outside users 0..{n_users - 1} / items 0..{n_items - 1}")
    return np.unique(pos, axis=0).reshape(-1, 2)


def normalized_adjacency(edges, n_users: int, n_items: int) -> Tensor:
    """``Â`` as a coalesced sparse COO tensor ``float32[n_users + n_items, n_users + n_items]`` from
    ``edges`` ``int[n, 2]`` distinct ``(user, item)`` pairs: ``Â[u, n_users + i] = Â[n_users + i, u]
    = 1 / √(deg u · deg i)``."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    u, i = edges[:, 0], edges[:, 1] + n_users
    n = n_users + n_items
    deg = np.bincount(u, minlength=n) + np.bincount(i, minlength=n)
    inv_sqrt = np.zeros(n)
    nz = deg > 0
    inv_sqrt[nz] = 1.0 / np.sqrt(deg[nz])
    w = inv_sqrt[u] * inv_sqrt[i]
    idx = torch.from_numpy(np.stack([np.concatenate([u, i]), np.concatenate([i, u])]))
    val = torch.from_numpy(np.concatenate([w, w])).float()
    return torch.sparse_coo_tensor(idx, val, (n, n), check_invariants=False).coalesce()


class LightGCN(Backbone):
    """LightGCN (see the module docstring).

    Args:
        n_users, n_items: sizes.
        dim: embedding dimension ``d``.
        n_layers: propagation layers ``L`` (0: a dot-product MF without biases).
        edges: ``int[n_edges, 2]`` distinct ``(user, item)`` training positives
            (:func:`positive_edges`).
        generator: ``torch.Generator`` for the initial embeddings (default: seeded 0).
    """

    name = "lightgcn"
    has_embeddings = True
    needs_train = True

    def __init__(self, n_users: int, n_items: int, dim: int, n_layers: int, edges,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(dim, int) or dim < 1 or not isinstance(n_layers, int) or n_layers < 0:
            raise ValueError(f"need int dim >= 1 and n_layers >= 0, got dim={dim!r}, n_layers={n_layers!r}")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        self.n_users, self.n_items, self.dim, self.n_layers = int(n_users), int(n_items), dim, n_layers
        self.user_emb = nn.Parameter(torch.randn(n_users, dim, generator=g) * INIT_STD)
        self.item_emb = nn.Parameter(torch.randn(n_items, dim, generator=g) * INIT_STD)
        self.register_buffer("edges", torch.as_tensor(np.asarray(edges, dtype=np.int64).reshape(-1, 2)))
        self.register_buffer("adjacency", normalized_adjacency(self.edges.numpy(), self.n_users, self.n_items),
                             persistent=False)
        self._csr: Tensor | None = None  # CSR copy of the adjacency in the embeddings' dtype / device
        self._cached: tuple | None = None  # (key, users, items): the last no-grad propagation

    @classmethod
    def build(cls, ds, cfg, text=None, seeds: RunSeeds | None = None, train=None) -> LightGCN:
        if train is None:
            raise ValueError("backbone 'lightgcn' needs the training rows (train=split.train)")
        if cfg.text != "none":
            raise ValueError(f"backbone 'lightgcn' has no semantic text; got text={cfg.text!r}")
        return cls(ds.n_users, ds.n_items, cfg.dim, cfg.n_iter, positive_edges(train, ds.n_users, ds.n_items),
                   (seeds or RunSeeds(cfg.seed)).weights())

    def checkpoint_payload(self) -> dict:
        return {"sizes": {"n_users": self.n_users, "n_items": self.n_items, "dim": self.dim,
                          "n_layers": self.n_layers}}

    @classmethod
    def from_checkpoint(cls, payload: dict) -> LightGCN:
        model = cls(**payload["sizes"], edges=payload["state_dict"]["edges"].numpy())
        model.load_state_dict(payload["state_dict"])
        return model

    # ------------------------------------------------------------------ propagation
    def _adjacency(self, like: Tensor) -> Tensor:
        adj = self._csr
        if adj is None or adj.dtype != like.dtype or adj.device != like.device:
            with warnings.catch_warnings():  # "sparse CSR support is in beta": the product is exact
                warnings.simplefilter("ignore", UserWarning)
                adj = self._csr = self.adjacency.to(device=like.device, dtype=like.dtype).to_sparse_csr()
        return adj

    def propagate(self) -> tuple[Tensor, Tensor]:
        """``(users float[n_users, d], items float[n_items, d])``: the layer mean ``E``.

        Differentiable when grad is enabled; under ``torch.no_grad`` the result is cached until the
        embeddings change (an optimiser step, ``load_state_dict``, ``.to``)."""
        key = (self.user_emb.data_ptr(), self.user_emb._version, self.item_emb.data_ptr(), self.item_emb._version,
               self.user_emb.dtype)
        if not torch.is_grad_enabled() and self._cached is not None and self._cached[0] == key:
            return self._cached[1], self._cached[2]
        e = torch.cat([self.user_emb, self.item_emb], 0)
        adj = self._adjacency(e)
        total = e
        for _ in range(self.n_layers):
            e = _SymmetricSpMM.apply(adj, e)
            total = total + e
        total = total / (self.n_layers + 1)
        users, items = total[: self.n_users], total[self.n_users :]
        self._cached = (key, users, items) if not torch.is_grad_enabled() else None
        return users, items

    def logits(self, users: Tensor, items: Tensor) -> Tensor:
        """``float[B]``: ``e_u · e_i`` after propagation; differentiable."""
        eu, ei = self.propagate()
        return (eu.index_select(0, users) * ei.index_select(0, items)).sum(-1)

    def user_embeddings(self, users: Tensor) -> Tensor:
        return self.propagate()[0].index_select(0, users)

    def content_embeddings(self, items: Tensor | None = None) -> Tensor:
        """``float[n, d]``: the final (layer-mean) embeddings of ``items`` (default: every item)."""
        ei = self.propagate()[1]
        return ei if items is None else ei.index_select(0, items)

    def l2_penalty(self) -> Tensor:
        """``½ ‖E⁽⁰⁾‖²`` over the whole user and item tables (multiply by λ)."""
        return 0.5 * (self.user_emb.pow(2).sum() + self.item_emb.pow(2).sum())

    # ------------------------------------------------------------------ training and scores
    def configure_training(self, cfg) -> None:
        self.optimizer = fast_adam(self.parameters(), cfg.lr)
        self.steps = 0

    def step_forward(self, users, items, anchor=None, other=None) -> StepOutput:
        """One propagation for the whole batch (every node), then the batch's logits."""
        eu, ei = self.propagate()
        logits = (eu.index_select(0, users) * ei.index_select(0, items)).sum(-1)
        ha = ho = None
        if anchor is not None:
            ha, ho = ei.index_select(0, anchor), ei.index_select(0, other)
        return StepOutput(logits, ha, ho, self.l2_penalty())

    def scores(self, users: Tensor) -> Tensor:
        """``float[U, n_items]`` sigmoid scores of every item (one matrix product per chunk)."""
        eu, ei = self.propagate()
        return torch.sigmoid_(eu.index_select(0, users) @ ei.t())

    def score_chunks(self, users: Tensor, chunk: int = 32, mode: str = "kgcn", progress: bool = False):
        """As :meth:`Backbone.score_chunks` with ``max(chunk, 1024)`` users per chunk (one GEMM each)."""
        return super().score_chunks(users, max(chunk, 1024), mode, progress)
