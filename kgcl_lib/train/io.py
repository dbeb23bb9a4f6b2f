"""What a training run writes: its checkpoint (:func:`save_checkpoint`, :func:`load_checkpoint`)
and its run folder (:func:`check_out_dir`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..model import Backbone, backbone_class
from ..storage import atomic_path
from .config import TrainConfig


def save_checkpoint(path, model: Backbone, cfg: TrainConfig, extra: dict | None = None) -> Path:
    """Write config + model weights/buffers (+ :meth:`Backbone.checkpoint_payload`) + the
    backbone's optimiser state (``None`` before training) atomically to ``path``."""
    payload = {
        "train_config": cfg.to_dict(),
        "backbone": model.name,
        **model.checkpoint_payload(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": model.optimizer_state_dict(),
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


@dataclass(frozen=True, eq=False)
class Checkpoint:
    model: Backbone
    config: TrainConfig
    optimizer_state: dict | None
    extra: dict


def load_checkpoint(path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model (and return the optimiser state) saved by :func:`save_checkpoint`.

    Pass ``model=ckpt.model, optimizer_state=ckpt.optimizer_state`` to :func:`kgcl_lib.train.train`
    to resume training.  Checkpoints written before the ``backbone`` key existed are KGCN's.
    """
    payload = torch.load(path, map_location="cpu", weights_only=False)
    model = backbone_class(payload.get("backbone", "kgcn")).from_checkpoint(payload)
    model.to(device)
    return Checkpoint(model, TrainConfig.from_dict(payload["train_config"]), payload["optimizer"], payload["extra"])


def check_out_dir(out_dir) -> bool:
    """Whether ``out_dir`` holds an earlier run (it will be replaced when the new one completes).

    Raises ``ValueError`` when it holds anything else, so unrelated files are never deleted.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder")
    if not out.is_dir():
        return False
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return False
    if "config.json" in entries and set(entries) <= _RUN_FILES:
        return True
    foreign = [e for e in entries if e not in _RUN_FILES]
    raise ValueError(f"{out} is not empty and not a training run (holds {', '.join(foreign[:5])}); choose another folder")


#: Files a ``--out-dir`` run folder holds (anything else marks a folder we must not replace).
_RUN_FILES = {"config.json", "history.json", "result.json", "checkpoint.pt", "cli.json"}
