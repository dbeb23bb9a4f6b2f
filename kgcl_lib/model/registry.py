"""The backbones by name: ``TrainConfig.backbone`` / ``--backbone`` / ``RunSpec.backbone``.

A new backbone is a module in this package with a :class:`~kgcl_lib.model.backbone.Backbone`
subclass, and one line in :data:`BACKBONES` (docs/DESIGN.md, "Backbone seam").
"""

from __future__ import annotations

from ..seeds import RunSeeds
from .backbone import Backbone
from .kgcn import KGCN
from .ripplenet import RippleNet
from .lightgcn import LightGCN
from .mf import MatrixFactorization
from .pop import Popularity

#: name -> Backbone subclass; the first is the default (the paper's KGCN)
BACKBONES: dict[str, type[Backbone]] = {
    "kgcn": KGCN,
    "ripplenet": RippleNet,
    "pop": Popularity,
    "mf": MatrixFactorization,
    "lightgcn": LightGCN,
}
DEFAULT_BACKBONE = "kgcn"


def build_backbone(name: str, ds, cfg, text=None, seeds: RunSeeds | None = None, train=None) -> Backbone:
    """A fresh backbone ``name`` for dataset ``ds`` and run config ``cfg`` (:meth:`Backbone.build`);
    ``train`` (the run's ``split.train``) is handed on to a backbone with ``needs_train``."""
    cls = backbone_class(name)
    if cls.needs_train:
        return cls.build(ds, cfg, text=text, seeds=seeds, train=train)
    return cls.build(ds, cfg, text=text, seeds=seeds)


def backbone_class(name: str) -> type[Backbone]:
    """The class registered as ``name``; ``ValueError`` naming the allowed names otherwise."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; expected one of {tuple(BACKBONES)}") from None
