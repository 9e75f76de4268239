"""PostTrainingLoss: its parts, and a zero MLM part when nothing is masked."""

from __future__ import annotations

import pytest
import torch

from hashbert.losses.post_training import PostTrainingLoss


def test_post_training_loss_parts_and_empty_mask():
    loss = PostTrainingLoss(relevance_weight=0.5)
    value = loss(torch.zeros(0, 7), torch.zeros(0, dtype=torch.long), torch.zeros(2, 3), torch.tensor([0, 2]))
    assert loss.last_parts["mlm"] == 0.0
    assert float(value) == pytest.approx(0.5 * torch.log(torch.tensor(3.0)).item(), rel=1e-5)
