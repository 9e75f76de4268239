"""Exact Hamming search in pure NumPy: the ground truth the faiss indexes are tested against.

Also a fallback where faiss is unavailable: it reads the same saved directories as
``BinaryFlatIndex`` (``NumpyBinaryIndex.load(path)``). It is single-threaded and several times
slower than faiss (see ``benchmarks/search_bench.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from hashbert.codes import hamming_topk
from hashbert.index.base import BinarySearchIndex

logger = logging.getLogger(__name__)


class NumpyBinaryIndex(BinarySearchIndex):
    """Brute-force Hamming scan over codes held in one NumPy array.

    Ties at equal distance keep the earliest-added rows (``hashbert.codes.hamming_topk``).

    Args:
        n_bits: code length in bits (a multiple of 8).
    """

    def __init__(self, n_bits: int) -> None:
        super().__init__(n_bits)
        self._codes = np.empty((0, self.code_size), dtype=np.uint8)

    @property
    def nbytes(self) -> int:
        return self._codes.nbytes

    def _add_rows(self, data: np.ndarray) -> None:
        self._codes = np.concatenate([self._codes, data]) if len(self._codes) else data.copy()

    def _search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return hamming_topk(queries, self._codes, k)

    def _rows(self) -> np.ndarray:
        return self._codes

    def _params(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _empty(cls, width: int, params: dict[str, Any]) -> NumpyBinaryIndex:
        # Saved params of other binary index types (nlist, nprobe) do not apply to a flat scan.
        return cls(width)
