"""Item popularity: the non-personalised simple baseline of issue 29 (no training, no hyper-parameters).

An item's popularity is its number of *training positives* (``split.train`` rows with label 1):
``pop[i] = #{(u, i, 1) ∈ train}``.  Every user gets the same full-catalogue ranking, by ``pop``
(ties: :func:`torch.topk`'s order).

CTR (AUC / F1 on labelled rows) needs a probability; the logit of a row ``(u, i)`` is

    logit_i = log(pop[i] + 1) − log(m + 1),    m = (# training negatives) / n_items,

so ``p_i = (pop[i] + 1) / (pop[i] + m + 2)``: strictly increasing in ``pop[i]`` (AUC is exactly
popularity's AUC) and ½ where an item has as many positives as the mean number of sampled
negatives per item -- under KGCN's protocol (one unrated item drawn uniformly per positive) ``m``
estimates an item's negatives, so ``p_i`` is a smoothed positive rate.  Only F1 (threshold ½)
depends on this calibration.

No embeddings: the ``"dot"`` scoring mode, Intra-list diversity, alignment and uniformity are
undefined for this backbone (``has_embeddings = False``; the evaluation stores NaN).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..seeds import RunSeeds
from .backbone import Backbone, StepOutput


def item_popularity(train_rows, n_items: int) -> np.ndarray:
    """``int64[n_items]``: training positives per item of ``(user, item, label)`` rows ``int[n, 3]``."""
    rows = np.asarray(train_rows)
    if rows.ndim != 2 or rows.shape[1] < 3:
        raise ValueError(f"train rows must be int[n, 3] (user, item, label), got shape {rows.shape}")
    items = rows[rows[:, 2] == 1, 1].astype(np.int64)
    bad = (items < 0) | (items >= n_items)
    if bad.any():
        raise ValueError(f"train rows hold item {int(items[bad][0])} outside 0..{n_items - 1}")
    return np.bincount(items, minlength=n_items).astype(np.int64)


class Popularity(Backbone):
    """Popularity scorer (see the module docstring).

    Args:
        n_users, n_items: sizes.
        train_rows: ``int[n, 3]`` training ``(user, item, label)`` rows.
    """

    name = "pop"
    trainable = False
    has_embeddings = False
    needs_train = True

    def __init__(self, n_users: int, n_items: int, train_rows):
        super().__init__()
        self.n_users, self.n_items = int(n_users), int(n_items)
        rows = np.asarray(train_rows)
        pop = item_popularity(rows, self.n_items)
        mean_neg = float((rows[:, 2] == 0).sum()) / max(self.n_items, 1) if len(rows) else 0.0
        self.register_buffer("popularity", torch.from_numpy(pop))
        logit = torch.log(torch.from_numpy(pop).double() + 1.0) - math.log(mean_neg + 1.0)
        self.register_buffer("item_logit", logit.float())

    @classmethod
    def build(cls, ds, cfg, text=None, seeds: RunSeeds | None = None, train=None) -> Popularity:
        if train is None:
            raise ValueError("backbone 'pop' needs the training rows (train=split.train)")
        if cfg.text != "none":
            raise ValueError(f"backbone 'pop' has no semantic text; got text={cfg.text!r}")
        return cls(ds.n_users, ds.n_items, train)

    def checkpoint_payload(self) -> dict:
        return {"sizes": {"n_users": self.n_users, "n_items": self.n_items}}

    @classmethod
    def from_checkpoint(cls, payload: dict) -> Popularity:
        model = cls(**payload["sizes"], train_rows=np.zeros((0, 3), np.int64))
        model.load_state_dict(payload["state_dict"])
        return model

    def logits(self, users: Tensor, items: Tensor) -> Tensor:
        """``float32[B]``: ``item_logit[items]`` (the same for every user)."""
        return self.item_logit.index_select(0, torch.as_tensor(items, dtype=torch.int64, device=self.item_logit.device))

    def user_embeddings(self, users: Tensor) -> Tensor:
        raise ValueError("backbone 'pop' has no user embeddings: scoring mode 'dot' is undefined for it")

    def content_embeddings(self, items: Tensor | None = None) -> Tensor:
        raise ValueError("backbone 'pop' has no item embeddings (Intra-list diversity / alignment undefined)")

    def step_forward(self, users, items, anchor=None, other=None) -> StepOutput:
        raise ValueError("backbone 'pop' is not trained")

    def scores(self, users: Tensor) -> Tensor:
        """``float32[U, n_items]``: ``sigmoid(item_logit)`` -- the popularity order -- for every user."""
        return torch.sigmoid(self.item_logit).unsqueeze(0).expand(len(users), -1).clone()
