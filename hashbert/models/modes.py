"""``eval_mode``: run a block with modules in eval mode, then give each its own train/eval flag back;
``resolve_device``: a device name (``auto`` included) as a ``torch.device``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

logger = logging.getLogger(__name__)


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Switch ``modules`` to eval mode for the block and restore each one's ``training`` flag after it.

    The flags are restored in a ``finally``, so an exception in the block leaves no model stuck in eval
    mode. A module already in eval mode is left alone: no walk over its submodules on a per-turn path.

    Args:
        modules: the ``nn.Module``s (a model, or parts of one) the block runs in eval mode.
    """
    was_training = [module.training for module in modules]
    try:
        for module, training in zip(modules, was_training, strict=True):
            if training:
                module.eval()
        yield
    finally:
        for module, training in zip(modules, was_training, strict=True):
            if training:
                module.train()


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a CUDA device asked for on a machine without one is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)
