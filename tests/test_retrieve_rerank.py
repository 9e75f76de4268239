"""Retrieve then re-rank equals a brute-force cross-encoder re-rank of the same Hamming candidates."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.codes import hamming_distance, pack_codes
from hashbert.config import CrossEncoderConfig
from hashbert.evaluation.full_rank import retrieve_rerank_metrics
from hashbert.index.binary import BinaryFlatIndex
from hashbert.retrieve_rerank import RetrieveThenRerank

RESPONSES = [f"response number {i} about {topic}" for i, topic in enumerate(["music", "food", "films", "work"] * 5)]
CONTEXTS = [("do you like music?",), ("what did you eat?", "pasta"), ("any good films lately?",)]


@pytest.fixture(scope="module")
def cross_encoder():
    import torch

    from hashbert.models.cross.cross_encoder import CrossEncoder

    torch.manual_seed(0)
    return CrossEncoder.from_base(CrossEncoderConfig.from_flat(max_length=32, max_response_length=10)).eval()


@pytest.fixture(scope="module")
def codes():
    rng = np.random.default_rng(0)
    return pack_codes(rng.choice([-1, 1], (len(CONTEXTS), 64))), pack_codes(rng.choice([-1, 1], (len(RESPONSES), 64)))


@pytest.mark.slow
def test_pipeline_equals_brute_force_rerank(cross_encoder, codes):
    context_codes, pool_codes = codes
    index = BinaryFlatIndex(64)
    index.add(pool_codes)
    pipeline = RetrieveThenRerank(index, RESPONSES, cross_encoder, candidates=4, batch_size=4)
    scores, ids = pipeline.search(CONTEXTS, context_codes, k=4)
    distances = hamming_distance(context_codes, pool_codes)  # (nq, N)
    for q, context in enumerate(CONTEXTS):
        candidates = pipeline.retrieve(context_codes[q : q + 1])[0]
        # the candidates are a Hamming top-4 (ties at the boundary may pick either)
        assert distances[q, candidates].max() <= np.sort(distances[q])[3]
        brute = np.array([cross_encoder.score_pairs([context], [RESPONSES[j]])[0] for j in candidates])
        order = np.argsort(-brute, kind="stable")
        np.testing.assert_array_equal(ids[q], candidates[order])
        np.testing.assert_allclose(scores[q], brute[order], atol=1e-5)


def test_metrics_after_rerank_count_a_gold_outside_the_candidates(cross_encoder, codes):
    context_codes, pool_codes = codes
    index = BinaryFlatIndex(64)
    index.add(pool_codes)
    pipeline = RetrieveThenRerank(index, RESPONSES, cross_encoder, candidates=4)
    candidates = pipeline.retrieve(context_codes)
    gold = np.array([candidates[0, 0], candidates[1, 3], 19 if 19 not in candidates[2] else 18])
    hamming_ranks = np.array([1, 4, 12])
    metrics = retrieve_rerank_metrics(pipeline, CONTEXTS, context_codes, hamming_ranks, gold, candidates=4)
    assert set(metrics) == {"Recall@1", "Recall@10", "MRR", "added ms/query"}
    assert metrics["Recall@10"] == pytest.approx(2 / 3)  # the third gold was never a candidate: rank 12
    assert metrics["added ms/query"] > 0


def test_bad_arguments_are_clear(cross_encoder):
    index = BinaryFlatIndex(64)
    with pytest.raises(ValueError, match="responses for an index"):
        RetrieveThenRerank(index, RESPONSES, cross_encoder)
