"""Scoring groups with codes: Hamming against a direct count, asymmetric scores, the tie rule and collapse."""

from __future__ import annotations

import numpy as np

from hashbert.codes import pack_codes
from hashbert.data import RerankGroup
from hashbert.evaluation.metrics import rerank_metrics
from hashbert.models.hashing.lsh import SignHash
from hashbert.models.hashing.scoring import (
    code_stats,
    codes_of,
    dense_scores,
    hasher_scores,
    index_groups,
    symmetric_scores,
)

GROUPS = [
    RerankGroup(("hi",), ("a", "b", "c"), (1, 0, 0), 1),
    RerankGroup(("yo",), ("c", "d", "a"), (0, 1, 0), 4),
    RerankGroup(("hi",), ("d", "b", "e"), (0, 0, 1), 7),
]


def test_index_groups_dedupes_texts():
    index = index_groups(GROUPS)
    assert index.contexts == [("hi",), ("yo",)] and index.responses == ["a", "b", "c", "d", "e"]
    assert index.context_rows.tolist() == [0, 1, 0]
    assert [r.tolist() for r in index.candidate_rows] == [[0, 1, 2], [2, 3, 0], [3, 1, 4]]


def test_symmetric_scores_are_negated_direct_hamming_counts():
    rng = np.random.default_rng(0)
    index = index_groups(GROUPS)
    ctx_signs = rng.choice([-1, 1], size=(2, 64))
    resp_signs = rng.choice([-1, 1], size=(5, 64))
    scores = symmetric_scores(pack_codes(ctx_signs), pack_codes(resp_signs), index)
    for g, group_scores in enumerate(scores):
        c = index.context_rows[g]
        expected = [-(ctx_signs[c] != resp_signs[r]).sum() for r in index.candidate_rows[g]]
        assert group_scores.tolist() == expected


def test_asymmetric_scores_are_float_dot_signs():
    rng = np.random.default_rng(1)
    index = index_groups(GROUPS)
    ctx, resp = rng.standard_normal((2, 64)).astype(np.float32), rng.standard_normal((5, 64)).astype(np.float32)
    scores = hasher_scores(SignHash(64), ctx, resp, index, "asymmetric")
    dense = dense_scores(ctx, np.where(resp >= 0, 1.0, -1.0).astype(np.float32), index)
    for a, b in zip(scores, dense, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_constant_codes_score_zero_under_the_tie_rule():
    """A collapsed hash (every text the same code) must read as a failure, not as chance or as the float model."""
    index = index_groups(GROUPS)
    ctx, resp = np.ones((2, 64), np.float32), np.ones((5, 64), np.float32)
    scores = hasher_scores(SignHash(64), ctx, resp, index, "symmetric")
    metrics = rerank_metrics(scores, [np.array(g.labels) for g in GROUPS])
    assert metrics["R10@1"] == 0.0 and metrics["P@1"] == 0.0 if "R10@1" in metrics else metrics["R3@1"] == 0.0
    assert metrics["MRR"] == 1 / 3
    stats = code_stats(codes_of(resp), 64)
    assert stats["distinct"] == 1 / 5 and stats["dead_bits"] == 1.0 and stats["balance"] == 0.0


def test_code_stats_of_balanced_codes():
    codes = pack_codes(np.array([[1, -1] * 32, [-1, 1] * 32]))
    assert code_stats(codes, 64) == {"distinct": 1.0, "dead_bits": 0.0, "balance": 1.0}
