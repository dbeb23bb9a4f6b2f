"""The backbones by name: ``TrainConfig.backbone`` / ``--backbone`` / ``RunSpec.backbone``.

A new backbone is a module in this package with a :class:`~kgcl_lib.model.backbone.Backbone`
subclass, and one line in :data:`BACKBONES` (docs/DESIGN.md, "Backbone seam").
"""

from __future__ import annotations

from ..seeds import RunSeeds
from .backbone import Backbone
from .kgcn import KGCN

#: name -> Backbone subclass; the first is the default (the paper's KGCN)
BACKBONES: dict[str, type[Backbone]] = {
    "kgcn": KGCN,
}
DEFAULT_BACKBONE = "kgcn"


def build_backbone(name: str, ds, cfg, text=None, seeds: RunSeeds | None = None) -> Backbone:
    """A fresh backbone ``name`` for dataset ``ds`` and run config ``cfg`` (:meth:`Backbone.build`)."""
    return backbone_class(name).build(ds, cfg, text=text, seeds=seeds)


def backbone_class(name: str) -> type[Backbone]:
    """The class registered as ``name``; ``ValueError`` naming the allowed names otherwise."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; expected one of {tuple(BACKBONES)}") from None
