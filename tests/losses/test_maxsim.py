"""MaxSimInBatchLoss: with one vector a side it is the in-batch softmax loss."""

from __future__ import annotations

import torch

from hashbert.losses.in_batch import InBatchSoftmaxLoss
from hashbert.losses.maxsim import MaxSimInBatchLoss
from hashbert.models.hdr.aggregators import maxsim


def test_maxsim_loss_with_one_vector_is_the_in_batch_loss():
    gen = torch.Generator().manual_seed(1)
    context, response = torch.randn(4, 1, 8, generator=gen), torch.randn(4, 1, 8, generator=gen)
    ones = torch.ones(4, 1, dtype=torch.bool)
    torch.testing.assert_close(
        MaxSimInBatchLoss(0.1)(context, ones, response, ones), InBatchSoftmaxLoss(0.1)(context[:, 0], response[:, 0])
    )


def test_maxsim_loss_scores_each_context_against_its_own_negatives():
    """With one vector a side, per-context negatives are ``InBatchSoftmaxLoss``'s ``context_negative_vecs``; with
    several, context i's logits gain exactly maxsim(context i, its own m negatives)."""
    gen = torch.Generator().manual_seed(2)
    shapes = ((4, 1, 8), (4, 1, 8), (4, 2, 1, 8))
    context, response, negatives = (torch.randn(*shape, generator=gen) for shape in shapes)
    ones = torch.ones(4, 1, dtype=torch.bool)
    torch.testing.assert_close(
        MaxSimInBatchLoss(0.1)(context, ones, response, ones, negatives, torch.ones(4, 2, 1, dtype=torch.bool)),
        InBatchSoftmaxLoss(0.1)(context[:, 0], response[:, 0], context_negative_vecs=negatives[:, :, 0]),
    )
    context, response = torch.randn(3, 4, 8, generator=gen), torch.randn(3, 2, 8, generator=gen)
    negatives = torch.randn(3, 2, 2, 8, generator=gen)
    context_mask, response_mask = torch.rand(3, 4, generator=gen) > 0.3, torch.ones(3, 2, dtype=torch.bool)
    context_mask[:, 0] = True
    negative_mask = torch.ones(3, 2, 2, dtype=torch.bool)
    negative_mask[0, 1, 1] = False
    logits = [maxsim(context, context_mask, response, response_mask)[i].tolist()
              + [float(maxsim(context[i : i + 1], context_mask[i : i + 1], negatives[i], negative_mask[i])[0, j])
                 for j in range(2)] for i in range(3)]
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits) / 0.1, torch.arange(3))
    loss = MaxSimInBatchLoss(0.1)(context, context_mask, response, response_mask, negatives, negative_mask)
    torch.testing.assert_close(loss, expected)
