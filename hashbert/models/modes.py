"""``eval_mode``: run a block with modules in eval mode, then give each its own train/eval flag back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

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
