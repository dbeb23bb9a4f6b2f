"""What a training run writes: its checkpoint (:func:`save_checkpoint`, :func:`load_checkpoint`)
and its run folder (:func:`check_out_dir`).  Importable from :mod:`kgcl_lib.train` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .model import KGCN, ModelConfig
from .optim import Optimizer
from .storage import atomic_path
from .train_config import TrainConfig

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
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)  # through a handle: a full disk is then OSError(ENOSPC), not torch's zip error
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
