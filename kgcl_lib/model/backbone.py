"""The backbone seam: what the trainer, the evaluation and the CLI ask of a recommender model.

A *backbone* is the part of KGCL (Kim et al.) that the paper swaps: KGCN in the paper, a
simple baseline (popularity, MF, LightGCN) or RippleNet here.  Everything around it -- the loss
of Eq. 5, joint batching of labelled rows and content pairs, early stopping, CTR and top-K
evaluation, checkpoints -- only calls the methods of :class:`Backbone`.

Loss of one step (the trainer, :func:`kgcl_lib.train.train_step`)::

    out  = model.step_forward(users, items, anchor, other)          # StepOutput
    L    = γ·BCE(out.logits, labels) + (1−γ)·CL(out.anchor, out.other) + λ·out.l2 (+ out.extra)
    model.step_update(loss=L, out=out)                              # backward + optimiser step

so a backbone decides what its parameters are, what ``½‖Θ‖²`` covers and how a step updates them
(KGCN: row-sparse :class:`~kgcl_lib.model.table_adam.TableAdam`; a simple backbone: the default
below, ``torch.optim.Adam`` over :meth:`Backbone.parameters`).

Order of the calls in one run: :meth:`Backbone.build` (or :meth:`Backbone.from_checkpoint`) →
``.to(device)`` → :meth:`configure_training` (→ :meth:`load_optimizer_state` when resuming) → per
epoch: per batch ``step_forward`` / ``step_update``, then :meth:`end_epoch` (returns a mark) →
valid :meth:`predict` → after the last epoch (and restoring the best epoch's ``state_dict``)
:meth:`end_training` with that epoch's mark → test :meth:`predict`, :meth:`topk`,
:meth:`content_embeddings`.  A backbone with ``trainable = False`` (popularity) is built and
evaluated; the trainer runs no epochs.

Shapes: ``B`` batch rows, ``p`` content pairs, ``d`` embedding width, ``U`` users asked for.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ..seeds import RunSeeds

#: Scoring modes of :meth:`Backbone.score_chunks`: ``"kgcn"`` = the backbone's own CTR score
#: (the name stored in ``EvalConfig.scoring`` since KGCN was the only backbone); ``"dot"`` = the
#: paper's Fig. 4 inference ``sigmoid(u · h_c)``.
SCORING_MODES = ("kgcn", "dot")


def check_sizes(cfg, names: dict[str, str], text_dim_label: str = "text_dim") -> None:
    """Shared check of a model config's sizes: every ``names`` field (``{field: label in the
    message}``) an int >= 1, ``text_dim`` None or an int >= 1; ``ValueError`` naming the value."""
    for name, label in names.items():
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{label} must be an int >= 1, got {v!r}")
    if cfg.text_dim is not None and (not isinstance(cfg.text_dim, int) or cfg.text_dim < 1):
        raise ValueError(f"{text_dim_label} must be None or an int >= 1, got {cfg.text_dim!r}")


@dataclass(frozen=True, eq=False)
class StepOutput:
    """What one training step's forward pass hands the trainer.

    Attributes:
        logits: ``float[B]`` CTR logits of the batch's (user, item) rows (``L_base`` = BCE).
        anchor, other: ``float[p, d]`` item representations the contrastive loss (Eq. 4) compares,
            or ``None`` without content pairs.
        l2: scalar ``½‖Θ‖²`` of this step (the trainer multiplies by λ); a backbone may apply part of
            λ's gradient itself (KGCN's tables) and report only what it wants logged here.
        extra: scalar extra loss term added as is (e.g. RippleNet's KG-embedding term), or ``None``.
        state: the backbone's own bookkeeping for :meth:`Backbone.step_update` (anything).
    """

    logits: Tensor
    anchor: Tensor | None
    other: Tensor | None
    l2: Tensor
    extra: Tensor | None = None
    state: Any = None


class Backbone(nn.Module, ABC):
    """A recommender the KGCL trainer can train and evaluate (see the module docstring).

    Subclasses set :attr:`name` (the registry key), ``n_users`` / ``n_items`` and implement the
    abstract methods; the others have defaults that fit an embedding model trained with Adam.
    """

    #: registry name (``TrainConfig.backbone``, ``--backbone``)
    name: ClassVar[str] = ""
    #: ``False``: nothing to fit (e.g. popularity); the trainer runs no epochs
    trainable: ClassVar[bool] = True
    #: ``True``: :meth:`build` also takes ``train=`` -- the run's labelled training rows
    #: (``split.train``, ``int64[n, 3]``), for a backbone whose structure comes from the training
    #: data (RippleNet's ripple sets start from each user's training positives)
    needs_train: ClassVar[bool] = False
    #: ``False``: no user / item embeddings (popularity): the evaluation stores NaN for Intra-list
    #: diversity, alignment and uniformity, and the ``"dot"`` mode is undefined
    has_embeddings: ClassVar[bool] = True
    n_users: int
    n_items: int

    # ------------------------------------------------------------------ construction
    @classmethod
    @abstractmethod
    def build(cls, ds, cfg, text=None, seeds: RunSeeds | None = None) -> Backbone:
        """A fresh model for dataset ``ds`` (:class:`~kgcl_lib.data.KGDataset`) and run config
        ``cfg`` (:class:`~kgcl_lib.train.TrainConfig`); ``text``: TextEmbeddings-like
        (``vectors float32[n_items, D]``, ``has_text bool[n_items]``) when ``cfg.text ==
        "synopsis"``; ``seeds``: the run's random streams (default ``RunSeeds(cfg.seed)``).  A
        backbone with :attr:`needs_train` takes ``train=`` too (see there)."""

    def checkpoint_payload(self) -> dict:
        """What :meth:`from_checkpoint` needs besides ``state_dict`` (sizes, hyper-parameters)."""
        return {}

    @classmethod
    def from_checkpoint(cls, payload: dict) -> Backbone:
        """The model saved by :func:`kgcl_lib.train.save_checkpoint` (``payload["state_dict"]``
        plus :meth:`checkpoint_payload`'s keys)."""
        raise NotImplementedError(f"backbone {cls.name!r} cannot be loaded from a checkpoint")

    # ------------------------------------------------------------------ representations
    @abstractmethod
    def logits(self, users: Tensor, items: Tensor) -> Tensor:
        """CTR logits ``float[B]`` of the pairs ``users, items`` (``int64[B]``); differentiable."""

    @abstractmethod
    def user_embeddings(self, users: Tensor) -> Tensor:
        """``float[U, d]`` user vectors (``u`` of the ``"dot"`` scoring mode)."""

    @abstractmethod
    def content_embeddings(self, items: Tensor | None = None) -> Tensor:
        """Content representations ``h_c`` ``float[n, d]`` of ``items`` (default: every item):
        what the contrastive loss compares, alignment / uniformity and Intra-list diversity read."""

    # ------------------------------------------------------------------ training
    def configure_training(self, cfg) -> None:
        """Make the optimiser for run config ``cfg`` (uses ``cfg.lr``); default: torch Adam."""
        self.optimizer = torch.optim.Adam(self.parameters(), lr=cfg.lr)
        self.steps = 0

    @abstractmethod
    def step_forward(self, users: Tensor, items: Tensor, anchor: Tensor | None = None,
                     other: Tensor | None = None) -> StepOutput:
        """The forward pass of one step on ``B`` labelled rows and ``p`` content pairs
        (``anchor``, ``other``: ``int64[p]`` item ids, or ``None``)."""

    def step_update(self, loss: Tensor, out: StepOutput) -> None:
        """Update the parameters from the step's total ``loss`` (default: Adam on autograd)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1

    def end_epoch(self) -> Any:
        """Called after an epoch's last step, before validation; returns a mark that
        :meth:`end_training` may be given back (default: the number of steps taken)."""
        return getattr(self, "steps", 0)

    def end_training(self, mark: Any) -> None:
        """Called once after the last epoch with the mark of the epoch whose weights the run
        returns (they are already loaded).  Default: nothing to do."""

    def optimizer_state_dict(self) -> dict | None:
        opt = getattr(self, "optimizer", None)
        return None if opt is None else opt.state_dict()

    def load_optimizer_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)

    # ------------------------------------------------------------------ scores
    @torch.no_grad()
    def predict(self, rows, batch_size: int = 65536) -> np.ndarray:
        """``float32[n]`` sigmoid scores of ``(user, item, ...)`` rows (``int[n, ≥2]``), batched."""
        dev = self.device
        rows = torch.as_tensor(rows, dtype=torch.int64)
        out = []
        for s in range(0, len(rows), batch_size):
            r = rows[s : s + batch_size].to(dev)
            out.append(torch.sigmoid(self.logits(r[:, 0], r[:, 1])).cpu())
        return torch.cat(out).numpy() if out else np.zeros(0, np.float32)

    @property
    def device(self) -> torch.device:
        """Where the model's tensors live."""
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def scores(self, users: Tensor) -> Tensor:
        """``float32[U, n_items]`` own-mode scores (sigmoid probabilities) of every item for a
        chunk of users.  Default: ``sigmoid(logits)`` of every (user, item) pair."""
        U = len(users)
        items = torch.arange(self.n_items, device=users.device)
        return torch.sigmoid(self.logits(users.repeat_interleave(self.n_items), items.repeat(U))).view(U, self.n_items)

    @torch.no_grad()
    def score_chunks(self, users: Tensor, chunk: int = 32, mode: str = "kgcn",
                     progress: bool = False) -> Iterator[tuple[int, Tensor]]:
        """Yield ``(start, float32[c, n_items])`` scores of every item for consecutive chunks of
        ``users`` (``int64[U]`` on the model's device): ``chunk`` users per chunk in the backbone's
        own mode, ``max(chunk, 1024)`` in ``"dot"`` mode."""
        check_mode(mode)
        if mode == "dot":
            hc = self.content_embeddings()
            step = max(chunk, 1024)
            for s in range(0, len(users), step):
                u = self.user_embeddings(users[s : s + step])
                yield s, torch.sigmoid(u @ hc.t())
            return
        for s in range(0, len(users), chunk):
            yield s, self.scores(users[s : s + chunk])

    @torch.no_grad()
    def score_all(self, users, chunk: int = 32, mode: str = "kgcn", progress: bool = False) -> Tensor:
        """Scores ``float32[U, n_items]`` (sigmoid probabilities) of every item for ``users``."""
        users = torch.as_tensor(users, dtype=torch.int64).to(self.device)
        out = torch.empty(len(users), self.n_items, device=users.device)
        for s, scores in self.score_chunks(users, chunk, mode, progress):
            out[s : s + len(scores)] = scores
        return out

    @torch.no_grad()
    def topk(self, users, k: int, exclude=None, mode: str = "kgcn", chunk: int = 32, progress: bool = False) -> Tensor:
        """Top-``k`` items ``int64[U, k]`` (best first) per user.

        ``exclude``: ``scipy.sparse.csr_matrix [n_users_total, n_items]`` whose non-zeros (e.g. the
        training rows) are masked with ``-inf`` before ranking, or ``None``.  Ranked chunk by
        chunk (:meth:`score_chunks`), so memory stays ``O(chunk · n_items)``.
        """
        users_np = np.asarray(users.cpu() if isinstance(users, Tensor) else users, dtype=np.int64)
        dev = self.device
        users_t = torch.from_numpy(users_np).to(dev)
        k = min(int(k), self.n_items)
        out = torch.empty(len(users_t), k, dtype=torch.int64)
        for s, scores in self.score_chunks(users_t, chunk, mode, progress):
            if exclude is not None:
                sub = exclude[users_np[s : s + len(scores)]]
                rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
                cols = sub.indices.astype(np.int64)
                scores[torch.from_numpy(rows).to(dev), torch.from_numpy(cols).to(dev)] = -math.inf
            out[s : s + len(scores)] = torch.topk(scores, k, dim=1).indices.cpu()
        return out


def check_mode(mode: str) -> None:
    if mode not in SCORING_MODES:
        raise ValueError(f"unknown scoring mode {mode!r}; expected one of {SCORING_MODES}")
