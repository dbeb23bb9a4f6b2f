"""The content contrastive losses of KGCL (Kim et al., Eq. 1 and Eq. 4), backbone-agnostic:
they compare the item representations a backbone's training step hands back
(:attr:`~kgcl_lib.model.backbone.StepOutput.anchor` / ``other``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cl_bce_loss(anchor: Tensor, other: Tensor, label: Tensor) -> Tensor:
    """Content contrastive loss of Eq. 4: ``mean BCE-with-logits(h_c · h_c', label)``.

    ``anchor, other``: ``float[n, d]`` content representations; ``label``: ``[n]`` 1 = positive
    pair, 0 = negative.  Returns a scalar (mean over pairs; 0 for an empty batch).
    """
    if anchor.shape[0] == 0:
        return anchor.sum() * 0.0
    logits = (anchor * other).sum(-1)
    return F.binary_cross_entropy_with_logits(logits, label.to(logits.dtype))


def info_nce_loss(anchor: Tensor, positive: Tensor, temperature: float = 0.1) -> Tensor:
    """In-batch InfoNCE of Eq. 1 with ``sim = dot product`` (the paper's sim for CL).

    ``anchor, positive``: ``float[n, d]``, row i of ``positive`` is i's positive; every other row
    is an in-batch negative.  ``-mean_i log softmax_j(z_i·z+_j / t)[i]``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if anchor.shape[0] == 0:
        return anchor.sum() * 0.0
    logits = anchor @ positive.t() / temperature
    return F.cross_entropy(logits, torch.arange(anchor.shape[0], device=logits.device))
