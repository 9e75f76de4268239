"""Two-stage search: Hamming top-l candidates from a binary index, then a float re-rank of those l.

The re-rank scores the float context vector against each candidate's ±1 code (BPR's asymmetric
re-rank: no float response store needed) or against stored float response vectors. Scoring against
{0, 1} bits (as sentence-transformers' rescoring does) would rank identically, because
``q . s = 2 q . b - sum(q)`` differs from ``q . b`` by a per-query affine map; we use ±1 so scores
match the papers. Ties in the re-rank score are broken by Hamming distance, then by id.

References: BPR (Yamada et al., ACL 2021) Sec. 3.3; Hash-BERT (arXiv 2012.09647) asymmetric scoring.
"""

from __future__ import annotations

import logging

import numpy as np

from hashbert.codes import sign_dot
from hashbert.index.base import BinarySearchIndex

logger = logging.getLogger(__name__)

_BLOCK_ELEMENTS = 1 << 24  # gathered candidate elements per block of queries (~64 MB as float32)


class TwoStageSearcher:
    """Hamming top-``candidates`` from ``binary_index``, re-ranked by a float score.

    Args:
        binary_index: any binary index (``BinaryFlatIndex``, ``BinaryIVFIndex``, ``NumpyBinaryIndex``).
        rerank_codes: optional (n, n_rerank_bits/8) uint8 codes aligned with the index rows (insertion
            order); default: the index's own codes, read at each search.
        rerank_vectors: optional (n, dim) float response vectors aligned with the index rows; exclusive
            with ``rerank_codes``.
        candidates: l, the number of Hamming candidates re-ranked per query.
    """

    def __init__(
        self,
        binary_index: BinarySearchIndex,
        rerank_codes: np.ndarray | None = None,
        rerank_vectors: np.ndarray | None = None,
        candidates: int = 100,
    ) -> None:
        if rerank_codes is not None and rerank_vectors is not None:
            raise ValueError("pass rerank_codes or rerank_vectors, not both")
        if not isinstance(candidates, int | np.integer) or candidates < 1:
            raise ValueError(f"candidates must be a positive integer, got {candidates!r}")
        self.binary_index = binary_index
        self.candidates = int(candidates)
        self.rerank_codes = None if rerank_codes is None else _aligned(rerank_codes, binary_index, "rerank_codes")
        self.rerank_vectors = (
            None if rerank_vectors is None else _aligned(rerank_vectors, binary_index, "rerank_vectors", np.float32)
        )
        if self.rerank_codes is not None and self.rerank_codes.dtype != np.uint8:
            raise ValueError(f"rerank_codes must be uint8 packed codes, got {self.rerank_codes.dtype}")

    def search(self, binary_queries: np.ndarray, float_queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Two-stage top-k.

        Args:
            binary_queries: (nq, n_bits/8) uint8 packed context codes for the Hamming stage.
            float_queries: (nq, width) float context vectors; width = bits of the re-rank codes, or the
                dimension of ``rerank_vectors``.
            k: results per query, at most ``candidates``.

        Returns:
            scores: (nq, k) float32 re-rank scores, descending (-inf for missing results);
            ids: (nq, k) int64 (-1 for missing results).
        """
        if not isinstance(k, int | np.integer) or not 1 <= k <= self.candidates:
            raise ValueError(f"k must be an integer in [1, candidates={self.candidates}], got {k!r}")
        float_queries = np.asarray(float_queries, dtype=np.float32)
        if float_queries.ndim != 2 or len(float_queries) != len(binary_queries):
            raise ValueError(f"float_queries must be ({len(binary_queries)}, width), got shape {float_queries.shape}")
        distances, ids = self.binary_index.search(binary_queries, self.candidates)  # (nq, l) each
        scores = self._rerank_scores(self.binary_index.positions_of(ids), float_queries)
        scores[ids < 0] = -np.inf
        order = np.lexsort((ids, distances, -scores), axis=-1)[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)

    def _rerank_scores(self, positions: np.ndarray, float_queries: np.ndarray) -> np.ndarray:
        """(nq, l) float32 scores of each query against its candidate rows (positions -1 score 0)."""
        store = self.rerank_vectors if self.rerank_vectors is not None else self.rerank_codes
        if store is None:
            store = self.binary_index.codes
        width = store.shape[1] if store.dtype != np.uint8 else store.shape[1] * 8
        if float_queries.shape[1] != width:
            raise ValueError(f"float_queries must have {width} columns for this re-rank, got {float_queries.shape[1]}")
        nq, n_cand = positions.shape
        scores = np.empty((nq, n_cand), dtype=np.float32)
        rows = max(1, _BLOCK_ELEMENTS // max(1, n_cand * width))
        for start in range(0, nq, rows):
            block = slice(start, start + rows)
            gathered = store[np.maximum(positions[block], 0)]  # (rows, l, n_bytes or dim): one gather
            if store.dtype == np.uint8:
                scores[block] = sign_dot(float_queries[block], gathered, width)
            else:
                scores[block] = np.einsum("rld,rd->rl", gathered, float_queries[block])  # see codes.sign_dot
        return scores


def _aligned(array: np.ndarray, index: BinarySearchIndex, name: str, dtype: type | None = None) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=dtype)
    if array.ndim != 2 or len(array) != len(index):
        raise ValueError(f"{name} must have one row per index row ({len(index)}), got shape {array.shape}")
    return array
