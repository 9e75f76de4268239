"""MaxSimInBatchLoss: with one vector a side it is the in-batch softmax loss."""

from __future__ import annotations

import torch

from hashbert.losses.in_batch import InBatchSoftmaxLoss
from hashbert.losses.maxsim import MaxSimInBatchLoss


def test_maxsim_loss_with_one_vector_is_the_in_batch_loss():
    gen = torch.Generator().manual_seed(1)
    context, response = torch.randn(4, 1, 8, generator=gen), torch.randn(4, 1, 8, generator=gen)
    ones = torch.ones(4, 1, dtype=torch.bool)
    torch.testing.assert_close(
        MaxSimInBatchLoss(0.1)(context, ones, response, ones), InBatchSoftmaxLoss(0.1)(context[:, 0], response[:, 0])
    )
