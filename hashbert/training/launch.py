"""Which process of a ``torchrun`` launch this is, read from the environment alone (no torch: the CLI asks first).

``torchrun --nproc-per-node N`` starts N copies of a command with ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``
set; a plain run has none of them and is process 0 of 1. ``training.distributed`` joins the processes.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from typing import Any

from hashbert.config import TrainConfig


def process_rank() -> int:
    """This process's global rank under torchrun; 0 for a plain run."""
    return int(os.environ.get("RANK", "0"))


def process_count() -> int:
    """How many processes torchrun started in all (``WORLD_SIZE``); 1 for a plain run."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def run_on_other_rank(func: Callable[[Any], int], run: Any) -> int:
    """Run a command on a rank other than 0: rank 0 alone claims ``--out`` and prints.

    A command with a ``TrainConfig`` (``run.train``) trains with the shared Trainer, so every rank takes its
    part, its printed summary discarded; any other command (ITQ, LSH, evaluation) is rank 0's alone.
    """
    if not isinstance(getattr(run, "train", None), TrainConfig):
        return 0
    with contextlib.redirect_stdout(io.StringIO()):
        return func(run)
