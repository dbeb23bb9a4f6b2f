"""Trainer for the KGCL model (:mod:`kgcl_lib.model`), and the public entry point of training.

One run = one frozen :class:`TrainConfig`.  :func:`train` samples the neighbour table once from
the seed, trains with joint batching of user-content rows and content-content pairs, reports
valid AUC/F1 every epoch, optionally stops early, and returns a :class:`TrainResult`.

Layout: :func:`train` is a short loop over :func:`run_epoch` (shuffle, then
:func:`train_step` per batch), :func:`select_best` (best valid AUC, early stop),
:func:`restore_best`, :func:`finish_unread_rows` and :func:`write_run`.  The run config lives in
:mod:`kgcl_lib.train_config`, checkpoints and the run folder in :mod:`kgcl_lib.train_io`, the
argument parsing in :mod:`kgcl_lib.train_cli`; their public names are importable from here.

Loss (Eq. 5): ``L = γ·L_base + (1−γ)·CL + λ·½‖Θ‖²`` where ``L_base`` is the mean BCE over
the batch's labelled rows, ``CL`` the content contrastive loss (:func:`~kgcl_lib.model.cl_bce_loss`
or in-batch InfoNCE) over the content-pair batch, and the L2 term covers the whole user, entity
and relation tables and all weight matrices (KGCN's ``l2_loss``; biases excluded;
``l2_scope="batch"``: only the user / entity rows the batch used).  Without pairs
(``variant="base"``) the loss is ``L_base + λ·½‖Θ‖²`` (γ unused).

Joint batching: ``steps = ceil(n_train / batch_size)`` per epoch and the content-pair batch is
``ceil(n_pairs / steps)``, so both are traversed once per epoch in the same number of steps.

Optimiser (:mod:`kgcl_lib.optim`)
---------------------------------
KGCN's: Adam (``torch.optim.Adam``) for the dense weights (relations, aggregators, α) and
:class:`~kgcl_lib.optim.TableAdam` for the user and entity tables, which only reads and writes
the rows a batch touches.  ``optimizer="adam"`` (default) keeps *dense* Adam semantics: the steps
an idle row misses are applied when the row is next used and at every epoch end (exact, tested
against ``torch.optim.Adam``) -- except for entity rows no forward pass reads
(:meth:`~kgcl_lib.model.KGCN.readable_entities`: not an item nor in an item's sampled receptive
field), which no score depends on; :func:`finish_unread_rows` brings those to the returned
epoch's step once, after the last epoch (same bits as flushing them every epoch).
``"lazy_adam"`` is ``torch.optim.SparseAdam``'s lazy Adam (idle rows frozen, moments not decayed
-- under-trains at the paper's learning rates); ``"dense_adam"`` rewrites the whole tables every
step (reference; what makes RecBole's Book-Crossing epoch slow).

L2 scope: ``l2_scope="table"`` (default) is KGCN's reference code: λ on the *whole* user, entity
and relation tables and the weights every step, so idle rows shrink too (their missed steps are
iterated exactly by :class:`~kgcl_lib.optim.TableAdam`).  ``l2_scope="batch"`` (*not* KGCN's)
regularises only the rows a batch uses; on Book-Crossing it costs ≈ 0.02 AUC (docs/method.md,
"L2 scope").

Determinism: the same seed and device give identical losses on CPU (all randomness comes from
one ``torch.Generator`` and one ``numpy.random.Generator`` made from the seed; on CUDA,
``index_add_`` uses atomics, so enable ``torch.use_deterministic_algorithms`` for bitwise
repeats).

Test-set selection: with ``restore_best`` (default) the test metrics are those of the epoch with
the best valid AUC.

CLI::

    python -m kgcl_lib.train --dataset book-crossing --seed 0 --json

For the paper's datasets (``book-crossing``, ``ml-*``) the run starts from Table 1's settings
(:func:`paper_settings`; ``--paper`` is a no-op alias kept for old scripts); ``--settings kgcn``
starts from KGCN's own published settings (:func:`kgcn_settings`), ``--settings generic`` from
:class:`TrainConfig`'s defaults.  Any flag overrides them.  From Python the same starting points are
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

from .constants import TRAIN_TEXTS, TRAIN_VARIANTS, VARIANT_TEMPLATE  # noqa: F401  (VARIANT_TEMPLATE: pair template per variant)
from .data import sample_neighbors
from .model import KGCN, cl_bce_loss, info_nce_loss
from .optim import Optimizer, TableAdam, make_optimizer  # noqa: F401 (public names stay importable from train)
from .storage import atomic_dir, write_json
from .train_cli import parser as _parser  # noqa: F401  (the CLI's parser under its old name)
from .train_cli import run_cli
from .train_config import (  # noqa: F401  (the run config stays importable from train)
    CL_LOSSES,
    OPTIMIZERS,
    TrainConfig,
    kgcn_settings,
    paper_settings,
    resolve_device,
)
from .train_io import Checkpoint, check_out_dir, load_checkpoint, save_checkpoint  # noqa: F401  (public from train)


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


def ctr_metrics(model: KGCN, rows: np.ndarray, batch_size: int = 65536) -> tuple[float, float]:
    """``(AUC, F1)`` of ``(user, item, label)`` rows."""
    was = model.training
    model.eval()
    scores = predict(model, rows, batch_size)
    model.train(was)
    return _auc_f1(np.asarray(rows)[:, 2], scores)


# ---------------------------------------------------------------------------- training
@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of :func:`train`.

    ``history``: one dict per epoch (``epoch, loss, base_loss, cl_loss, l2_loss, valid_auc,
    valid_f1, seconds``); ``seconds`` is the total training wall time (evaluation excluded; the
    epochs plus :func:`finish_unread_rows`, also in ``info["finish_seconds"]``);
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
          model: KGCN | None = None, optimizer_state: dict | None = None, out_extra: dict | None = None) -> TrainResult:
    """Train one run (see :func:`_train` for the arguments).

    With ``out_dir`` the run is written into a hidden sibling folder and renamed onto
    ``out_dir`` only when complete (:func:`kgcl_lib.storage.atomic_dir`): an interrupted run
    (Ctrl-C, kill, crash) leaves an earlier run in ``out_dir`` as it was, never a mix of new
    and old files.  ``out_dir`` may be empty, missing or hold an earlier run; a folder holding
    anything else raises ``ValueError`` (see :func:`check_out_dir`).  ``out_extra`` maps file
    names to JSON objects written alongside (the CLI's ``cli.json``).
    """
    from .data.split import warn_if_no_kg

    warn_if_no_kg(ds)
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
    if cfg.variant != "base" and pairs is None:
        raise ValueError(f"variant {cfg.variant!r} needs content pairs (kgcl_lib.pairs.build_pairs)")
    if model is None:
        model = build_model(ds, cfg, text, device)
    model.to(device).train()
    opt = make_optimizer(model, cfg)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    # Entity rows no forward pass reads skip the per-epoch flush (see finish_unread_rows).
    opt.rows.live["entity_emb"] = model.readable_entities()
    gen = torch.Generator().manual_seed(cfg.seed + 7919)  # epoch shuffles
    rows = training_rows(ds, split, cfg, pairs)
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(out_dir / "config.json", cfg.to_dict())

    history, best, step_of = [], Best(-math.inf, 0, None), {}
    bar_cls = None
    if progress:
        from tqdm.auto import tqdm as bar_cls
    for epoch in range(1, cfg.epochs + 1):
        rec = run_epoch(model, opt, cfg, rows, gen, epoch, device, bar_cls)
        if len(split.valid):
            rec["valid_auc"], rec["valid_f1"] = ctr_metrics(model, split.valid, cfg.eval_batch_size)
        history.append(rec)
        step_of[epoch] = opt.rows.t
        if bar_cls is not None:
            _print_epoch(rec)
        best, stop = select_best(best, rec, model, cfg)
        if stop:
            break

    final_epoch, best_epoch = restore_best(model, history, best, cfg)
    finish_seconds = finish_unread_rows(opt, step_of[best_epoch], device)
    result = _result(model, split, cfg, history, best_epoch, rows, device, finish_seconds)
    if out_dir is not None:
        write_run(out_dir, result, opt, final_epoch)
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


def train_step(model: KGCN, opt: Optimizer, cfg: TrainConfig, batch: Batch) -> Tensor:
    """One optimiser step of Eq. 5 on ``batch``; returns ``float[4]`` (loss, L_base, CL, L2), detached."""
    use_cl = batch.anchor is not None
    a, o, y = batch.anchor, batch.other, batch.pair_label
    lam = cfg.l2
    plan = model.plan(batch.users, batch.items, torch.cat([a, o]) if use_cl else None)
    opt.rows.tick()
    u_rows = opt.rows.begin("user_emb", plan.user_ids)
    e_rows = opt.rows.begin("entity_emb", plan.plain_ids)
    table = model.local_table(plan, e_rows)
    logits = model.forward_plan(plan, u_rows, table)
    base = F.binary_cross_entropy_with_logits(logits, batch.labels)
    # L2 on the weights through autograd; on the table rows its gradient λ·p is added
    # inside TableAdam (one pass, no autograd nodes): on the batch rows in finish, on the
    # idle rows when next used (l2_scope "table"); only the batch-scope value is logged.
    l2 = model.l2_penalty(u_rows[:0], e_rows[:0])
    row_l2 = lam if cfg.l2_scope == "batch" else 0.0
    if row_l2:  # the rows' value only (no graph); l2 keeps the weights' graph
        u_flat, e_flat = u_rows.detach().view(-1), e_rows.detach().view(-1)
        l2 = l2 + 0.5 * (torch.dot(u_flat, u_flat) + torch.dot(e_flat, e_flat))
    if use_cl:
        gamma = cfg.gamma
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
    return torch.stack([loss.detach(), base.detach(), cl.detach(), l2.detach()])


def run_epoch(model: KGCN, opt: Optimizer, cfg: TrainConfig, rows: TrainRows, gen: torch.Generator, epoch: int,
              device: torch.device, bar_cls=None) -> dict:
    """Shuffle (rows, then pairs, from ``gen``) and take ``rows.steps`` :func:`train_step` s.

    Returns the epoch's history record: ``epoch``, the mean ``loss``, ``base_loss``, ``cl_loss``,
    ``l2_loss`` over its steps, ``seconds`` (wall time) and ``rows_per_s``.  ``bar_cls``: a tqdm
    class for a per-epoch progress bar, or ``None``.
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
        sums += train_step(model, opt, cfg, batch)
        if bar is not None and (s % 20 == 0 or s == steps - 1):
            m = (sums / (s + 1)).tolist()
            bar.set_postfix(loss=f"{m[0]:.4f}", base=f"{m[1]:.4f}", cl=f"{m[2]:.4f}", refresh=False)
    opt.rows.flush()  # tables now equal dense Adam's (no-op for lazy/dense modes)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    m = (sums / steps).tolist()
    return {"epoch": epoch, "loss": m[0], "base_loss": m[1], "cl_loss": m[2], "l2_loss": m[3], "seconds": dt,
            "rows_per_s": n / dt}


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


def select_best(best: Best, rec: dict, model: KGCN, cfg: TrainConfig) -> tuple[Best, bool]:
    """``(best so far including epoch rec, whether to stop early)`` (``cfg.patience`` epochs without a better valid AUC)."""
    score = rec.get("valid_auc", -math.inf)
    if score > best.valid_auc or best.state is None:
        return Best(score, rec["epoch"], copy.deepcopy(model.state_dict()) if cfg.restore_best else None), False
    return best, bool(cfg.patience and rec["epoch"] - best.epoch >= cfg.patience)


def restore_best(model: KGCN, history: list, best: Best, cfg: TrainConfig) -> tuple[int, int]:
    """Load the best epoch's weights into ``model`` (``cfg.restore_best``); ``(final epoch, tested epoch)``."""
    final_epoch = history[-1]["epoch"]
    if cfg.restore_best and best.state is not None and best.epoch != final_epoch:
        model.load_state_dict(best.state)
    return final_epoch, (best.epoch if cfg.restore_best else final_epoch)


def finish_unread_rows(opt: Optimizer, step: int, device: torch.device) -> float:
    """Bring the table rows that no forward pass reads (:meth:`KGCN.readable_entities`) to
    optimiser step ``step`` -- the step of the epoch whose weights the run returns -- so the
    returned tables equal dense Adam's everywhere; returns the wall time (s).

    Until now those rows only held their state: they cannot change a score, so the per-epoch
    flush skips them, and after :func:`restore_best` they still hold what the best epoch's copy
    holds.  Cost: ``step`` idle steps per such row once per run, instead of every epoch's.
    """
    t0 = time.perf_counter()
    opt.rows.flush(target=step, unread=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _result(model: KGCN, split, cfg: TrainConfig, history: list, best_epoch: int, rows: TrainRows,
            device: torch.device, finish_seconds: float = 0.0) -> TrainResult:
    """The :class:`TrainResult`: test AUC/F1 of ``model`` as it is now, valid AUC/F1 of ``best_epoch``
    (``finish_seconds``: :func:`finish_unread_rows`' time, counted in the training time)."""
    chosen = history[best_epoch - 1]
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


def write_run(out_dir: Path, result: TrainResult, opt: Optimizer, final_epoch: int) -> None:
    """``history.json``, ``result.json`` and ``checkpoint.pt`` of a finished run into ``out_dir``.

    Weights: the returned (best-valid) model; optimiser state: as after the last epoch.
    """
    write_json(out_dir / "history.json", result.history)
    write_json(out_dir / "result.json", result.summary())
    save_checkpoint(out_dir / "checkpoint.pt", result.model, opt, result.config,
                    extra={"epoch": final_epoch, "best_epoch": result.best_epoch})


# ---------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    """``python -m kgcl_lib.train`` (:mod:`kgcl_lib.train_cli`); returns the exit status."""
    from .cli import run_main

    return run_main(lambda args: run_cli(args, train), argv, prog="python -m kgcl_lib.train")



if __name__ == "__main__":
    sys.exit(main())
