"""PointwiseBceLoss: the binary cross-entropy of torch on logits."""

from __future__ import annotations

import torch

from hashbert.losses.pointwise import PointwiseBceLoss


def test_bce_loss_matches_torch():
    logits, labels = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    assert torch.isclose(PointwiseBceLoss()(logits, labels), expected)
