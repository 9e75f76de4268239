"""Retrieve then re-rank: Hamming top-l from a binary index, then a cross-encoder re-ranks those l.

The library call a serving layer uses: it holds the index, the response texts (aligned with the
index rows) and the cross-encoder; callers hash their contexts (any hasher: LSH, ITQ, Hash-BERT).

References: SPEC "Full-rank protocol"; Su et al. 2023 (coarse-grained selection, then a fine-grained re-ranker).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)


class RetrieveThenRerank:
    """Binary-index candidates re-ranked by cross-encoder logits.

    Args:
        index: a binary index (``search(codes, k) -> (distances, ids)``) over the responses' packed codes.
        responses: (N,) response texts, row i = index id i.
        cross_encoder: has ``score_pairs(contexts, responses, batch_size=...) -> (n,) float32``.
        candidates: l, Hamming candidates re-ranked per context.
        batch_size: cross-encoder batch size.
    """

    def __init__(
        self, index, responses: Sequence[str], cross_encoder, candidates: int = 100, batch_size: int = 64
    ) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        if len(responses) != len(index):
            raise ValueError(f"{len(responses)} responses for an index of {len(index)} rows")
        self.index, self.responses, self.cross_encoder = index, list(responses), cross_encoder
        self.candidates, self.batch_size = candidates, batch_size

    def retrieve(self, context_codes: np.ndarray, candidates: int | None = None) -> np.ndarray:
        """(nq, l) int64 ids of the Hamming top-l (nearest first; -1 pads an index smaller than l)."""
        _, ids = self.index.search(context_codes, candidates or self.candidates)
        return ids.astype(np.int64)

    def rerank_scores(self, contexts: Sequence[Sequence[str]], candidate_ids: np.ndarray) -> np.ndarray:
        """(nq, l) float32 cross-encoder logits of each context's candidates (-inf for padding ids)."""
        valid = candidate_ids >= 0
        q, c = np.nonzero(valid)
        flat = self.cross_encoder.score_pairs(
            [contexts[i] for i in q], [self.responses[j] for j in candidate_ids[q, c]], batch_size=self.batch_size
        )
        scores = np.full(candidate_ids.shape, -np.inf, dtype=np.float32)
        scores[q, c] = flat
        return scores

    def search(
        self, contexts: Sequence[Sequence[str]], context_codes: np.ndarray, k: int, candidates: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k after the re-rank: ((nq, k) logits, (nq, k) ids), best first; equal logits keep Hamming order.

        Args:
            contexts: (nq,) contexts, each a sequence of turns.
            context_codes: (nq, n_bits / 8) uint8 packed codes of the same contexts.
            k: results per context (<= l).
        """
        ids = self.retrieve(context_codes, candidates)
        if k > ids.shape[1]:
            raise ValueError(f"k={k} exceeds the {ids.shape[1]} candidates re-ranked")
        scores = self.rerank_scores(contexts, ids)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)
