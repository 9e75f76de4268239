"""Shared helper of the loss tests: one plain gradient step on leaf tensors."""

from __future__ import annotations

import pytest
import torch


def _gradient_step(loss_fn, *tensors, lr=0.5):
    """Loss before and after one gradient step on the given leaf tensors."""
    for t in tensors:
        t.grad = None
    before = loss_fn(*tensors)
    before.backward()
    before = before.detach()
    with torch.no_grad():
        for t in tensors:
            t -= lr * t.grad
        after = float(loss_fn(*tensors))
    return float(before), after


@pytest.fixture
def gradient_step():
    """``gradient_step(loss_fn, *leaf_tensors, lr=0.5) -> (loss before, loss after)`` one SGD step."""
    return _gradient_step
