"""SimilarityPreservingLoss on hand-computable tensors: values, scale freedom, steps that separate positives."""

from __future__ import annotations

import pytest
import torch

from hashbert.losses.similarity import SimilarityPreservingLoss


def _margin(h_c, h_r):
    """Mean diagonal similarity minus mean off-diagonal similarity."""
    s = h_c @ h_r.T / h_c.shape[1]
    off = ~torch.eye(len(s), dtype=torch.bool)
    return float(s.diagonal().mean() - s[off].mean())


@pytest.mark.parametrize("form", ["softmax", "mse", "frobenius"])
def test_similarity_step_separates_positives(form, gradient_step):
    torch.manual_seed(0)
    h_c, h_r = torch.randn(8, 64).tanh().requires_grad_(), torch.randn(8, 64).tanh().requires_grad_()
    loss = SimilarityPreservingLoss(form)
    margin_before = _margin(h_c.detach(), h_r.detach())
    before, after = gradient_step(loss, h_c, h_r, lr=2.0 if form == "softmax" else 20.0)
    assert after < before
    assert _margin(h_c.detach(), h_r.detach()) > margin_before


def test_distill_matches_the_teacher_ranking(gradient_step):
    torch.manual_seed(3)
    x_c = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    x_r = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    teacher = x_c @ x_r.T
    h_c, h_r = torch.randn(8, 64).tanh().requires_grad_(), torch.randn(8, 64).tanh().requires_grad_()
    loss = SimilarityPreservingLoss("distill", temperature=0.05, teacher_temperature=0.05)
    before, after = gradient_step(lambda a, b: loss(a, b, teacher), h_c, h_r, lr=5.0)
    assert after < before
    for _ in range(200):
        gradient_step(lambda a, b: loss(a, b, teacher), h_c, h_r, lr=5.0)
    student = torch.nn.functional.normalize(h_c, dim=-1) @ torch.nn.functional.normalize(h_r, dim=-1).T
    correlation = torch.corrcoef(torch.stack([student.detach().flatten(), teacher.flatten()]))[0, 1]
    assert correlation > 0.8
    assert (student.argmax(1) == teacher.argmax(1)).float().mean() >= 0.75
    with pytest.raises(ValueError, match="teacher_scores"):
        loss(h_c, h_r)


def test_similarity_is_scale_free():
    torch.manual_seed(4)
    h_c, h_r = torch.randn(6, 64), torch.randn(6, 64)
    for form in ("softmax", "mse", "frobenius"):
        loss = SimilarityPreservingLoss(form)
        assert float(loss(h_c, h_r)) == pytest.approx(float(loss(3 * h_c, 0.5 * h_r)), rel=1e-5)


def test_similarity_values_on_perfect_codes():
    codes = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])  # orthogonal rows
    assert float(SimilarityPreservingLoss("mse")(codes, codes)) == pytest.approx(0.0)
    assert float(SimilarityPreservingLoss("frobenius")(codes, codes)) == pytest.approx(0.0)
    # softmax: diagonal logit 1/0.05 = 20, others 0 -> CE = log(1 + 3 e^-20)
    assert float(SimilarityPreservingLoss("softmax", 0.05)(codes, codes)) == pytest.approx(0.0, abs=1e-6)
    expected = -torch.log_softmax(torch.tensor([1.0, 0, 0, 0]), 0)[0].item()
    assert float(SimilarityPreservingLoss("softmax", 1.0)(codes, codes)) == pytest.approx(expected)
    assert float(SimilarityPreservingLoss("mse", negative_target=-1.0)(codes, codes)) == pytest.approx(0.5)


def test_frobenius_rewards_collapse_more_than_balanced_mse():
    # All-zero outputs (a collapsed head) vs the ideal: the literal form barely penalises collapse at batch 64.
    zeros = torch.zeros(64, 64)
    assert float(SimilarityPreservingLoss("frobenius")(zeros, zeros)) == pytest.approx(1 / 64)
    assert float(SimilarityPreservingLoss("mse")(zeros, zeros)) == pytest.approx(0.5)


@pytest.mark.parametrize("form", ["softmax", "distill", "mse", "frobenius"])
def test_extra_negatives_widen_the_rows(form):
    """Extra negatives after the B paired responses: softmax is the cross-entropy over all B + N columns, an
    extra negative that matches a context (a hard one) costs more than a far one, and N = 0 is the square loss."""
    torch.manual_seed(5)
    h_c, h_r = torch.randn(4, 32), torch.randn(4, 32)
    teacher = lambda r: h_c @ r.T  # noqa: E731
    loss = SimilarityPreservingLoss(form, temperature=0.5, teacher_temperature=0.5)
    square = float(loss(h_c, h_r, teacher(h_r)))
    assert float(loss(h_c, h_r[:4], teacher(h_r[:4]))) == pytest.approx(square)
    hard, far = torch.cat([h_r, h_c[:2]]), torch.cat([h_r, torch.randn(2, 32)])  # negatives equal to contexts 0, 1
    if form == "softmax":
        s = torch.nn.functional.normalize(h_c, dim=-1) @ torch.nn.functional.normalize(hard, dim=-1).T
        expected = torch.nn.functional.cross_entropy(s / 0.5, torch.arange(4))
        assert float(loss(h_c, hard)) == pytest.approx(float(expected), rel=1e-5)
    if form != "distill":  # (distill follows the teacher, which scores the hard ones high too)
        assert float(loss(h_c, hard, teacher(hard))) > float(loss(h_c, far, teacher(far)))
    with pytest.raises(ValueError, match="a response per context"):
        loss(h_c, h_r[:3], teacher(h_r[:3]))


def test_distill_with_extra_negatives_follows_the_teacher_on_them(gradient_step):
    """The teacher ranks an extra negative above the positive for context 0: distillation moves the codes so."""
    torch.manual_seed(6)
    h_c = torch.randn(4, 64).tanh().requires_grad_()
    h_r = torch.randn(5, 64).tanh().requires_grad_()
    teacher = torch.eye(4, 5)
    teacher[0, 4], teacher[0, 0] = 2.0, 0.0
    loss = SimilarityPreservingLoss("distill", temperature=0.1, teacher_temperature=0.1)
    for _ in range(100):
        gradient_step(lambda a, b: loss(a, b, teacher), h_c, h_r, lr=2.0)
    s = torch.nn.functional.normalize(h_c, dim=-1) @ torch.nn.functional.normalize(h_r, dim=-1).T
    assert int(s[0].argmax()) == 4
    assert [int(i) for i in s[1:].argmax(1)] == [1, 2, 3]
