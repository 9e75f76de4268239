"""``FloatIndex``: exact inner-product search over float vectors (the DR-BERT baseline) on faiss.

Why the BLAS threshold: faiss >= 1.15 only switches from its one-query-at-a-time kernel to a BLAS
matrix product when ``nq * d >= faiss.cvar.distance_compute_blas_threshold`` (default 128000), so a
batch of 64 queries at d = 768 was scanned 64 times, ~10x slower than one sgemm. Measured on a 2-core
Xeon (faiss 1.15.1, 100k x 768): one query takes ~22 ms on the direct kernel and ~50 ms through BLAS,
while 8 queries take ~180 ms direct and ~55 ms through BLAS. So ``search`` sets the threshold to
``BLAS_MIN_QUERIES * d`` before each call: batches of 4 or more queries use BLAS, single queries keep
the direct kernel. The threshold, like the OpenMP thread count, is process-global in faiss.
"""

from __future__ import annotations

import logging
from typing import Any

import faiss
import numpy as np

from hashbert.index.base import SearchIndex, query_threads, resolve_threads

logger = logging.getLogger(__name__)

BLAS_MIN_QUERIES = 4


class FloatIndex(SearchIndex):
    """Exact maximum-inner-product search on ``faiss.IndexFlatIP`` (normalise vectors first for cosine).

    Args:
        dim: vector dimension.
        threads: OpenMP threads for ``search``; default ``os.cpu_count()``.
    """

    kind = "float"

    def __init__(self, dim: int, threads: int | None = None) -> None:
        if not isinstance(dim, int | np.integer) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        super().__init__(int(dim))
        self.threads = resolve_threads(threads)
        self._faiss = faiss.IndexFlatIP(self.dim)

    @property
    def dim(self) -> int:
        return self.width

    @property
    def vectors(self) -> np.ndarray:
        """(n, dim) float32 stored vectors; a view of faiss memory, valid until the next ``add``."""
        return self._rows()

    @property
    def nbytes(self) -> int:
        return self._faiss.ntotal * self.dim * 4

    def _check_rows(self, data: np.ndarray, name: str) -> np.ndarray:
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != self.dim or data.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be (n, {self.dim}) real vectors, got {data.dtype} {data.shape}")
        data = np.ascontiguousarray(data, dtype=np.float32)
        if not np.isfinite(data).all():
            raise ValueError(f"{name} contains NaN or infinity")
        return data

    def _add_rows(self, data: np.ndarray) -> None:
        self._faiss.add(data)

    def _search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        blas = len(queries) >= BLAS_MIN_QUERIES  # the direct kernel parallelises over queries only
        faiss.omp_set_num_threads(self.threads if blas else query_threads(self.threads, len(queries)))
        faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES * self.dim
        scores, positions = self._faiss.search(queries, k)
        scores[positions < 0] = -np.inf  # faiss pads with -FLT_MAX
        return scores, positions

    def _rows(self) -> np.ndarray:
        n = self._faiss.ntotal
        if n == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return faiss.rev_swig_ptr(self._faiss.get_xb(), n * self.dim).reshape(n, self.dim)

    def _params(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _empty(cls, width: int, params: dict[str, Any]) -> FloatIndex:
        return cls(width, threads=params.get("threads"))
