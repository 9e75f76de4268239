"""Scoring re-rank groups with binary codes: symmetric (Hamming) and asymmetric (float context . ±1 code).

Every hashing method in hashbert (LSH, sign, ITQ, Hash-BERT heads, BPR) is a ``VectorHasher``: it maps
dense context/response vectors to continuous hash vectors of ``n_bits``, whose signs are the codes.
This module turns such a hasher and the dense vectors of a set of ``RerankGroup``s into the
per-group score arrays ``rerank_metrics`` takes (higher = better):

* symmetric: ``-hamming(context code, response code)``; equal distances stay tied, and the metrics
  count ties against the positives (never broken by a float score or by candidate order);
* asymmetric: ``float context . ±1 response code`` (BPR's re-rank score; the response index stays
  binary). On 10 candidates, BPR's "Hamming top-l, then re-rank" with l >= 10 is exactly this.

NumPy only (no torch), like ``hashbert.codes``, which does all packing and counting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hashbert.codes import binarize, hamming_distance, pack_codes, sign_dot

logger = logging.getLogger(__name__)

SCORING_MODES = ("symmetric", "asymmetric")


class VectorHasher(Protocol):
    """Anything that hashes dense vectors: ``n_bits`` and two ``(n, dim) -> (n, n_bits) float32`` maps."""

    n_bits: int

    def context_hash_vectors(self, vectors: np.ndarray) -> np.ndarray: ...

    def response_hash_vectors(self, vectors: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class GroupIndex:
    """The distinct texts of a list of re-rank groups and, per group, the rows of its context and candidates.

    Attributes:
        contexts: distinct contexts (tuples of turns), first-seen order.
        responses: distinct candidate texts, first-seen order.
        context_rows: (n_groups,) int64 row of each group's context in ``contexts``.
        candidate_rows: per group, (n_candidates,) int64 rows in ``responses``.
    """

    contexts: list[tuple[str, ...]]
    responses: list[str]
    context_rows: np.ndarray
    candidate_rows: list[np.ndarray]


def index_groups(groups: Sequence) -> GroupIndex:
    """Build the ``GroupIndex`` of ``RerankGroup``s, so each distinct text is encoded once."""
    contexts = list(dict.fromkeys(g.context for g in groups))
    responses = list(dict.fromkeys(c for g in groups for c in g.candidates))
    ctx_row = {c: i for i, c in enumerate(contexts)}
    resp_row = {r: i for i, r in enumerate(responses)}
    return GroupIndex(
        contexts, responses, np.array([ctx_row[g.context] for g in groups], dtype=np.int64),
        [np.array([resp_row[c] for c in g.candidates], dtype=np.int64) for g in groups],
    )


def gather_group_scores(matrix: np.ndarray, index: GroupIndex) -> list[np.ndarray]:
    """(n_contexts, n_responses) score matrix -> one (n_candidates,) array per group."""
    return [matrix[c, rows] for c, rows in zip(index.context_rows, index.candidate_rows, strict=True)]


def dense_scores(context_vecs: np.ndarray, response_vecs: np.ndarray, index: GroupIndex) -> list[np.ndarray]:
    """Float dot-product scores (the DR-BERT row). Args: (n_contexts, dim), (n_responses, dim) float32."""
    return gather_group_scores(context_vecs @ response_vecs.T, index)


def codes_of(hash_vectors: np.ndarray) -> np.ndarray:
    """(n, n_bits) continuous hash vectors -> (n, n_bits // 8) uint8 packed sign codes."""
    return pack_codes(binarize(hash_vectors))


def symmetric_scores(context_codes: np.ndarray, response_codes: np.ndarray, index: GroupIndex) -> list[np.ndarray]:
    """Negated Hamming distances (float64, so ties stay exact). Args: packed (n_contexts, B) and (n_responses, B)."""
    return gather_group_scores(-hamming_distance(context_codes, response_codes).astype(np.float64), index)


def asymmetric_scores(
    context_floats: np.ndarray, response_codes: np.ndarray, n_bits: int, index: GroupIndex
) -> list[np.ndarray]:
    """Float context vectors (n_contexts, n_bits) dotted with the ±1 signs of packed response codes."""
    return gather_group_scores(sign_dot(context_floats, response_codes, n_bits).astype(np.float64), index)


def hasher_scores(
    hasher: VectorHasher, context_vecs: np.ndarray, response_vecs: np.ndarray, index: GroupIndex, scoring: str
) -> list[np.ndarray]:
    """Score every group with ``hasher`` over dense vectors (rows as in ``index``).

    Args:
        hasher: the hashing method.
        context_vecs: (n_contexts, dim) float32 dense vectors of ``index.contexts``.
        response_vecs: (n_responses, dim) float32 dense vectors of ``index.responses``.
        index: from ``index_groups``.
        scoring: ``symmetric`` (Hamming) or ``asymmetric`` (float context . ±1 response code).

    Returns:
        One (n_candidates,) float64 array per group, higher = better.
    """
    if scoring not in SCORING_MODES:
        raise ValueError(f"scoring must be one of {SCORING_MODES}, got {scoring!r}")
    context_hash = hasher.context_hash_vectors(context_vecs)
    response_codes = codes_of(hasher.response_hash_vectors(response_vecs))
    log_code_stats(response_codes, hasher.n_bits, "response")
    if scoring == "asymmetric":
        return asymmetric_scores(context_hash, response_codes, hasher.n_bits, index)
    return symmetric_scores(codes_of(context_hash), response_codes, index)


def code_stats(codes: np.ndarray, n_bits: int) -> dict[str, float]:
    """Collapse diagnostics of packed codes.

    Returns:
        ``distinct``: fraction of distinct codes among the rows; ``dead_bits``: fraction of bits
        that are the same in every row; ``balance``: mean over bits of min(p, 1 - p) / 0.5,
        where p is the fraction of rows with the bit set (1 = perfectly balanced bits).
    """
    from hashbert.codes import unpack_bits

    bits = unpack_bits(codes, n_bits)  # (n, n_bits) {0, 1}
    p = bits.mean(axis=0)
    return {
        "distinct": len(np.unique(codes, axis=0)) / max(1, len(codes)),
        "dead_bits": float(np.mean((p == 0) | (p == 1))),
        "balance": float(np.mean(np.minimum(p, 1 - p)) / 0.5),
    }


def log_code_stats(codes: np.ndarray, n_bits: int, what: str) -> dict[str, float]:
    """``code_stats``, logged; a warning when the codes look collapsed (few distinct codes or many dead bits)."""
    stats = code_stats(codes, n_bits)
    if len(codes) > 1 and (stats["distinct"] < 0.5 or stats["dead_bits"] > 0.5):
        logger.warning("%d-bit %s codes look collapsed: %s", n_bits, what, {k: round(v, 3) for k, v in stats.items()})
    else:
        logger.debug("%d-bit %s codes: %s", n_bits, what, {k: round(v, 3) for k, v in stats.items()})
    return stats
