from __future__ import annotations

import math

import pytest
import torch

from hashbert.losses.distillation import ScoreDistillationLoss


def test_hand_computed_value():
    # one row: teacher softmax([0, 0]) = (1/2, 1/2); student softmax([2, 0]) = (e^2, 1) / (e^2 + 1)
    student, teacher = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    p = math.exp(2) / (math.exp(2) + 1)
    expected = 0.5 * math.log(0.5 / p) + 0.5 * math.log(0.5 / (1 - p))
    assert ScoreDistillationLoss(0.5, 1.0)(student, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_zero_when_the_student_ranks_as_the_teacher_and_positive_otherwise():
    torch.manual_seed(0)
    teacher = torch.randn(6, 6)
    loss = ScoreDistillationLoss(0.05, 0.05)
    assert loss(teacher.clone(), teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(teacher.roll(1, 1), teacher).item() > 0.1


def test_only_the_student_gets_gradients():
    student, teacher = torch.randn(4, 4, requires_grad=True), torch.randn(4, 4, requires_grad=True)
    ScoreDistillationLoss()(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0 and teacher.grad is None


def test_rejects_mismatched_scores_and_temperatures():
    with pytest.raises(ValueError, match="score shapes differ"):
        ScoreDistillationLoss()(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        ScoreDistillationLoss(0.0)
