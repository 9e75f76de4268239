"""faiss binary indexes: exact ``BinaryFlatIndex`` (the default) and approximate ``BinaryIVFIndex``.

Both search packed codes (``hashbert.codes`` layout, which is faiss's) by Hamming distance with an
explicit thread count. faiss's OpenMP thread count is process-global, so each ``search`` sets it to
the index's ``threads`` before calling faiss. faiss parallelises over queries only, so a search uses at
most one thread per query (a single query runs on one thread; one core already saturates the memory
bandwidth of the 2-core machine we measured, see ``benchmarks/README.md``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import faiss
import numpy as np

from hashbert.codes import MISSING_DISTANCE, MISSING_ID
from hashbert.index.base import BinarySearchIndex, query_threads, resolve_threads

logger = logging.getLogger(__name__)


class BinaryFlatIndex(BinarySearchIndex):
    """Exact Hamming search on ``faiss.IndexBinaryFlat``; the codes live only in faiss memory.

    Args:
        n_bits: code length in bits (a multiple of 8).
        threads: OpenMP threads for ``search``; default ``os.cpu_count()``.
    """

    def __init__(self, n_bits: int, threads: int | None = None) -> None:
        super().__init__(n_bits)
        self.threads = resolve_threads(threads)
        self._faiss = faiss.IndexBinaryFlat(self.n_bits)

    @property
    def nbytes(self) -> int:
        return self._faiss.ntotal * self.code_size

    def _add_rows(self, data: np.ndarray) -> None:
        self._faiss.add(data)

    def _search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss.omp_set_num_threads(query_threads(self.threads, len(queries)))
        return self._faiss.search(queries, k)

    def _rows(self) -> np.ndarray:
        n = self._faiss.ntotal
        if n == 0:
            return np.empty((0, self.code_size), dtype=np.uint8)
        # A view of faiss's storage (no copy); it dangles once a later add() reallocates it.
        return faiss.rev_swig_ptr(self._faiss.xb.data(), n * self.code_size).reshape(n, self.code_size)

    def _params(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _empty(cls, width: int, params: dict[str, Any]) -> BinaryFlatIndex:
        return cls(width, threads=params.get("threads"))


class BinaryIVFIndex(BinarySearchIndex):
    """Approximate Hamming search on ``faiss.IndexBinaryIVF``: probe the ``nprobe`` nearest of ``nlist`` lists.

    The index is (re)trained on all codes added so far at the first ``search`` after an ``add``
    (binary k-means, seeded, so deterministic). With ``nprobe >= nlist`` the search is exact.
    A copy of the codes is kept in NumPy for saving and re-ranking, so ``nbytes`` counts the inverted
    lists (code + 8-byte id per row), the centroids and that copy.

    Args:
        n_bits: code length in bits (a multiple of 8).
        nlist: number of inverted lists; default ``4 * sqrt(n)``, at most ``n // 39`` (faiss wants
            about 39 training points per centroid), at least 1.
        nprobe: lists visited per query (clipped to nlist).
        threads: OpenMP threads for ``search``; default ``os.cpu_count()``.
    """

    def __init__(self, n_bits: int, nlist: int | None = None, nprobe: int = 16, threads: int | None = None) -> None:
        super().__init__(n_bits)
        if nlist is not None and (not isinstance(nlist, int | np.integer) or nlist < 1):
            raise ValueError(f"nlist must be a positive integer or None, got {nlist!r}")
        self.nlist = nlist
        self.nprobe = nprobe
        self.threads = resolve_threads(threads)
        self._codes = np.empty((0, self.code_size), dtype=np.uint8)
        self._faiss: Any = None  # faiss.IndexBinaryIVF, built lazily
        self._quantizer: Any = None  # kept alive beside the IVF index that points to it

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"nprobe must be a positive integer, got {value!r}")
        self._nprobe = int(value)

    @property
    def nlist_used(self) -> int:
        """The number of lists the index is (or will be) built with for the current rows."""
        n = len(self._codes)
        default = min(round(4 * math.sqrt(n)), n // 39)
        return max(1, min(self.nlist if self.nlist is not None else default, n))

    @property
    def nbytes(self) -> int:
        lists = len(self._codes) * (self.code_size + 8) + self.nlist_used * self.code_size
        return self._codes.nbytes + (lists if len(self._codes) else 0)

    def _add_rows(self, data: np.ndarray) -> None:
        self._codes = np.concatenate([self._codes, data]) if len(self._codes) else data.copy()
        self._faiss = self._quantizer = None

    def _build(self) -> None:
        nlist = self.nlist_used
        self._quantizer = faiss.IndexBinaryFlat(self.n_bits)
        self._faiss = faiss.IndexBinaryIVF(self._quantizer, self.n_bits, nlist)
        logger.info("training IndexBinaryIVF: %d codes, nlist=%d", len(self._codes), nlist)
        self._faiss.train(self._codes)
        self._faiss.add(self._codes)

    def _search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self._codes) == 0:
            shape = (len(queries), k)
            return np.full(shape, MISSING_DISTANCE, np.int32), np.full(shape, MISSING_ID, np.int64)
        if self._faiss is None:
            self._build()
        faiss.omp_set_num_threads(query_threads(self.threads, len(queries)))
        self._faiss.nprobe = min(self.nprobe, self._faiss.nlist)
        return self._faiss.search(queries, k)

    def _rows(self) -> np.ndarray:
        return self._codes

    def _params(self) -> dict[str, Any]:
        return {"nlist": self.nlist, "nprobe": self.nprobe}

    @classmethod
    def _empty(cls, width: int, params: dict[str, Any]) -> BinaryIVFIndex:
        known = {key: params[key] for key in ("nlist", "nprobe", "threads") if key in params}
        return cls(width, **known)
