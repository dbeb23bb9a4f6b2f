"""Trainer, run config, checkpoints and CLI for the KGCL model (:mod:`kgcl_lib.model`).

One run = one frozen :class:`TrainConfig`.  :func:`train` samples the neighbour table once from
the seed, trains with joint batching of user-content rows and content-content pairs, reports
valid AUC/F1 every epoch, optionally stops early, and returns a :class:`TrainResult`.

Loss (Eq. 5): ``L = γ·L_base + (1−γ)·CL + λ·½‖Θ_batch‖²`` where ``L_base`` is the mean BCE over
the batch's labelled rows, ``CL`` the content contrastive loss (:func:`~kgcl_lib.model.cl_bce_loss`
or in-batch InfoNCE) over the content-pair batch, and the L2 term covers the user / entity rows
the batch used plus the relation table and all weight matrices (KGCN's ``l2_loss``; biases
excluded).  Without pairs (``variant="base"``) the loss is ``L_base + λ·½‖Θ_batch‖²`` (γ unused).

Joint batching: ``steps = ceil(n_train / batch_size)`` per epoch and the content-pair batch is
``ceil(n_pairs / steps)``, so both are traversed once per epoch in the same number of steps.

Optimiser
---------
Adam (``torch.optim.Adam``) for the dense weights (relations, aggregators, α) and
:class:`TableAdam` for the user and entity tables, which only reads and writes the rows a batch
touches.  ``optimizer="adam"`` (default) keeps KGCN's *dense* Adam semantics (idle rows keep
coasting on their momentum; those updates are deferred and applied in closed form when the row
is next used -- equal to dense Adam up to ε, tested); ``"lazy_adam"`` is ``torch.optim.SparseAdam``'s lazy Adam (idle rows frozen,
moments not decayed -- under-trains at the paper's learning rates); ``"dense_adam"`` rewrites the
whole tables every step (reference; what makes RecBole's Book-Crossing epoch slow).

L2 scope: KGCN's reference code regularises the *whole* user/entity tables every step; the
default here (``l2_scope="batch"``) regularises the rows a batch uses, which is what makes
row-sparse updates possible.  ``l2_scope="table"`` (with ``optimizer="dense_adam"``) reproduces
KGCN's choice for comparison.

Determinism: the same seed and device give identical losses on CPU (all randomness comes from
one ``torch.Generator`` and one ``numpy.random.Generator`` made from the seed; on CUDA,
``index_add_`` uses atomics, so enable ``torch.use_deterministic_algorithms`` for bitwise
repeats).

Test-set selection: with ``restore_best`` (default) the test metrics are those of the epoch with
the best valid AUC.

CLI::

    python -m kgcl_lib.train --dataset book-crossing --paper --seed 0 --json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .data import sample_neighbors
from .model import AGGREGATORS, NEIGHBOR_REDUCE, KGCN, ModelConfig, cl_bce_loss, info_nce_loss
from .storage import atomic_path, write_json

from .constants import TRAIN_TEXTS, VARIANT_TEMPLATE, VARIANTS  # noqa: F401  (VARIANT_TEMPLATE: pair template per variant)

CL_LOSSES = ("bce", "infonce")
OPTIMIZERS = ("adam", "lazy_adam", "dense_adam")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (saved as ``config.json`` next to its outputs).

    Attributes:
        dataset: dataset name for ``kgcl_lib.data.load_dataset`` (default: ``"ml-100k"``).
        variant: ``"base"`` (L_base only), ``"cl_genre"`` or ``"cl_title_genre"`` (+ CL with
            pairs from that template) (default: ``"base"``).
        text: ``"none"`` or ``"synopsis"`` (item nodes start from MLP_α(E(synopsis))).
        text_model: encoder name passed to ``kgcl_lib.text.item_text_embeddings`` (``None`` =
            that module's default).
        n_pairs: pairs per anchor for ``build_pairs`` (top-n / bottom-n) (default: 10).
        seed: seeds the split, the neighbour table, the initial weights and the shuffles.
        epochs: maximum number of epochs (default: 10).
        dim, n_iter, n_neighbors, aggregator, neighbor_reduce: :class:`~kgcl_lib.model.ModelConfig`.
        lr: Adam learning rate η.  l2: λ.  batch_size: labelled user-content rows per step.
        gamma: γ of Eq. 5, in [0, 1] (default: 0.8, Table 1).
        cl_loss: ``"bce"`` (Eq. 4) or ``"infonce"`` (Eq. 1 on the positive pairs, in-batch negatives).
        temperature: InfoNCE temperature t (default: 0.1).
        patience: early stopping after this many epochs without a better valid AUC; 0 = off.
        restore_best: evaluate test on the epoch with the best valid AUC (default: True).
        optimizer: ``"adam"`` (dense-Adam semantics, as KGCN, computed row-sparsely with deferred
            idle updates; default), ``"lazy_adam"`` (SparseAdam semantics) or ``"dense_adam"``
            (dense Adam over the whole tables every step; reference, slow).  See :class:`TableAdam`.
        l2_scope: ``"batch"`` (default; λ on the user/entity rows the batch used, plus relations
            and weights) or ``"table"`` (KGCN's reference code: λ on the *whole* user and entity
            tables every step; needs ``optimizer="dense_adam"``, slow).
        device: ``"auto"`` (cuda when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        threads: torch intra-op threads; 0 = leave torch's default (default: 1; on a shared 2-core
            machine one thread is often faster).
        eval_batch_size: rows per forward pass during evaluation (default: 65,536).
    """

    dataset: str = "ml-100k"
    variant: str = "base"
    text: str = "none"
    text_model: str | None = None
    n_pairs: int = 10
    seed: int = 0
    epochs: int = 10
    dim: int = 32
    n_iter: int = 2
    n_neighbors: int = 4
    aggregator: str = "sum"
    neighbor_reduce: str = "mean"
    lr: float = 2e-2
    l2: float = 1e-7
    batch_size: int = 2048
    gamma: float = 0.8
    cl_loss: str = "bce"
    temperature: float = 0.1
    patience: int = 0
    restore_best: bool = True
    optimizer: str = "adam"
    l2_scope: str = "batch"
    device: str = "auto"
    threads: int = 1
    eval_batch_size: int = 65536

    def __post_init__(self):
        def bad(name, value, why):
            raise ValueError(f"TrainConfig.{name}={value!r}: {why}")

        if not (0.0 <= self.gamma <= 1.0):
            bad("gamma", self.gamma, "γ must lie in [0, 1]")
        if self.variant not in VARIANTS:
            bad("variant", self.variant, f"expected one of {VARIANTS}")
        if self.text not in TRAIN_TEXTS:
            bad("text", self.text, f"expected one of {TRAIN_TEXTS}")
        if self.cl_loss not in CL_LOSSES:
            bad("cl_loss", self.cl_loss, f"expected one of {CL_LOSSES}")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", self.optimizer, f"expected one of {OPTIMIZERS}")
        if self.l2_scope not in ("batch", "table"):
            bad("l2_scope", self.l2_scope, "expected 'batch' or 'table'")
        if self.l2_scope == "table" and self.optimizer != "dense_adam":
            bad("l2_scope", self.l2_scope, "whole-table L2 gives every row a gradient each step; use optimizer='dense_adam'")
        if self.aggregator not in AGGREGATORS:
            bad("aggregator", self.aggregator, f"unknown aggregator, expected one of {AGGREGATORS}")
        if self.neighbor_reduce not in NEIGHBOR_REDUCE:
            bad("neighbor_reduce", self.neighbor_reduce, f"expected one of {NEIGHBOR_REDUCE}")
        for name in ("n_neighbors", "n_iter", "dim", "epochs", "batch_size", "eval_batch_size", "n_pairs"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                bad(name, v, "must be an int >= 1" + (" (K < 1)" if name == "n_neighbors" else ""))
        if self.lr <= 0:
            bad("lr", self.lr, "must be > 0")
        if self.l2 < 0:
            bad("l2", self.l2, "must be >= 0")
        if self.temperature <= 0:
            bad("temperature", self.temperature, "must be > 0")
        if self.patience < 0 or self.threads < 0:
            bad("patience/threads", (self.patience, self.threads), "must be >= 0")

    def model_config(self, text_dim: int | None = None) -> ModelConfig:
        return ModelConfig(self.dim, self.n_iter, self.n_neighbors, self.aggregator, self.neighbor_reduce, text_dim)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**d)


def paper_settings(dataset: str) -> dict:
    """Table 1 hyper-parameters for ``dataset`` as :class:`TrainConfig` keyword arguments.

    ``book-crossing``: K=4, L=1, d=64, η=2e-4, λ=2e-5, batch 256, concat.
    Movie datasets: K=4, L=2, d=32, η=2e-2, λ=1e-7, concat, batch 65,536 (``ml-20m``; the paper
    used 30,000 with CL -- pass ``batch_size=30000`` for the CL variants).  For ``ml-100k``
    (≈66k training rows) a 65,536 batch would mean one Adam step per epoch, so we use 2,048
    (≈32 steps/epoch, RecBole's KGCN default and the peer benchmark's setting) and 20 epochs.
    """
    name = dataset.lower()
    if name in ("book-crossing", "book", "bx"):
        return dict(n_neighbors=4, n_iter=1, dim=64, lr=2e-4, l2=2e-5, batch_size=256, aggregator="concat", epochs=10)
    if name in ("ml-100k",):
        return dict(n_neighbors=4, n_iter=2, dim=32, lr=2e-2, l2=1e-7, batch_size=2048, aggregator="concat", epochs=20)
    if name.startswith("ml-") or name.startswith("movielens"):
        return dict(n_neighbors=4, n_iter=2, dim=32, lr=2e-2, l2=1e-7, batch_size=65536, aggregator="concat", epochs=10)
    raise ValueError(f"no paper settings for dataset {dataset!r} (known: book-crossing, ml-100k, ml-20m)")


# ---------------------------------------------------------------------------- optimiser
class TableAdam:
    """Adam for the big embedding tables, touching only the rows a batch uses.

    Three semantics (``mode``):

    * ``"deferred"`` (default): *dense* Adam -- the optimiser KGCN uses -- computed row-sparsely.
      A row that gets no gradient for ``Δ`` steps keeps moving under dense Adam with its decaying
      momentum: ``m ← β1 m``, ``v ← β2 v``, ``p ← p − η m̂_s / (√v̂_s + ε)``.  We defer those
      ``Δ`` updates and apply them in closed form when the row is next used (and at
      :meth:`flush`): ``p −= η (m/√v) Σ_{k=1..Δ} ρ^k c(t0+k)``, ``m ← β1^Δ m``, ``v ← β2^Δ v``
      with ``ρ = β1/√β2`` and ``c(s) = √(1−β2^s)/(1−β1^s)`` (bias corrections).  This equals dense
      Adam except that ``ε`` is dropped inside the idle stretch (relative effect ``ε/√v̂``) and the
      sum is truncated after ``H = 256`` idle steps (``ρ^256 < 1e-11``).  Tested against dense Adam.
    * ``"lazy"``: ``torch.optim.SparseAdam`` / TF ``LazyAdam`` semantics -- idle rows do not move
      and their moments do not decay.  Rare rows therefore move ~10x less per gradient than under
      dense Adam (a dense-Adam hit keeps pushing for ~1/(1−ρ) ≈ 10 steps), so the paper's
      learning rates under-train (Book-Crossing at η=2e-4: valid AUC ≈ 0.51 after 2 epochs).
    * ``"dense"``: plain dense Adam over the whole table every step (reference; slow).

    Usage per step: ``tick()``; ``rows = begin(name, ids)`` (up-to-date rows, a leaf copy for the
    forward pass); backward; ``finish(name, ids, rows.grad)``.  The bias correction uses the
    global step, as ``torch.optim.Adam``.
    """

    H = 256

    def __init__(self, params: dict[str, Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8, mode: str = "deferred",
                 table_l2: float = 0.0):
        if mode not in ("deferred", "lazy", "dense"):
            raise ValueError(f"unknown TableAdam mode {mode!r}")
        self.lr, self.betas, self.eps, self.mode = lr, betas, eps, mode
        self.table_l2 = table_l2  # dense mode only: adds λ·p (gradient of λ·½‖P‖²) to every row
        self.params = params
        self.state = {
            # m and v side by side ([n, 2, d]) so one gather / scatter moves both
            k: {"mv": torch.zeros(len(p) if mode != "dense" else 0, 2, p.shape[1], dtype=p.dtype, device=p.device),
                "last": torch.zeros(len(p), dtype=torch.int64, device=p.device)}
            for k, p in params.items()
        }
        self.t = 0
        #: use the compiled row kernels when available (CPU float32); False forces pure torch
        self.use_cpp = True
        self._dense: dict[str, torch.optim.Adam] = {}
        if mode == "dense":  # one fused (single-pass) torch Adam per table; m, v live there
            for k, p in params.items():
                try:
                    self._dense[k] = torch.optim.Adam([p], lr=lr, betas=betas, eps=eps, fused=True)
                except (RuntimeError, ValueError):  # fused kernel unavailable for this device/dtype
                    self._dense[k] = torch.optim.Adam([p], lr=lr, betas=betas, eps=eps, foreach=True)
        self._pending: dict[str, tuple[Tensor, Tensor]] = {}
        dev = next(iter(params.values())).device
        self._finf = torch.zeros(0, device=dev)  # F(t0, H) for t0 = 0, 1, ...
        self._window: dict[int, Tensor] = {}
        b1, b2 = betas
        self._rho = b1 / math.sqrt(b2)
        self._rho_pow = self._rho ** np.arange(self.H + 1, dtype=np.float64)
        self._window64: tuple[int, np.ndarray] | None = None  # (target, float64 window) of the last step
        # (β1^Δ, β2^Δ) for idle stretches Δ < 4H, so the row kernel needs no pow() per row
        deltas = np.arange(4 * self.H, dtype=np.float64)
        self._decay = torch.from_numpy(np.stack([b1**deltas, b2**deltas], 1).astype(np.float32)).contiguous()

    def tick(self) -> None:
        """Advance the global step (once per optimisation step, before :meth:`begin`)."""
        self.t += 1

    # -- closed-form idle updates ------------------------------------------------------------
    def _c(self, s: np.ndarray) -> np.ndarray:
        b1, b2 = self.betas
        s = np.asarray(s, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s > 0, np.sqrt(1 - b2**s) / (1 - b1**s), 0.0)

    def _tables(self, target: int, dev) -> tuple[Tensor, Tensor]:
        """``(win [H+1], finf [≥ target−H+1])`` float32 idle-update factors for ``target``.

        ``win[Δ] = F(target − Δ, Δ)`` for ``Δ < H``; ``finf[t0] = F(t0, H)`` (rows idle for
        ``≥ H`` steps; the tail beyond H idle steps is below float32 resolution).
        """
        H = self.H
        win = self._window.get(target)
        if win is None:
            rho = self._rho
            prev = self._window64
            if prev is not None and prev[0] == target - 1:
                # one step on: F_t[Δ] = F_{t−1}[Δ−1] + ρ^Δ c(t)  (a shift and an add)
                win_np = np.empty(H + 1)
                win_np[0] = 0.0
                win_np[1:] = prev[1][:-1] + self._rho_pow[1:] * float(self._c(target))
            else:
                j = np.arange(H, dtype=np.float64)
                # Δ < H: F = ρ^Δ Σ_{j<Δ} ρ^-j c(target − j)   (depends on Δ only, given target)
                w = rho ** (-j) * self._c(target - j)
                win_np = np.concatenate([[0.0], np.cumsum(w)]) * self._rho_pow
            self._window64 = (target, win_np)
            win = torch.from_numpy(win_np.astype(np.float32)).to(dev)
            self._window = {target: win}  # one target per step; keep only the latest
        need = target - H + 1
        if need > len(self._finf):
            n_have = len(self._finf)
            t0s = np.arange(n_have, max(need, 2 * n_have, 1024), dtype=np.float64)
            k = np.arange(1, H + 1, dtype=np.float64)
            extra = (self._rho ** k[None, :] * self._c(t0s[:, None] + k[None, :])).sum(1)
            self._finf = torch.cat([self._finf, torch.from_numpy(extra.astype(np.float32)).to(dev)])
        return win, self._finf

    def _idle_factor(self, target: int, delta: Tensor, t0: Tensor) -> Tensor:
        """``F(t0, Δ) = Σ_{k=1..Δ} ρ^k c(t0+k)`` for rows idle from ``t0`` to ``target`` (float32)."""
        win, finf = self._tables(target, delta.device)
        out = win[delta.clamp(max=self.H)]
        old = delta >= self.H
        if bool(old.any()):
            out[old] = finf[t0[old]]
        return out

    def _kernels(self, param: Tensor):
        """The compiled row kernels when usable for ``param`` (CPU float32, deferred/lazy)."""
        if not self.use_cpp or self.mode == "dense" or param.device.type != "cpu" or param.dtype != torch.float32:
            return None
        from .kernels import cpp_kernels

        return cpp_kernels()

    @torch.no_grad()
    def _catch_up(self, name: str, ids: Tensor, target: int):
        """Rows ``ids`` brought to step ``target``: returns ``(p, m, v)`` row copies."""
        st, param = self.state[name], self.params[name]
        p = param.index_select(0, ids)
        if self.mode == "dense":  # moments live in the fused torch optimiser
            return p, None
        mv = st["mv"].index_select(0, ids)
        if self.mode != "deferred":
            return p, mv
        t0 = st["last"].index_select(0, ids)
        delta = target - t0
        if bool((delta > 0).any()):
            b1, b2 = self.betas
            F_ = self._idle_factor(target, delta, t0)
            m, v = mv[:, 0], mv[:, 1]
            ratio = torch.where(v > 0, m / v.sqrt(), torch.zeros_like(m))
            p.sub_(ratio * (self.lr * F_).unsqueeze(1))
            dd = delta.to(torch.float64)
            decay = torch.stack([torch.pow(b1, dd), torch.pow(b2, dd)], 1).to(mv.dtype)  # [n, 2]
            mv.mul_(decay.unsqueeze(2))
        return p, mv

    def begin(self, name: str, ids: Tensor) -> Tensor:
        """Leaf copy ``[n, d]`` of rows ``ids`` (unique), up to date, with ``requires_grad``."""
        param = self.params[name]
        mod = self._kernels(param)
        if mod is not None:  # one fused C++ pass: gather + deferred idle updates
            st, target = self.state[name], self.t - 1
            win, finf = self._tables(target, param.device)
            b1, b2 = self.betas
            p, mv = mod.rows_begin(param, st["mv"], st["last"], ids.contiguous(), target, win, finf, self._decay, self.lr,
                                   b1, b2, self.mode == "deferred")
            self._pending[name] = mv
            return p.requires_grad_()
        p, mv = self._catch_up(name, ids, self.t - 1)
        self._pending[name] = mv
        return p.requires_grad_()

    @torch.no_grad()
    def finish(self, name: str, ids: Tensor, rows: Tensor, grad: Tensor | None, l2: float = 0.0) -> None:
        """Adam step ``t`` on rows ``ids`` (``rows`` = the tensor :meth:`begin` returned).

        ``l2``: adds ``l2 · rows`` to the gradient -- the gradient of ``l2 · ½‖rows‖²``, KGCN's L2
        term on the rows a batch used -- inside the update instead of through autograd.
        """
        b1, b2 = self.betas
        st, param = self.state[name], self.params[name]
        mv = self._pending.pop(name)
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        mod = self._kernels(param)
        if mod is not None:  # one fused C++ pass: Adam step + scatter of p, m, v (+ last)
            g = rows.new_empty(0) if grad is None else grad.contiguous()
            mod.rows_finish(param, st["mv"], st["last"], ids.contiguous(), rows.detach(), mv, g, float(l2), self.lr,
                            b1, b2, self.eps, bc1, bc2, self.t, self.mode == "deferred")
            return
        g = torch.zeros_like(rows) if grad is None else grad
        if l2:
            g = g + l2 * rows.detach()
        if self.mode == "dense":
            full = param * self.table_l2 if self.table_l2 else torch.zeros_like(param)
            full.index_add_(0, ids, g)
            param.grad = full
            self._dense[name].step()
            param.grad = None
            return
        m, v = mv[:, 0], mv[:, 1]
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        p = rows.detach()
        p.addcdiv_(m, (v / bc2).sqrt_().add_(self.eps), value=-self.lr / bc1)
        param.index_copy_(0, ids, p)
        st["mv"].index_copy_(0, ids, mv)
        if self.mode == "deferred":
            st["last"].index_fill_(0, ids, self.t)

    @torch.no_grad()
    def flush(self) -> None:
        """Apply every deferred idle update so the tables equal dense Adam's at step ``t``."""
        if self.mode != "deferred":
            return
        for name, param in self.params.items():
            ids = (self.state[name]["last"] < self.t).nonzero().view(-1)
            if len(ids):
                mod = self._kernels(param)
                if mod is not None:  # the compiled gather + closed-form idle update
                    st = self.state[name]
                    win, finf = self._tables(self.t, param.device)
                    p, mv = mod.rows_begin(param, st["mv"], st["last"], ids, self.t, win, finf, self._decay, self.lr,
                                           *self.betas, True)
                else:
                    p, mv = self._catch_up(name, ids, self.t)
                param.index_copy_(0, ids, p)
                self.state[name]["mv"].index_copy_(0, ids, mv)
                self.state[name]["last"].index_fill_(0, ids, self.t)

    def state_dict(self) -> dict:
        return {"t": self.t, "state": self.state, "lr": self.lr, "betas": self.betas, "eps": self.eps, "mode": self.mode,
                "dense": {k: o.state_dict() for k, o in self._dense.items()}}

    def load_state_dict(self, sd: dict) -> None:
        if sd.get("mode", self.mode) != self.mode:
            raise ValueError(f"checkpoint optimiser mode {sd.get('mode')!r} != {self.mode!r}")
        self.t = int(sd["t"])
        for k, o in self._dense.items():
            o.load_state_dict(sd["dense"][k])
        for k, st in sd["state"].items():
            for key in ("mv", "last"):
                self.state[k][key].copy_(st[key])


@dataclass(eq=False)
class Optimizer:
    """The pair of optimisers one run uses: torch Adam (dense weights) + :class:`TableAdam` (tables)."""

    dense: torch.optim.Adam
    rows: TableAdam

    def state_dict(self) -> dict:
        return {"dense": self.dense.state_dict(), "rows": self.rows.state_dict()}

    def load_state_dict(self, sd: dict) -> None:
        self.dense.load_state_dict(sd["dense"])
        self.rows.load_state_dict(sd["rows"])


def make_optimizer(model: KGCN, cfg: TrainConfig) -> Optimizer:
    try:  # single-kernel Adam for the small dense weights (per-step overhead matters at batch 256)
        dense = torch.optim.Adam(model.dense_parameters(), lr=cfg.lr, fused=True)
    except (RuntimeError, ValueError):
        dense = torch.optim.Adam(model.dense_parameters(), lr=cfg.lr, foreach=True)
    mode = {"adam": "deferred", "lazy_adam": "lazy", "dense_adam": "dense"}[cfg.optimizer]
    rows = TableAdam({"user_emb": model.user_emb.data, "entity_emb": model.entity_emb.data}, lr=cfg.lr, mode=mode,
                     table_l2=cfg.l2 if cfg.l2_scope == "table" else 0.0)
    return Optimizer(dense, rows)


# ---------------------------------------------------------------------------- data plumbing
def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def pairs_arrays(pairs, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(anchor, other, label)`` int64 arrays from a ContentPairs / DataFrame / dict, checked."""
    table = getattr(pairs, "table", pairs)
    try:
        a = np.array(table["anchor"], dtype=np.int64)
        o = np.array(table["other"], dtype=np.int64)
        y = np.array(table["label"], dtype=np.int64)
    except (KeyError, TypeError) as e:
        raise ValueError(f"content pairs need columns anchor, other, label ({e})") from None
    for name, col in (("anchor", a), ("other", o)):
        bad = (col < 0) | (col >= n_items)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"content pairs row {i}: {name} item {col[i]} is not an item index 0..{n_items - 1}")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"content pairs row {i}: label {y[i]} is not 0/1")
    return a, o, y


# ---------------------------------------------------------------------------- evaluation
def _auc_f1(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """ROC-AUC and F1 at threshold 0.5 (KGCN's CTR protocol); AUC is NaN for a one-class split."""
    from .metrics import MetricsError, auc, f1

    try:
        auc_value = float(auc(labels, scores))
    except MetricsError:
        auc_value = float("nan")
    return auc_value, float(f1(labels, scores))


@torch.no_grad()
def predict(model: KGCN, rows: np.ndarray | Tensor, batch_size: int = 65536) -> np.ndarray:
    """``float32[n]`` sigmoid scores of ``(user, item, ...)`` rows, batched."""
    dev = model.adj_entity.device
    rows = torch.as_tensor(rows, dtype=torch.int64)
    out = []
    for s in range(0, len(rows), batch_size):
        r = rows[s : s + batch_size].to(dev)
        out.append(torch.sigmoid(model(r[:, 0], r[:, 1])).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def evaluate(model: KGCN, rows: np.ndarray, batch_size: int = 65536) -> tuple[float, float]:
    """``(AUC, F1)`` of ``(user, item, label)`` rows."""
    was = model.training
    model.eval()
    scores = predict(model, rows, batch_size)
    model.train(was)
    return _auc_f1(np.asarray(rows)[:, 2], scores)


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, model: KGCN, optimizer: Optimizer | None, cfg: TrainConfig, extra: dict | None = None) -> Path:
    """Write config + model weights/buffers + optimiser state atomically to ``path``."""
    payload = {
        "train_config": cfg.to_dict(),
        "model_config": model.cfg.to_dict(),
        "sizes": dict(n_users=model.n_users, n_entities=model.n_entities, n_relations=model.n_relations, n_items=model.n_items),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


@dataclass(frozen=True, eq=False)
class Checkpoint:
    model: KGCN
    config: TrainConfig
    optimizer_state: dict | None
    extra: dict


def load_checkpoint(path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model (and return the optimiser state) saved by :func:`save_checkpoint`.

    Use ``make_optimizer(ckpt.model, ckpt.config).load_state_dict(ckpt.optimizer_state)`` to
    resume training.
    """
    payload = torch.load(path, map_location="cpu", weights_only=False)
    mcfg = ModelConfig(**payload["model_config"])
    sd = payload["state_dict"]
    sizes = payload["sizes"]
    text = sd.get("text_vectors")
    model = KGCN(
        mcfg,
        **sizes,
        adj_entity=sd["adj_entity"],
        adj_relation=sd["adj_relation"],
        text_vectors=None if text is None else torch.zeros_like(text),
        has_text=None if text is None else sd["text_entity"][: sizes["n_items"]],
    )
    model.load_state_dict(sd)
    model.to(device)
    return Checkpoint(model, TrainConfig.from_dict(payload["train_config"]), payload["optimizer"], payload["extra"])


# ---------------------------------------------------------------------------- training
@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of :func:`train`.

    ``history``: one dict per epoch (``epoch, loss, base_loss, cl_loss, l2_loss, valid_auc,
    valid_f1, seconds``); ``seconds`` is the total training wall time (evaluation excluded);
    ``train_rows_per_s`` = labelled training rows processed per second of training.
    """

    model: KGCN
    config: TrainConfig
    history: list
    test_auc: float
    test_f1: float
    valid_auc: float
    valid_f1: float
    best_epoch: int
    epochs: int
    seconds: float
    train_rows_per_s: float
    info: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-able headline numbers."""
        return {
            "dataset": self.config.dataset,
            "variant": self.config.variant,
            "text": self.config.text,
            "seed": self.config.seed,
            "test_auc": self.test_auc,
            "test_f1": self.test_f1,
            "valid_auc": self.valid_auc,
            "valid_f1": self.valid_f1,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            "seconds": self.seconds,
            "train_rows_per_s": self.train_rows_per_s,
            **self.info,
        }


def build_model(ds, cfg: TrainConfig, text=None, device=None) -> KGCN:
    """The run's model: neighbour table sampled once from ``cfg.seed``, weights from it too."""
    rng = np.random.default_rng([cfg.seed, 1])
    nt = sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, cfg.n_neighbors, rng)
    tv = ht = None
    text_dim = None
    if cfg.text == "synopsis":
        if text is None:
            raise ValueError("cfg.text='synopsis' needs text embeddings (kgcl_lib.text.item_text_embeddings)")
        tv = torch.tensor(np.array(text.vectors, dtype=np.float32))
        ht = torch.tensor(np.array(text.has_text, dtype=bool))
        text_dim = int(tv.shape[1])
    gen = torch.Generator().manual_seed(cfg.seed)
    model = KGCN(
        cfg.model_config(text_dim), ds.n_users, ds.n_entities, ds.n_relations, ds.n_items,
        torch.from_numpy(nt.entities), torch.from_numpy(nt.relations), tv, ht, generator=gen,
    )
    return model.to(device or "cpu")


def train(ds, split, cfg: TrainConfig, *, pairs=None, text=None, out_dir=None, progress: bool = True,
          model: KGCN | None = None, optimizer_state: dict | None = None) -> TrainResult:
    """Train KGCN(+text, +CL) on ``split.train``; valid AUC/F1 each epoch; test at the end.

    Args:
        ds: :class:`~kgcl_lib.data.KGDataset` (sizes, KG).
        split: :class:`~kgcl_lib.data.Split` with ``train/valid/test int64[n, 3]``.
        cfg: the run's :class:`TrainConfig`.
        pairs: content pairs (ContentPairs or DataFrame ``anchor, other, label``); required for
            the ``cl_*`` variants, ignored for ``base``.
        text: TextEmbeddings-like (``vectors float32[n_items, D]``, ``has_text bool[n_items]``);
            required when ``cfg.text == "synopsis"``.
        out_dir: when given, ``config.json``, ``history.json``, ``result.json`` and
            ``checkpoint.pt`` (final model + optimiser) are written there.
        progress: show a tqdm bar per epoch with the running losses.
        model, optimizer_state: resume from a checkpoint instead of a fresh model.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    use_cl = cfg.variant != "base"
    if use_cl and pairs is None:
        raise ValueError(f"variant {cfg.variant!r} needs content pairs (kgcl_lib.pairs.build_pairs)")
    if model is None:
        model = build_model(ds, cfg, text, device)
    model.to(device).train()
    opt = make_optimizer(model, cfg)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    gen = torch.Generator().manual_seed(cfg.seed + 7919)  # epoch shuffles

    tr = torch.as_tensor(np.asarray(split.train), dtype=torch.int64)
    t_users, t_items, t_labels = tr[:, 0].contiguous(), tr[:, 1].contiguous(), tr[:, 2].float()
    n = len(tr)
    steps = math.ceil(n / cfg.batch_size)
    if use_cl:
        pa, po, py = (torch.from_numpy(x) for x in pairs_arrays(pairs, ds.n_items))
        n_pairs = len(pa)
        cl_bs = math.ceil(n_pairs / steps)
        if cfg.cl_loss == "infonce":  # Eq. 1 uses positive pairs only; negatives are in-batch
            keep = py == 1
            pa, po, py = pa[keep], po[keep], py[keep]
            n_pairs = len(pa)
            cl_bs = math.ceil(n_pairs / steps)
    gamma = cfg.gamma if use_cl else 1.0
    lam = cfg.l2

    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(out_dir / "config.json", cfg.to_dict())

    history, best = [], (-math.inf, 0, None)
    train_seconds = 0.0
    bar_cls = None
    if progress:
        from tqdm.auto import tqdm as bar_cls
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        eu, ei, ey = t_users[perm].to(device), t_items[perm].to(device), t_labels[perm].to(device)
        if use_cl:
            pp = torch.randperm(n_pairs, generator=gen)
            ea, eo, epy = pa[pp].to(device), po[pp].to(device), py[pp].float().to(device)
        sums = torch.zeros(4, device=device)  # total, base, cl, l2 (summed over steps)
        it = range(steps)
        bar = None
        if bar_cls is not None:
            bar = bar_cls(it, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", leave=False, mininterval=0.5)
            it = bar
        for s in it:
            lo, hi = s * cfg.batch_size, min(n, (s + 1) * cfg.batch_size)
            users, items, labels = eu[lo:hi], ei[lo:hi], ey[lo:hi]
            extra = None
            if use_cl:
                plo, phi = s * cl_bs, min(n_pairs, (s + 1) * cl_bs)
                a, o, y = ea[plo:phi], eo[plo:phi], epy[plo:phi]
                extra = torch.cat([a, o])
            plan = model.plan(users, items, extra)
            opt.rows.tick()
            u_rows = opt.rows.begin("user_emb", plan.user_ids)
            e_rows = opt.rows.begin("entity_emb", plan.plain_ids)
            table = model.local_table(plan, e_rows)
            logits = model.forward_plan(plan, u_rows, table)
            base = F.binary_cross_entropy_with_logits(logits, labels)
            # L2 on the weights through autograd; on the batch's table rows its gradient λ·p is
            # added inside TableAdam.finish (one pass, no autograd nodes) and only the value is
            # computed here, for the logged loss.  l2_scope "table": TableAdam (dense) adds λ·P.
            l2 = model.l2_penalty(u_rows[:0], e_rows[:0])
            row_l2 = lam if cfg.l2_scope == "batch" else 0.0
            if row_l2:  # the rows' value only (no graph); l2 keeps the weights' graph
                u_flat, e_flat = u_rows.detach().view(-1), e_rows.detach().view(-1)
                l2 = l2 + 0.5 * (torch.dot(u_flat, u_flat) + torch.dot(e_flat, e_flat))
            if use_cl:
                h = table.index_select(0, plan.extra)
                ha, ho = h[: len(a)], h[len(a) :]
                cl = cl_bce_loss(ha, ho, y) if cfg.cl_loss == "bce" else info_nce_loss(ha, ho, cfg.temperature)
                loss = gamma * base + (1 - gamma) * cl + lam * l2
            else:
                cl = base.new_zeros(())
                loss = base + lam * l2
            opt.dense.zero_grad(set_to_none=True)
            loss.backward()
            opt.dense.step()
            opt.rows.finish("user_emb", plan.user_ids, u_rows, u_rows.grad, l2=row_l2)
            opt.rows.finish("entity_emb", plan.plain_ids, e_rows, e_rows.grad, l2=row_l2)
            sums += torch.stack([loss.detach(), base.detach(), cl.detach(), l2.detach()])
            if bar is not None and (s % 20 == 0 or s == steps - 1):
                m = (sums / (s + 1)).tolist()
                bar.set_postfix(loss=f"{m[0]:.4f}", base=f"{m[1]:.4f}", cl=f"{m[2]:.4f}", refresh=False)
        opt.rows.flush()  # tables now equal dense Adam's (no-op for lazy/dense modes)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        train_seconds += dt
        m = (sums / steps).tolist()
        rec = {"epoch": epoch, "loss": m[0], "base_loss": m[1], "cl_loss": m[2], "l2_loss": m[3], "seconds": dt,
               "rows_per_s": n / dt}
        if len(split.valid):
            rec["valid_auc"], rec["valid_f1"] = evaluate(model, split.valid, cfg.eval_batch_size)
        history.append(rec)
        if bar_cls is not None:
            print(f"epoch {epoch}: loss {m[0]:.4f} base {m[1]:.4f} cl {m[2]:.4f} valid auc "
                  f"{rec.get('valid_auc', float('nan')):.4f} f1 {rec.get('valid_f1', float('nan')):.4f} ({dt:.1f}s)",
                  file=sys.stderr)
        score = rec.get("valid_auc", -math.inf)
        if score > best[0] or best[2] is None:
            best = (score, epoch, copy.deepcopy(model.state_dict()) if cfg.restore_best else None)
        elif cfg.patience and epoch - best[1] >= cfg.patience:
            break

    final_epoch = history[-1]["epoch"]
    if cfg.restore_best and best[2] is not None and best[1] != final_epoch:
        model.load_state_dict(best[2])
    best_epoch = best[1] if cfg.restore_best else final_epoch
    chosen = history[best_epoch - 1]
    test_auc, test_f1 = evaluate(model, split.test, cfg.eval_batch_size) if len(split.test) else (float("nan"),) * 2
    result = TrainResult(
        model=model, config=cfg, history=history, test_auc=test_auc, test_f1=test_f1,
        valid_auc=chosen.get("valid_auc", float("nan")), valid_f1=chosen.get("valid_f1", float("nan")),
        best_epoch=best_epoch, epochs=len(history), seconds=train_seconds,
        train_rows_per_s=n * len(history) / train_seconds if train_seconds > 0 else float("nan"),
        info={"device": str(device), "threads": torch.get_num_threads(), "n_train": n, "steps_per_epoch": steps,
              "n_pairs": int(n_pairs) if use_cl else 0, "cl_batch": int(cl_bs) if use_cl else 0,
              "optimizer": cfg.optimizer},
    )
    if out_dir is not None:
        write_json(out_dir / "history.json", history)
        write_json(out_dir / "result.json", result.summary())
        # weights: the returned (best-valid) model; optimiser state: as after the last epoch
        save_checkpoint(out_dir / "checkpoint.pt", model, opt, cfg, extra={"epoch": final_epoch, "best_epoch": best_epoch})
    return result


# ---------------------------------------------------------------------------- CLI
def _load_pairs(ds, cfg: TrainConfig, rng_seed: int):
    """Content pairs for a ``cl_*`` variant (:func:`kgcl_lib.pairs.build_pairs`) and a note on their source."""
    from .pairs import build_pairs

    template = VARIANT_TEMPLATE[cfg.variant]
    kw = {"domain": "movie"} if ds.name.startswith("synthetic") else {}  # synthetic shapes carry no domain
    pairs = build_pairs(ds, template=template, n=cfg.n_pairs, seed=rng_seed, **kw)
    prov = getattr(pairs, "provenance", {}) or {}
    return pairs, f"kgcl_lib.pairs.build_pairs(template={template!r}) {json.dumps(prov, default=str)[:300]}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kgcl_lib.train", description="Train KGCN / KGCL on one dataset.")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--paper", action="store_true", help="start from the paper's Table 1 settings for the dataset")
    for f in fields(TrainConfig):
        if f.name == "dataset":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None)
        elif f.type in ("int", int):
            p.add_argument(flag, type=int, default=None)
        elif f.type in ("float", float):
            p.add_argument(flag, type=float, default=None)
        else:
            p.add_argument(flag, type=str, default=None)
    p.add_argument("--out-dir", default=None, help="write config/history/result/checkpoint here")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    kwargs = paper_settings(args.dataset) if args.paper else {}
    for f in fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None and f.name != "dataset":
            kwargs[f.name] = v
    cfg = TrainConfig(dataset=args.dataset, **kwargs)
    from .data import split_ratings

    from .data import load_dataset
    t0 = time.perf_counter()
    ds = load_dataset(cfg.dataset, data_dir=args.data_dir, seed=cfg.seed)
    split = split_ratings(ds.ratings, np.random.default_rng(cfg.seed))
    text = None
    info = {}
    if cfg.text == "synopsis":
        from .text import item_text_embeddings  # type: ignore

        text = item_text_embeddings(ds) if cfg.text_model is None else item_text_embeddings(ds, model=cfg.text_model)
        info["text_model"] = str(getattr(text, "model", cfg.text_model))
        info["items_with_text"] = int(np.asarray(text.has_text).sum())
    pairs = None
    if cfg.variant != "base":
        pairs, info["pairs_source"] = _load_pairs(ds, cfg, cfg.seed)
    prep = time.perf_counter() - t0
    res = train(ds, split, cfg, pairs=pairs, text=text, out_dir=args.out_dir, progress=not args.no_progress)
    out = {**res.summary(), **info, "prep_seconds": prep, "config": cfg.to_dict()}
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps({k: out[k] for k in ("test_auc", "test_f1", "valid_auc", "epochs", "seconds", "train_rows_per_s")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
