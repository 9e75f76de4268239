"""QuantizationLoss: zero at the ±1 corners, and a gradient step moves the outputs toward them."""

from __future__ import annotations

import pytest
import torch

from hashbert.losses.quantization import QuantizationLoss


def test_quantization_zero_at_corners_and_step_moves_toward_them(gradient_step):
    corners = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    assert float(QuantizationLoss()(corners, corners)) == 0.0
    h_c, h_r = torch.tensor([[0.3, -0.5]], requires_grad=True), torch.tensor([[1.6, -0.1]], requires_grad=True)
    before, after = gradient_step(QuantizationLoss(), h_c, h_r, lr=0.5)
    assert float(QuantizationLoss()(torch.tensor([[0.3, -0.5]]), torch.tensor([[1.6, -0.1]]))) == pytest.approx(
        0.5 * ((0.7**2 + 0.5**2) / 2 + (0.6**2 + 0.9**2) / 2)
    )
    assert after < before
