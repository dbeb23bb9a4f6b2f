"""The training loop of KGCL (Kim et al., Eq. 5) around any backbone of :mod:`kgcl_lib.model`.

One run = one frozen :class:`TrainConfig`.  :func:`train` builds the backbone ``cfg.backbone``
(KGCN by default), trains with joint batching of user-content rows and content-content pairs,
reports valid AUC/F1 every epoch, optionally stops early, and returns a :class:`TrainResult`.
It talks to the model only through :class:`~kgcl_lib.model.Backbone` (docs/DESIGN.md,
"Backbone seam").

Layout: :func:`train` is a short loop over :func:`run_epoch` (shuffle, then :func:`train_step`
per batch), :func:`select_best` (best valid AUC, early stop), :func:`restore_best`,
:func:`end_training` and :func:`write_run`.  The run config lives in :mod:`.config`,
checkpoints and the run folder in :mod:`.io`; the command ``python -m kgcl_lib.train``
(:mod:`kgcl_lib.train.__main__`) sits on top of this loop.

Loss (Eq. 5): ``L = γ·L_base + (1−γ)·CL + λ·½‖Θ‖²`` where ``L_base`` is the mean BCE over the
batch's labelled rows, ``CL`` the content contrastive loss (:func:`~kgcl_lib.model.cl_bce_loss`
or in-batch InfoNCE) over the content-pair batch's item representations, and ``½‖Θ‖²`` what the
backbone reports (KGCN: the whole user, entity and relation tables and all weight matrices,
KGCN's ``l2_loss``; biases excluded; ``l2_scope="batch"``: only the user / entity rows the batch
used).  Without pairs (``variant="base"``) the loss is ``L_base + λ·½‖Θ‖²`` (γ unused).  A
backbone's extra term (RippleNet's KG term) is added as is.

Joint batching: ``steps = ceil(n_train / batch_size)`` per epoch and the content-pair batch is
``ceil(n_pairs / steps)``, so both are traversed once per epoch in the same number of steps.

Optimiser: the backbone's (:meth:`~kgcl_lib.model.Backbone.configure_training`).  KGCN's is torch
Adam for the dense weights and :class:`~kgcl_lib.model.TableAdam` for the user and entity tables
with dense-Adam semantics computed row-sparsely (``optimizer="adam"``, default; see
:mod:`kgcl_lib.model.table_adam` for ``lazy_adam`` / ``dense_adam`` and the L2 scopes).

Determinism: the same seed and device give identical losses on CPU (all randomness comes from the
streams of :class:`~kgcl_lib.seeds.RunSeeds`; on CUDA, ``index_add_`` uses atomics, so enable
``torch.use_deterministic_algorithms`` for bitwise repeats).

Test-set selection: with ``restore_best`` (default) the test metrics are those of the epoch with
the best valid AUC.

CLI::

    python -m kgcl_lib.train --dataset book-crossing --seed 0 --json

For the paper's datasets (``book-crossing``, ``ml-*``) the run starts from Table 1's settings
(:func:`paper_settings`); ``--settings kgcn`` starts from KGCN's own published settings
(:func:`kgcn_settings`), ``--settings generic`` from :class:`TrainConfig`'s defaults.  Any flag
overrides them.  From Python the same starting points are
``TrainConfig.for_dataset(name, settings, **fields)``.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from ..metrics import MetricsError, auc, f1
from ..model import Backbone, build_backbone, cl_bce_loss, info_nce_loss
from ..seeds import RunSeeds
from ..storage import atomic_dir, write_json
from .config import TrainConfig, resolve_device
from .io import check_out_dir, save_checkpoint


# ---------------------------------------------------------------------------- data plumbing
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
    try:
        auc_value = float(auc(labels, scores))
    except MetricsError:
        auc_value = float("nan")
    return auc_value, float(f1(labels, scores))


def ctr_metrics(model: Backbone, rows: np.ndarray, batch_size: int = 65536) -> tuple[float, float]:
    """``(AUC, F1)`` of ``(user, item, label)`` rows (scores: :meth:`Backbone.predict`)."""
    was = model.training
    model.eval()
    scores = model.predict(rows, batch_size)
    model.train(was)
    return _auc_f1(np.asarray(rows)[:, 2], scores)


# ---------------------------------------------------------------------------- training
@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of :func:`train`.

    ``history``: one dict per epoch (``epoch, loss, base_loss, cl_loss, l2_loss, valid_auc,
    valid_f1, seconds``); ``seconds`` is the total training wall time (evaluation excluded; the
    epochs plus :func:`end_training`, also in ``info["finish_seconds"]``);
    ``train_rows_per_s`` = labelled training rows processed per second of training.
    """

    model: Backbone
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


def train(ds, split, cfg: TrainConfig, *, pairs=None, text=None, out_dir=None, progress: bool = True,
          model: Backbone | None = None, optimizer_state: dict | None = None, out_extra: dict | None = None) -> TrainResult:
    """Train one run (see :func:`_train` for the arguments).

    With ``out_dir`` the run is written into a hidden sibling folder and renamed onto
    ``out_dir`` only when complete (:func:`kgcl_lib.storage.atomic_dir`): an interrupted run
    (Ctrl-C, kill, crash) leaves an earlier run in ``out_dir`` as it was, never a mix of new
    and old files.  ``out_dir`` may be empty, missing or hold an earlier run; a folder holding
    anything else raises ``ValueError`` (see :func:`check_out_dir`).  ``out_extra`` maps file
    names to JSON objects written alongside (the CLI's ``cli.json``).
    """
    kwargs = dict(pairs=pairs, text=text, progress=progress, model=model, optimizer_state=optimizer_state)
    if out_dir is None:
        return _train(ds, split, cfg, **kwargs)
    check_out_dir(out_dir)
    with atomic_dir(out_dir) as stage:
        result = _train(ds, split, cfg, out_dir=stage, **kwargs)
        for name, obj in (out_extra or {}).items():
            write_json(stage / name, obj)
    return result


def _train(ds, split, cfg: TrainConfig, *, pairs=None, text=None, out_dir=None, progress: bool = True,
           model: Backbone | None = None, optimizer_state: dict | None = None) -> TrainResult:
    """Train the backbone ``cfg.backbone`` (+text, +CL) on ``split.train``; valid AUC/F1 each
    epoch; test at the end.  Calls the backbone in the order of docs/DESIGN.md ("Backbone seam").

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
    if cfg.variant != "base" and pairs is None:
        raise ValueError(f"variant {cfg.variant!r} needs content pairs (kgcl_lib.pairs.build_pairs)")
    seeds = RunSeeds(cfg.seed)
    if model is None:
        model = build_backbone(cfg.backbone, ds, cfg, text, seeds, train=split.train)
    model.to(device).train()
    rows = training_rows(ds, split, cfg, pairs)
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(out_dir / "config.json", cfg.to_dict())
    if not model.trainable:  # nothing to fit: evaluate as built
        result = _result(model, split, cfg, [], 0, rows, device)
        if out_dir is not None:
            write_run(out_dir, result, 0)
        return result
    model.configure_training(cfg)
    if optimizer_state is not None:
        model.load_optimizer_state(optimizer_state)
    gen = seeds.shuffles()

    history, best, mark_of = [], Best(-math.inf, 0, None), {}
    bar_cls = tqdm if progress else None
    for epoch in range(1, cfg.epochs + 1):
        rec, mark_of[epoch] = run_epoch(model, cfg, rows, gen, epoch, device, bar_cls)
        if len(split.valid):
            rec["valid_auc"], rec["valid_f1"] = ctr_metrics(model, split.valid, cfg.eval_batch_size)
        history.append(rec)
        if bar_cls is not None:
            _print_epoch(rec)
        best, stop = select_best(best, rec, model, cfg)
        if stop:
            break

    final_epoch, best_epoch = restore_best(model, history, best, cfg)
    finish_seconds = end_training(model, mark_of[best_epoch], device)
    result = _result(model, split, cfg, history, best_epoch, rows, device, finish_seconds)
    if out_dir is not None:
        write_run(out_dir, result, final_epoch)
    return result


@dataclass(frozen=True, eq=False)
class TrainRows:
    """A run's training rows and content pairs as tensors, and their joint batching.

    ``users``, ``items``: ``int64[n]``; ``labels``: ``float32[n]`` (0/1).  ``pair_anchor``,
    ``pair_other``, ``pair_label``: ``int64[n_pairs]`` item indices and 0/1 labels (``None``
    for ``variant="base"``; positives only for InfoNCE).  ``steps = ceil(n / batch_size)`` per
    epoch and ``cl_batch = ceil(n_pairs / steps)`` pairs per step, so both are traversed once
    per epoch.
    """

    users: Tensor
    items: Tensor
    labels: Tensor
    steps: int
    pair_anchor: Tensor | None = None
    pair_other: Tensor | None = None
    pair_label: Tensor | None = None
    cl_batch: int = 0

    @property
    def n(self) -> int:
        return len(self.users)

    @property
    def n_pairs(self) -> int:
        return 0 if self.pair_anchor is None else len(self.pair_anchor)


def training_rows(ds, split, cfg: TrainConfig, pairs=None) -> TrainRows:
    """``split.train`` and (for the ``cl_*`` variants) the checked content pairs as :class:`TrainRows`."""
    tr = torch.as_tensor(np.asarray(split.train), dtype=torch.int64)
    t_users, t_items, t_labels = tr[:, 0].contiguous(), tr[:, 1].contiguous(), tr[:, 2].float()
    steps = math.ceil(len(tr) / cfg.batch_size)
    if cfg.variant == "base":
        return TrainRows(t_users, t_items, t_labels, steps)
    pa, po, py = (torch.from_numpy(x) for x in pairs_arrays(pairs, ds.n_items))
    if cfg.cl_loss == "infonce":  # Eq. 1 uses positive pairs only; negatives are in-batch
        keep = py == 1
        pa, po, py = pa[keep], po[keep], py[keep]
    return TrainRows(t_users, t_items, t_labels, steps, pa, po, py, math.ceil(len(pa) / steps))


@dataclass(frozen=True, eq=False)
class Batch:
    """One step's rows: ``users``, ``items`` ``int64[b]``, ``labels`` ``float32[b]``; with CL the
    step's content pairs ``anchor``, ``other`` ``int64[p]`` and ``pair_label`` ``float32[p]``."""

    users: Tensor
    items: Tensor
    labels: Tensor
    anchor: Tensor | None = None
    other: Tensor | None = None
    pair_label: Tensor | None = None


def train_step(model: Backbone, cfg: TrainConfig, batch: Batch) -> Tensor:
    """One optimiser step of Eq. 5 on ``batch``; returns ``float[4]`` (loss, L_base, CL, L2), detached.

    ``L = γ·L_base + (1−γ)·CL + λ·½‖Θ‖² (+ the backbone's extra term)``; without content pairs
    ``L = L_base + λ·½‖Θ‖²``.  The backbone computes the forward pass and applies the update.
    """
    use_cl = batch.anchor is not None
    lam = cfg.l2
    out = model.step_forward(batch.users, batch.items, batch.anchor, batch.other)
    base = F.binary_cross_entropy_with_logits(out.logits, batch.labels)
    if use_cl:
        gamma, ha, ho = cfg.gamma, out.anchor, out.other
        cl = cl_bce_loss(ha, ho, batch.pair_label) if cfg.cl_loss == "bce" else info_nce_loss(ha, ho, cfg.temperature)
        loss = gamma * base + (1 - gamma) * cl + lam * out.l2
    else:
        cl = base.new_zeros(())
        loss = base + lam * out.l2
    if out.extra is not None:
        loss = loss + out.extra
    model.step_update(loss, out)
    return torch.stack([loss.detach(), base.detach(), cl.detach(), out.l2.detach()])


def run_epoch(model: Backbone, cfg: TrainConfig, rows: TrainRows, gen: torch.Generator, epoch: int,
              device: torch.device, bar_cls=None) -> tuple[dict, object]:
    """Shuffle (rows, then pairs, from ``gen``) and take ``rows.steps`` :func:`train_step` s.

    Returns the epoch's history record -- ``epoch``, the mean ``loss``, ``base_loss``, ``cl_loss``,
    ``l2_loss`` over its steps, ``seconds`` (wall time) and ``rows_per_s`` -- and the backbone's
    :meth:`~Backbone.end_epoch` mark.  ``bar_cls``: a tqdm class for a per-epoch progress bar, or
    ``None``.
    """
    t0 = time.perf_counter()
    n, steps, bs, cl_bs = rows.n, rows.steps, cfg.batch_size, rows.cl_batch
    perm = torch.randperm(n, generator=gen)
    eu, ei, ey = rows.users[perm].to(device), rows.items[perm].to(device), rows.labels[perm].to(device)
    use_cl = rows.pair_anchor is not None
    if use_cl:
        pp = torch.randperm(rows.n_pairs, generator=gen)
        ea, eo = rows.pair_anchor[pp].to(device), rows.pair_other[pp].to(device)
        epy = rows.pair_label[pp].float().to(device)
    sums = torch.zeros(4, device=device)  # total, base, cl, l2 (summed over steps)
    it = range(steps)
    bar = None
    if bar_cls is not None:
        bar = bar_cls(it, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", leave=False, mininterval=0.5)
        it = bar
    for s in it:
        lo, hi = s * bs, min(n, (s + 1) * bs)
        batch = Batch(eu[lo:hi], ei[lo:hi], ey[lo:hi])
        if use_cl:
            plo, phi = s * cl_bs, min(rows.n_pairs, (s + 1) * cl_bs)
            batch = Batch(batch.users, batch.items, batch.labels, ea[plo:phi], eo[plo:phi], epy[plo:phi])
        sums += train_step(model, cfg, batch)
        if bar is not None and (s % 20 == 0 or s == steps - 1):
            m = (sums / (s + 1)).tolist()
            bar.set_postfix(loss=f"{m[0]:.4f}", base=f"{m[1]:.4f}", cl=f"{m[2]:.4f}", refresh=False)
    mark = model.end_epoch()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    m = (sums / steps).tolist()
    return {"epoch": epoch, "loss": m[0], "base_loss": m[1], "cl_loss": m[2], "l2_loss": m[3], "seconds": dt,
            "rows_per_s": n / dt}, mark


def _print_epoch(rec: dict) -> None:
    print(f"epoch {rec['epoch']}: loss {rec['loss']:.4f} base {rec['base_loss']:.4f} cl {rec['cl_loss']:.4f} valid auc "
          f"{rec.get('valid_auc', float('nan')):.4f} f1 {rec.get('valid_f1', float('nan')):.4f} ({rec['seconds']:.1f}s)",
          file=sys.stderr)


class Best(NamedTuple):
    """The best epoch so far: its valid AUC (``-inf`` without a valid split), number and weights
    (a copy of the state dict; ``None`` unless ``restore_best``)."""

    valid_auc: float
    epoch: int
    state: dict | None


def select_best(best: Best, rec: dict, model: Backbone, cfg: TrainConfig) -> tuple[Best, bool]:
    """``(best so far including epoch rec, whether to stop early)`` (``cfg.patience`` epochs without a better valid AUC)."""
    score = rec.get("valid_auc", -math.inf)
    if score > best.valid_auc or best.state is None:
        return Best(score, rec["epoch"], copy.deepcopy(model.state_dict()) if cfg.restore_best else None), False
    return best, bool(cfg.patience and rec["epoch"] - best.epoch >= cfg.patience)


def restore_best(model: Backbone, history: list, best: Best, cfg: TrainConfig) -> tuple[int, int]:
    """Load the best epoch's weights into ``model`` (``cfg.restore_best``); ``(final epoch, tested epoch)``."""
    final_epoch = history[-1]["epoch"]
    if cfg.restore_best and best.state is not None and best.epoch != final_epoch:
        model.load_state_dict(best.state)
    return final_epoch, (best.epoch if cfg.restore_best else final_epoch)


def end_training(model: Backbone, mark, device: torch.device) -> float:
    """The backbone's :meth:`~Backbone.end_training` with the returned epoch's ``mark``; its wall
    time (s).  KGCN: the table rows no forward pass reads take their idle optimiser steps up to
    that epoch's step, once per run instead of every epoch (:meth:`KGCN.end_training`)."""
    t0 = time.perf_counter()
    model.end_training(mark)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _result(model: Backbone, split, cfg: TrainConfig, history: list, best_epoch: int, rows: TrainRows,
            device: torch.device, finish_seconds: float = 0.0) -> TrainResult:
    """The :class:`TrainResult`: test AUC/F1 of ``model`` as it is now, valid AUC/F1 of ``best_epoch``
    (``finish_seconds``: :func:`end_training`'s time, counted in the training time).  Without
    epochs (a backbone with nothing to train) the valid metrics are the built model's."""
    if history:
        chosen = history[best_epoch - 1]
    else:
        valid = ctr_metrics(model, split.valid, cfg.eval_batch_size) if len(split.valid) else (float("nan"),) * 2
        chosen = dict(zip(("valid_auc", "valid_f1"), valid))
    test_auc, test_f1 = ctr_metrics(model, split.test, cfg.eval_batch_size) if len(split.test) else (float("nan"),) * 2
    train_seconds = 0.0
    for rec in history:
        train_seconds += rec["seconds"]
    train_seconds += finish_seconds
    use_cl = rows.pair_anchor is not None
    return TrainResult(
        model=model, config=cfg, history=history, test_auc=test_auc, test_f1=test_f1,
        valid_auc=chosen.get("valid_auc", float("nan")), valid_f1=chosen.get("valid_f1", float("nan")),
        best_epoch=best_epoch, epochs=len(history), seconds=train_seconds,
        train_rows_per_s=rows.n * len(history) / train_seconds if train_seconds > 0 else float("nan"),
        info={"device": str(device), "threads": torch.get_num_threads(), "n_train": rows.n, "steps_per_epoch": rows.steps,
              "n_pairs": int(rows.n_pairs) if use_cl else 0, "cl_batch": int(rows.cl_batch) if use_cl else 0,
              "optimizer": cfg.optimizer, "finish_seconds": finish_seconds},
    )


def write_run(out_dir: Path, result: TrainResult, final_epoch: int) -> None:
    """``history.json``, ``result.json`` and ``checkpoint.pt`` of a finished run into ``out_dir``.

    Weights: the returned (best-valid) model; optimiser state: as after the last epoch.
    """
    write_json(out_dir / "history.json", result.history)
    write_json(out_dir / "result.json", result.summary())
    save_checkpoint(out_dir / "checkpoint.pt", result.model, result.config,
                    extra={"epoch": final_epoch, "best_epoch": result.best_epoch})
