"""Recommender backbones behind one seam (:class:`Backbone`), the paper's KGCN among them.

Layout (each module imports only the ones before it)::

    kernels (+ csrc/kernels.cpp)   optional compiled CPU kernels
    table_adam                     KGCN's row-sparse Adam for the big tables
    scoring                        KGCN's exact full-catalogue scores
    fast                           KGCN's batch plan and fast propagations
    backbone                       the seam: Backbone, StepOutput
    losses                         the content contrastive losses (Eq. 1, Eq. 4)
    kgcn_step                      KGCN's training step (row-sparse table updates)
    kgcn                           KGCN + semantic text, its maths in the docstrings
    ripplenet                      RippleNet (Wang et al. 2018) + semantic text, the second backbone
    pop                            simple baseline: item popularity (no training)
    mf                             simple baseline: biased matrix factorisation
    lightgcn                       simple baseline: LightGCN on the training positives' graph
    registry                       BACKBONES, build_backbone
"""

from .backbone import SCORING_MODES, Backbone, StepOutput  # noqa: F401
from .kgcn import AGGREGATOR, AGGREGATORS, KGCN, NEIGHBOR_REDUCE, ModelConfig, reference_item_representations  # noqa: F401
from .losses import cl_bce_loss, info_nce_loss  # noqa: F401
from .ripplenet import ITEM_UPDATE_MODES, RippleNet, RippleNetConfig  # noqa: F401
from .table_adam import Optimizer, TableAdam, make_optimizer  # noqa: F401
from .lightgcn import LightGCN  # noqa: F401
from .mf import MatrixFactorization  # noqa: F401
from .pop import Popularity  # noqa: F401
from .registry import BACKBONES, DEFAULT_BACKBONE, backbone_class, build_backbone  # noqa: F401
