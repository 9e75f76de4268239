from __future__ import annotations

import math

import pytest
import torch

from hashbert.losses.in_batch import InBatchSoftmaxLoss


def test_hand_computed_value():
    # 2 contexts, 2 responses; scores [[1, 0], [0, 1]] / 0.5 -> logits [[2, 0], [0, 2]]
    context = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    response = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert InBatchSoftmaxLoss(0.5)(context, response).item() == pytest.approx(expected, rel=1e-6)


def test_aligned_pairs_score_lower_than_shuffled():
    torch.manual_seed(0)
    vecs = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    loss = InBatchSoftmaxLoss(0.05)
    assert loss(vecs, vecs) < loss(vecs, vecs.roll(1, 0))


def test_hard_negatives_add_candidates():
    torch.manual_seed(0)
    context, response = torch.randn(4, 8), torch.randn(4, 8)
    loss = InBatchSoftmaxLoss(1.0)
    hard = context.clone()  # hard negatives equal to the contexts themselves score high
    assert loss(context, response, hard) > loss(context, response)


def test_gradient_pulls_positive_closer():
    context = torch.randn(4, 8, requires_grad=True)
    response = torch.randn(4, 8)
    InBatchSoftmaxLoss(0.1)(context, response).backward()
    # a step against the gradient increases every context's positive score
    before = (context * response).sum(-1)
    after = ((context - 0.01 * context.grad) * response).sum(-1)
    assert (after > before).all()


def test_rejects_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        InBatchSoftmaxLoss(0.0)
