"""Learning-rate schedules and the BPR beta schedule as pure functions of the step."""

from __future__ import annotations

import math

import torch


def warmup_linear(step: int, total_steps: int, warmup_steps: int) -> float:
    """LR multiplier: 0 -> 1 linearly over ``warmup_steps``, then 1 -> 0 linearly at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    remaining = max(1, total_steps - warmup_steps)
    return max(0.0, (total_steps - step) / remaining)


def warmup_linear_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int):
    """A ``LambdaLR`` applying ``warmup_linear``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_linear(step, total_steps, warmup_steps))


def bpr_beta(step: int, gamma: float) -> float:
    """BPR / HashNet scale of ``tanh(beta * h)``: ``beta = sqrt(1 + gamma * step)``, growing toward a sign."""
    if step < 0 or gamma < 0:
        raise ValueError(f"step and gamma must be >= 0, got {step}, {gamma}")
    return math.sqrt(1.0 + gamma * step)
