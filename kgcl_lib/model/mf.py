"""Biased matrix factorisation: the KGCN protocol's SVD-like simple baseline (issue 29).

For a labelled row ``(u, i, y)``::

    logit(u, i) = p_u · q_i + b_u + b_i + b,        score = sigmoid(logit)

trained by the project's trainer on the same labelled rows as KGCN with the same mean binary
cross-entropy (``L_base``, KGCN's Eq. 3) plus ``λ · ½ (‖P‖² + ‖Q‖² + ‖b_user‖² + ‖b_item‖²)`` over
the *whole* tables every step (as KGCN's ``l2_scope="table"``; the global bias ``b`` is not
regularised), with Adam (``torch.optim.Adam``, fused when available).  Full-catalogue scores are
the same logit for every item; an item's content embedding (the ``"dot"`` mode, Intra-list
diversity, alignment, uniformity; the contrastive loss if a CL variant is asked for) is ``q_i``.

Shapes: ``P float[n_users, d]``, ``Q float[n_items, d]``, biases ``float[n_users]``,
``float[n_items]``, ``float[]``.  Initialisation ``N(0, 0.1²)`` factors (LightGCN's), zero biases,
from the run's weight generator.  ``TrainConfig`` fields used: ``dim``, ``lr``, ``l2``,
``batch_size``, ``epochs``, ``patience``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..seeds import RunSeeds
from .backbone import Backbone, StepOutput

#: Standard deviation of the initial factors (LightGCN's code).
INIT_STD = 0.1


def fast_adam(params, lr: float) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the fused kernel when this torch has it (CPU: ≈ 8x the default
    for a 2M-float table), else the multi-tensor one; same arithmetic."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


class MatrixFactorization(Backbone):
    """Biased MF (see the module docstring).

    Args:
        n_users, n_items: sizes.
        dim: factor dimension ``d``.
        generator: ``torch.Generator`` for the initial factors (default: seeded 0).
    """

    name = "mf"
    has_embeddings = True

    def __init__(self, n_users: int, n_items: int, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        self.n_users, self.n_items, self.dim = int(n_users), int(n_items), dim
        self.user_emb = nn.Parameter(torch.randn(n_users, dim, generator=g) * INIT_STD)
        self.item_emb = nn.Parameter(torch.randn(n_items, dim, generator=g) * INIT_STD)
        self.user_bias = nn.Parameter(torch.zeros(n_users))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.global_bias = nn.Parameter(torch.zeros(()))

    @classmethod
    def build(cls, ds, cfg, text=None, seeds: RunSeeds | None = None, train=None) -> MatrixFactorization:
        if cfg.text != "none":
            raise ValueError(f"backbone 'mf' has no semantic text; got text={cfg.text!r}")
        return cls(ds.n_users, ds.n_items, cfg.dim, (seeds or RunSeeds(cfg.seed)).weights())

    def checkpoint_payload(self) -> dict:
        return {"sizes": {"n_users": self.n_users, "n_items": self.n_items, "dim": self.dim}}

    @classmethod
    def from_checkpoint(cls, payload: dict) -> MatrixFactorization:
        model = cls(**payload["sizes"])
        model.load_state_dict(payload["state_dict"])
        return model

    def logits(self, users: Tensor, items: Tensor) -> Tensor:
        """``float[B]`` logits of ``(users, items)`` (``int64[B]``); differentiable."""
        p = self.user_emb.index_select(0, users)
        q = self.item_emb.index_select(0, items)
        return (p * q).sum(-1) + self.user_bias.index_select(0, users) + self.item_bias.index_select(0, items) \
            + self.global_bias

    def user_embeddings(self, users: Tensor) -> Tensor:
        return self.user_emb.index_select(0, users)

    def content_embeddings(self, items: Tensor | None = None) -> Tensor:
        """``float[n, d]``: the item factors ``q_i`` of ``items`` (default: every item)."""
        return self.item_emb if items is None else self.item_emb.index_select(0, items)

    def l2_penalty(self) -> Tensor:
        """``½ (‖P‖² + ‖Q‖² + ‖b_user‖² + ‖b_item‖²)`` over the whole tables (multiply by λ)."""
        return 0.5 * (self.user_emb.pow(2).sum() + self.item_emb.pow(2).sum() + self.user_bias.pow(2).sum()
                      + self.item_bias.pow(2).sum())

    def configure_training(self, cfg) -> None:
        self.optimizer = fast_adam(self.parameters(), cfg.lr)
        self.steps = 0

    def step_forward(self, users, items, anchor=None, other=None) -> StepOutput:
        ha = ho = None
        if anchor is not None:
            ha, ho = self.item_emb.index_select(0, anchor), self.item_emb.index_select(0, other)
        return StepOutput(self.logits(users, items), ha, ho, self.l2_penalty())

    def scores(self, users: Tensor) -> Tensor:
        """``float[U, n_items]`` sigmoid scores of every item (one matrix product per chunk)."""
        logits = torch.addmm(self.item_bias.unsqueeze(0), self.user_emb.index_select(0, users), self.item_emb.t())
        return torch.sigmoid_(logits + (self.user_bias.index_select(0, users) + self.global_bias).unsqueeze(1))

    def score_chunks(self, users: Tensor, chunk: int = 32, mode: str = "kgcn", progress: bool = False):
        """As :meth:`Backbone.score_chunks` with ``max(chunk, 1024)`` users per chunk (one GEMM each)."""
        return super().score_chunks(users, max(chunk, 1024), mode, progress)
