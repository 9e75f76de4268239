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


def _reference_loss(context, response, per_context, temperature):
    """Row by row: context i against the B responses and its own m negatives."""
    total = 0.0
    for i in range(context.shape[0]):
        candidates = torch.cat([response, per_context[i]])  # (B + m, H)
        logits = candidates @ context[i] / temperature
        total += float(torch.logsumexp(logits, 0) - logits[i])
    return total / context.shape[0]


def test_per_context_negatives_match_a_row_by_row_reference():
    torch.manual_seed(1)
    context, response, per_context = torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 3, 8)
    got = InBatchSoftmaxLoss(0.7)(context, response, context_negative_vecs=per_context)
    assert got.item() == pytest.approx(_reference_loss(context, response, per_context, 0.7), rel=1e-5)


def test_one_negative_per_context_equal_for_all_is_a_shared_negative():
    torch.manual_seed(2)
    context, response, shared = torch.randn(4, 8), torch.randn(4, 8), torch.randn(1, 8)
    loss = InBatchSoftmaxLoss(0.5)
    per_context = shared.expand(4, 1, 8)
    assert loss(context, response, context_negative_vecs=per_context).item() == pytest.approx(
        loss(context, response, shared).item(), rel=1e-6
    )


def test_per_context_negatives_are_not_shared():
    # context 0's hard negative copies context 0 (a strong negative for it alone); moving it to row 1 changes the loss
    torch.manual_seed(3)
    context, response = torch.randn(2, 8), torch.randn(2, 8)
    own = torch.stack([context[0], torch.zeros(8)]).unsqueeze(1)  # (2, 1, 8)
    loss = InBatchSoftmaxLoss(1.0)
    assert loss(context, response, context_negative_vecs=own) != pytest.approx(
        loss(context, response, context_negative_vecs=own.flip(0)).item()
    )


def test_per_context_and_shared_negatives_combine(gradient_step):
    torch.manual_seed(4)
    context = torch.randn(3, 8, requires_grad=True)
    response, shared, own = torch.randn(3, 8), torch.randn(2, 8), torch.randn(3, 2, 8)
    loss = InBatchSoftmaxLoss(1.0)
    both = loss(context, response, shared, own)
    assert both > loss(context, response, shared) and both > loss(context, response, context_negative_vecs=own)
    before, after = gradient_step(lambda c: loss(c, response, shared, own), context, lr=0.1)
    assert after < before


def test_per_context_negatives_of_the_wrong_shape_are_refused():
    context, response = torch.randn(4, 8), torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"\(B, m, H\)"):
        InBatchSoftmaxLoss()(context, response, context_negative_vecs=torch.randn(3, 2, 8))
