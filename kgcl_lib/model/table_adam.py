"""KGCN's optimiser: torch Adam for the dense weights, :class:`TableAdam` for the user and
entity tables (the backbone's :meth:`~kgcl_lib.model.kgcn.KGCN.configure_training` makes it).

KGCN's reference code minimises ``L_base + λ·(l2(users) + l2(entities) + l2(relations) +
l2(weights))`` (``tf.nn.l2_loss`` = ``½ Σ x²``) with dense Adam, so every row of every table
moves every step: an idle row (one no batch uses) still gets the gradient ``λ·p``.
:class:`TableAdam` reproduces that without streaming the whole tables each step: an idle row's
``(p, m, v)`` follow a fixed per-element recurrence, which is iterated lazily -- when a batch next
needs the row, and at :meth:`TableAdam.flush` (epoch end, before evaluation and checkpoints;
rows no forward pass reads, :attr:`TableAdam.live`, only once at the end of training) --
in registers inside the compiled row kernels (``csrc/kernels.cpp``) or, without them, in pure
torch.  The arithmetic is ``torch.optim.Adam``'s single-tensor update (tested against it): the
pure-torch path operation for operation; the compiled AVX2/AVX-512 idle iteration keeps m and v
in torch's operations and computes the parameter step ``(η_s·√(1−β2^s))·m / (√v + ε·√(1−β2^s))``
(the same quantity) with a Newton-refined reciprocal instead of two divisions -- ~1 ulp per step,
1.6x the throughput, since the divide unit bounds this loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .kernels import cpp_kernels


class TableAdam:
    """Adam for the big embedding tables, touching only the rows a batch uses.

    L2 (``table_l2``):

    * a float λ (``l2_scope="table"``, KGCN's choice and the default of
      :func:`make_optimizer`): the loss holds ``λ·½‖P‖²`` over the *whole* table, so every row
      gets the gradient ``λ·p`` every step, used or not.  :meth:`finish` adds ``λ·rows`` to the
      batch rows' gradient; an idle row follows, per element and step ``s``,

          ``g = λ p;  m ← m + (1−β1)(g − m);  v ← β2 v + (1−β2) g²;
          p ← p − (η/(1−β1^s))·m / (√v/√(1−β2^s) + ε)``

      (``torch.optim.Adam``'s single-tensor update; see the module docstring for the compiled
      path's reciprocal).  In
      ``"deferred"`` mode these idle steps are iterated lazily, ``Δ`` of them at once when the row
      is next used and at :meth:`flush` -- exact, not a closed form.
    * ``None`` (``l2_scope="batch"``; *not* KGCN's): no L2 here beyond what the caller passes to
      :meth:`finish` for the batch rows; idle rows get no gradient.

    Three semantics (``mode``):

    * ``"deferred"`` (default): *dense* Adam -- the optimiser KGCN uses -- computed row-sparsely.
      With ``table_l2`` a float, idle steps are iterated exactly (above).  With ``table_l2=None``
      an idle row keeps moving under dense Adam with its decaying momentum only:
      ``m ← β1 m``, ``v ← β2 v``, ``p ← p − η m̂_s / (√v̂_s + ε)``, applied in closed form when
      the row is next used (and at :meth:`flush`): ``p −= η (m/√v) Σ_{k=1..Δ} ρ^k c(t0+k)``,
      ``m ← β1^Δ m``, ``v ← β2^Δ v`` with ``ρ = β1/√β2`` and ``c(s) = √(1−β2^s)/(1−β1^s)``
      (bias corrections).  This equals dense Adam except that ``ε`` is dropped inside the idle
      stretch (relative effect ``ε/√v̂``) and the sum is truncated after ``H = 256`` idle steps
      (``ρ^256 < 1e-11``).  Tested against dense Adam.
    * ``"lazy"``: ``torch.optim.SparseAdam`` / TF ``LazyAdam`` semantics -- idle rows do not move
      and their moments do not decay (``table_l2`` must be ``None``).  Rare rows therefore move
      ~10x less per gradient than under dense Adam (a dense-Adam hit keeps pushing for
      ~1/(1−ρ) ≈ 10 steps), so the paper's learning rates under-train (Book-Crossing at η=2e-4:
      valid AUC ≈ 0.51 after 2 epochs).
    * ``"dense"``: plain dense (fused) torch Adam over the whole table every step (reference;
      slow on CPU; what :func:`make_optimizer` uses for whole-table L2 on CUDA, where streaming
      the tables is cheap and the lazy iteration would be one kernel launch per idle step).

    Usage per step: ``tick()``; ``rows = begin(name, ids)`` (up-to-date rows, a leaf copy for the
    forward pass); backward; ``finish(name, ids, rows.grad)``.  The bias correction uses the
    global step, as ``torch.optim.Adam``.
    """

    H = 256

    def __init__(self, params: dict[str, Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8, mode: str = "deferred",
                 table_l2: float | None = None):
        if mode not in ("deferred", "lazy", "dense"):
            raise ValueError(f"unknown TableAdam mode {mode!r}")
        if mode == "lazy" and table_l2 is not None:
            raise ValueError("TableAdam mode 'lazy' freezes idle rows; whole-table L2 (table_l2) needs 'deferred' or 'dense'")
        if table_l2 is not None and table_l2 < 0:
            raise ValueError(f"TableAdam table_l2={table_l2!r}: must be >= 0")
        self.lr, self.betas, self.eps, self.mode = lr, betas, eps, mode
        #: λ of the whole-table L2 (every row gets λ·p each step), or None (no idle-row L2)
        self.table_l2 = table_l2
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
        #: per table (optional), ``bool[n]``: the rows a forward pass can read.  :meth:`flush`
        #: advances only these; the others ("unread": e.g. KG entities no item reaches within
        #: L hops of the fixed sampled neighbours) cannot change a score, so their idle steps
        #: wait for ``flush(unread=True)`` (end of training, before weights are read as a whole).
        self.live: dict[str, Tensor] = {}
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
        self._sched: dict = {}  # device -> float32 [n, 2] per-step (step size, √bias correction 2)
        self._nothing = torch.zeros(0, device=dev)

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

    # -- exact idle steps under whole-table L2 -------------------------------------------------
    def _schedule(self, target: int, dev) -> Tensor:
        """``float32[≥ target+1, 2]``: row ``s`` = ``(η/(1−β1^s), √(1−β2^s))`` (row 0 unused).

        Computed in Python floats, then rounded to float32, exactly as ``torch.optim.Adam``
        computes its step size and ``bias_correction2_sqrt`` and hands them to float32 kernels.
        """
        sched = self._sched.get(dev)
        if sched is None or len(sched) <= target:
            b1, b2 = self.betas
            n = max(target + 1, 2 * (0 if sched is None else len(sched)), 1024)
            rows = [(0.0, 1.0)] + [(self.lr / (1 - b1 ** float(s)), (1 - b2 ** float(s)) ** 0.5) for s in range(1, n)]
            sched = torch.tensor(rows, dtype=torch.float32, device=dev)
            self._sched[dev] = sched
        return sched

    @torch.no_grad()
    def _iterate_idle(self, p: Tensor, mv: Tensor, t0: Tensor, target: int) -> None:
        """Pure-torch twin of the compiled idle iteration: rows ``p [n, d]``, ``mv [n, 2, d]``
        (in place) take dense Adam's steps ``t0+1 .. target`` with gradient ``λ·p``.

        Rows are sorted by ``t0`` so the rows still idle at step ``s`` are a prefix (views, no
        masks); each step is ``torch.optim.Adam``'s single-tensor update on that prefix.
        """
        if not len(t0):
            return
        lam = float(self.table_l2)
        b1, b2 = self.betas
        order = torch.argsort(t0, stable=True)
        t0s = t0[order]
        ps, ms, vs = p[order], mv[order, 0], mv[order, 1]
        first = int(t0s[0])
        counts = torch.searchsorted(t0s, torch.arange(first + 1, target + 1, device=t0s.device), right=False).tolist()
        for s, k in zip(range(first + 1, target + 1), counts):  # k rows have t0 < s
            pk, mk, vk = ps[:k], ms[:k], vs[:k]
            step_size, bc2_sqrt = self.lr / (1 - b1**s), (1 - b2**s) ** 0.5
            g = pk * lam
            mk.lerp_(g, 1 - b1)
            vk.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (vk.sqrt() / bc2_sqrt).add_(self.eps)
            pk.addcdiv_(mk, denom, value=-step_size)
        p[order] = ps
        mv[order, 0] = ms
        mv[order, 1] = vs

    def _kernels(self, param: Tensor):
        """The compiled row kernels when usable for ``param`` (CPU float32, deferred/lazy)."""
        if not self.use_cpp or self.mode == "dense" or param.device.type != "cpu" or param.dtype != torch.float32:
            return None
        return cpp_kernels()

    def _kernel_mode(self) -> int:
        """Idle handling code for the row kernels: 0 none (lazy), 1 closed form, 2 iterate."""
        if self.mode != "deferred":
            return 0
        return 1 if self.table_l2 is None else 2

    def _begin_cpp(self, mod, name: str, ids: Tensor, target: int):
        st, param = self.state[name], self.params[name]
        win, finf = self._tables(target, param.device) if self._kernel_mode() == 1 else (self._nothing, self._nothing)
        sched = self._schedule(target, param.device) if self._kernel_mode() == 2 else self._nothing
        b1, b2 = self.betas
        return mod.rows_begin(param, st["mv"], st["last"], ids.contiguous(), target, win, finf, self._decay, sched,
                              self.lr, b1, b2, self.eps, float(self.table_l2 or 0.0), self._kernel_mode())

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
        if self.table_l2 is not None:
            idle = (delta > 0).nonzero().view(-1)
            if len(idle):
                pi, mvi = p[idle], mv[idle]
                self._iterate_idle(pi, mvi, t0[idle], target)
                p[idle], mv[idle] = pi, mvi
            return p, mv
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
        if mod is not None:  # one fused C++ pass: gather + idle updates up to step t − 1
            p, mv = self._begin_cpp(mod, name, ids, self.t - 1)
            self._pending[name] = mv
            return p.requires_grad_()
        p, mv = self._catch_up(name, ids, self.t - 1)
        self._pending[name] = mv
        return p.requires_grad_()

    @torch.no_grad()
    def finish(self, name: str, ids: Tensor, rows: Tensor, grad: Tensor | None, l2: float = 0.0) -> None:
        """Adam step ``t`` on rows ``ids`` (``rows`` = the tensor :meth:`begin` returned).

        ``l2``: adds ``l2 · rows`` to the gradient -- the gradient of ``l2 · ½‖rows‖²``, the L2
        term on the rows a batch used (``l2_scope="batch"``) -- inside the update instead of
        through autograd.  Under whole-table L2 ``table_l2 · rows`` is added as well.
        """
        b1, b2 = self.betas
        st, param = self.state[name], self.params[name]
        mv = self._pending.pop(name)
        bc1, bc2 = 1 - b1 ** float(self.t), 1 - b2 ** float(self.t)
        l2 = float(l2) + (float(self.table_l2) if self.table_l2 is not None and self.mode != "dense" else 0.0)
        mod = self._kernels(param)
        if mod is not None:  # one fused C++ pass: Adam step + scatter of p, m, v (+ last)
            g = rows.new_empty(0) if grad is None else grad.contiguous()
            mod.rows_finish(param, st["mv"], st["last"], ids.contiguous(), rows.detach(), mv, g, l2, self.lr / bc1,
                            bc2**0.5, b1, b2, self.eps, self.t, self.mode == "deferred")
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
        # torch.optim.Adam's single-tensor update, operation for operation
        m, v = mv[:, 0], mv[:, 1]
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        p = rows.detach()
        p.addcdiv_(m, (v.sqrt() / bc2**0.5).add_(self.eps), value=-self.lr / bc1)
        param.index_copy_(0, ids, p)
        st["mv"].index_copy_(0, ids, mv)
        if self.mode == "deferred":
            st["last"].index_fill_(0, ids, self.t)

    @torch.no_grad()
    def flush(self, target: int | None = None, unread: bool = False) -> None:
        """Apply the deferred idle updates up to step ``target`` (default: the current step ``t``).

        Default: the rows in :attr:`live` (all rows of a table without a mask), so every row a
        forward pass can read equals dense Adam's at step ``t`` (epoch end, before evaluation).
        ``unread=True``: the rows *outside* :attr:`live` instead, to any ``target`` ≤ ``t`` not
        before their last update -- e.g. the step of the epoch whose weights a run returns.  A row
        takes the same steps, each with the same operations, however its idle stretch is split
        between calls, so the result does not depend on when (or how often) rows were flushed.
        """
        if self.mode != "deferred":
            return
        target = self.t if target is None else int(target)
        if not 0 <= target <= self.t:
            raise ValueError(f"TableAdam.flush target {target} outside 0..{self.t} (the current step)")
        for name, param in self.params.items():
            last = self.state[name]["last"]
            mask = last < target
            live = self.live.get(name)
            if live is not None:
                mask &= ~live if unread else live
            elif unread:
                continue
            if unread and live is not None and bool((last[~live] > target).any()):
                raise ValueError(f"TableAdam.flush: unread rows of {name!r} are already past step {target}")
            ids = mask.nonzero().view(-1)
            if len(ids):
                mod = self._kernels(param)
                if mod is not None:  # the compiled gather + idle updates
                    p, mv = self._begin_cpp(mod, name, ids, target)
                else:
                    p, mv = self._catch_up(name, ids, target)
                param.index_copy_(0, ids, p)
                self.state[name]["mv"].index_copy_(0, ids, mv)
                self.state[name]["last"].index_fill_(0, ids, target)

    def state_dict(self) -> dict:
        return {"t": self.t, "state": self.state, "lr": self.lr, "betas": self.betas, "eps": self.eps, "mode": self.mode,
                "table_l2": self.table_l2, "dense": {k: o.state_dict() for k, o in self._dense.items()}}

    def load_state_dict(self, sd: dict) -> None:
        if sd.get("mode", self.mode) != self.mode:
            raise ValueError(f"checkpoint optimiser mode {sd.get('mode')!r} != {self.mode!r}")
        if "table_l2" in sd and sd["table_l2"] != self.table_l2:
            raise ValueError(f"checkpoint optimiser table_l2 {sd['table_l2']!r} != {self.table_l2!r}")
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


def make_optimizer(model, cfg) -> Optimizer:
    """The run's :class:`Optimizer` for a :class:`~kgcl_lib.model.kgcn.KGCN` and a
    :class:`~kgcl_lib.train.TrainConfig` (uses ``lr``, ``l2``, ``optimizer``, ``l2_scope``).

    ``l2_scope="table"`` (default, KGCN's): the tables' λ lives in :class:`TableAdam`
    (``table_l2=λ``); with ``optimizer="adam"`` on CUDA the tables take the dense fused update
    (``mode="dense"``; same arithmetic, and on a GPU streaming the tables beats one kernel
    launch per idle step).  ``l2_scope="batch"``: λ only on the batch rows, passed to
    :meth:`TableAdam.finish` by the trainer.
    """
    try:  # single-kernel Adam for the small dense weights (per-step overhead matters at batch 256)
        dense = torch.optim.Adam(model.dense_parameters(), lr=cfg.lr, fused=True)
    except (RuntimeError, ValueError):
        dense = torch.optim.Adam(model.dense_parameters(), lr=cfg.lr, foreach=True)
    mode = {"adam": "deferred", "lazy_adam": "lazy", "dense_adam": "dense"}[cfg.optimizer]
    table_l2 = cfg.l2 if cfg.l2_scope == "table" else None
    if mode == "deferred" and table_l2 is not None and model.user_emb.device.type == "cuda":
        mode = "dense"
    rows = TableAdam({"user_emb": model.user_emb.data, "entity_emb": model.entity_emb.data}, lr=cfg.lr, mode=mode,
                     table_l2=table_l2)
    return Optimizer(dense, rows)
