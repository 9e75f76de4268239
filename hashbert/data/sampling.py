"""Seeded subsampling, the one way hashbert draws "N of these" (training pairs, validation or test groups)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def seeded_subsample(items: Sequence[T], n: int, seed: int) -> list[T]:
    """``n`` items drawn without replacement (seeded), kept in their original order.

    All of them when ``n`` is 0 or >= len.
    """
    if n < 0:
        raise ValueError(f"subsample size must be >= 0, got {n}")
    if not n or n >= len(items):
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
    return [items[i] for i in keep]
