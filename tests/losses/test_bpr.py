"""BprLoss: a gradient step lowers each part, and the candidate loss is zero once the margin is met."""

from __future__ import annotations

import pytest
import torch

from hashbert.losses.bpr import BprLoss


@pytest.mark.parametrize(("part", "weights"), [("candidate", (1.0, 0.0)), ("rerank", (0.0, 1.0))])
def test_bpr_loss_step_lowers_each_part(part, weights, gradient_step):
    torch.manual_seed(2)
    z_c = torch.randn(8, 64, requires_grad=True)
    h_c = torch.randn(8, 64).tanh().requires_grad_()
    h_r = torch.randn(8, 64).tanh().requires_grad_()
    loss = BprLoss(margin=0.1, candidate_weight=weights[0], rerank_weight=weights[1])
    before, after = gradient_step(loss, z_c, h_c, h_r, lr=0.05 if part == "rerank" else 5.0)
    assert after < before and loss.last_parts[part] == pytest.approx(after)
    assert set(loss.last_parts) == {"candidate", "rerank"}


def test_bpr_candidate_loss_zero_when_margin_met():
    codes = torch.eye(4) * 2 - 1  # row i: +1 at i, -1 elsewhere; s_ii = 1, s_ij = 0
    loss = BprLoss(margin=0.5, rerank_weight=0.0)
    assert float(loss(codes, codes, codes)) == 0.0
    assert float(BprLoss(margin=1.5, rerank_weight=0.0)(codes, codes, codes)) == pytest.approx(0.5)
