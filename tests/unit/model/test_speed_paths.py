"""Fast paths of the default profile give the numbers of the plain computation they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgcl_lib.model.scoring import _tanh_dot


@pytest.mark.parametrize("shape_pre, shape_u", [((7, 5, 16), (5, 16)), ((5, 9, 32), (5, 1, 32))])
def test_tanh_dot_equals_tanh_then_dot(shape_pre, shape_u):
    """``2 u·σ(2x) − Σu`` equals ``u·tanh(x)``: against float64, no worse than float32 tanh."""
    g = torch.Generator().manual_seed(0)
    pre = torch.randn(shape_pre, generator=g) * 3
    pre.view(-1)[:40] = torch.tensor([0.0, 1e-8, -1e-8, 1e-4, -1e-4, 20.0, -20.0, 50.0, -50.0, 1e3] * 4)
    u = torch.randn(shape_u, generator=g)
    ref64 = (torch.tanh(pre.double()) * u.double()).sum(-1)
    old32 = (torch.tanh(pre) * u).sum(-1)
    got = _tanh_dot(pre.clone(), u, u.sum(-1))
    assert got.shape == ref64.shape and got.dtype == torch.float32
    err_new = (got.double() - ref64).abs()
    err_old = (old32.double() - ref64).abs()
    scale = u.abs().sum(-1).double().expand_as(ref64)
    # a few float32 roundings of a number of magnitude <= sum|u|
    assert bool((err_new <= 8 * torch.finfo(torch.float32).eps * scale).all()), float((err_new / scale).max())
    assert float(err_new.max()) <= 8 * max(float(err_old.max()), torch.finfo(torch.float32).eps)


def test_tanh_dot_hand_computed():
    # tanh(0) = 0, tanh(±inf-like) = ±1, tanh(atanh(0.5)) = 0.5
    pre = torch.tensor([[0.0, 100.0, -100.0, float(np.arctanh(0.5))]])
    u = torch.tensor([[3.0, 2.0, 1.0, 4.0]])
    got = _tanh_dot(pre, u, u.sum(-1))
    assert got.item() == pytest.approx(0 * 3 + 2 - 1 + 0.5 * 4, abs=1e-6)
