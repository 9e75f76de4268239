"""A toy Trainer for the checkpoint and resume tests: milliseconds per run, with dropout drawing from the RNG."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hashbert.config import TrainConfig
from hashbert.training.trainer import Trainer

TOY = {"batch_size": 4, "max_steps": 8, "save_every": 2, "lr": 1e-2, "progress": False, "device": "cpu"}


@pytest.fixture()
def toy_trainer() -> Callable[..., Trainer]:
    """``build(out, examples=40, hook=None, fingerprint=None, evaluator=None, **train_config) -> Trainer``.

    The model is a dropout MLP; every build starts from the same weights (as a rerun of a command would);
    ``hook(trainer)`` runs in the middle of each step, after dropout drew from the RNG and before the
    optimiser step.
    """

    def build(
        out: Path, examples: int = 40, hook: Callable[[Trainer], None] | None = None,
        fingerprint: dict[str, Any] | None = None, evaluator: Callable | None = None, **overrides: Any,
    ) -> Trainer:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 1))
        data = list(torch.randn(examples, 4, generator=torch.Generator().manual_seed(1)))

        def loss(batch: torch.Tensor) -> torch.Tensor:
            value = model(batch).pow(2).mean()  # (batch, 1) -> scalar
            if hook is not None:
                hook(trainer)
            return value

        config = TrainConfig(**{**TOY, **overrides})
        trainer = Trainer(model, loss, data, torch.stack, config, out, evaluator=evaluator, fingerprint=fingerprint)
        return trainer

    return build
