"""ReconstructionLoss: the cosine on hand-made vectors, a gradient step, and a detached target."""

from __future__ import annotations

import pytest
import torch

from hashbert.losses.reconstruction import ReconstructionLoss


def test_reconstruction_cosine_andgradient_step(gradient_step):
    dense = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert float(ReconstructionLoss()(dense * 3, dense)) == pytest.approx(0.0, abs=1e-6)
    assert float(ReconstructionLoss()(-dense, dense)) == pytest.approx(2.0)
    decoded = torch.tensor([[0.2, 1.0], [1.0, 0.3]], requires_grad=True)
    before, after = gradient_step(lambda d: ReconstructionLoss()(d, dense), decoded)
    assert after < before


def test_reconstruction_target_detached():
    dense = torch.randn(3, 4, requires_grad=True)
    ReconstructionLoss()(torch.randn(3, 4, requires_grad=True), dense).backward()
    assert dense.grad is None
