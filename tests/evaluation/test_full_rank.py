"""Full-rank protocol: pessimistic gold ranks, two-stage ranks, recall, code evaluation against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.codes import binarize, hamming_distance, pack_codes, sign_dot
from hashbert.data import RerankGroup
from hashbert.evaluation.full_rank import (
    build_queries,
    evaluate_codes,
    pessimistic_ranks,
    recall_metrics,
    two_stage_ranks,
)


def _ranks(scores, gold):
    scores = np.asarray(scores, dtype=np.float32)
    return pessimistic_ranks(lambda s: scores[s], len(gold), np.asarray(gold))


def test_ties_count_against_the_gold():
    assert _ranks([[3, 3, 1]], [0]).tolist() == [2]  # tied with one other: ranks after it
    assert _ranks([[3, 3, 1]], [1]).tolist() == [2]
    assert _ranks([[5, 3, 1]], [0]).tolist() == [1]
    assert _ranks([[1, 1, 1, 1]], [2]).tolist() == [4]  # all tied: last


def test_ranks_match_a_direct_count_over_chunks():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(150, 40)).astype(np.float32)  # many ties, > one chunk of queries
    gold = rng.integers(0, 40, size=150)
    expected = [
        1 + sum(1 for j in range(40) if j != g and row[j] >= row[g]) for row, g in zip(scores, gold, strict=True)
    ]
    assert _ranks(scores, gold).tolist() == expected


def test_two_stage_ranks():
    candidate_ids = np.array([[4, 7, 9], [1, 2, 3], [5, 6, 8]])
    rerank = np.array([[0.1, 0.9, 0.5], [1.0, 1.0, 1.0], [0.3, 0.2, 0.1]])
    gold = np.array([9, 2, 0])
    hamming = np.array([3, 1, 7])
    # query 0: gold 9 scores 0.5, one candidate (0.9) above -> rank 2
    # query 1: all tied -> the gold ranks after the two others -> 3
    # query 2: gold not among the candidates -> keeps its Hamming rank 7 (>= l + 1 = 4)
    assert two_stage_ranks(hamming, candidate_ids, rerank, gold).tolist() == [2, 3, 7]
    assert two_stage_ranks(np.array([1, 1, 2]), candidate_ids, rerank, gold)[2] == 4


def test_recall_metrics():
    metrics = recall_metrics(np.array([1, 5, 50, 500, 5000]))
    assert metrics["Recall@1"] == pytest.approx(0.2) and metrics["Recall@10"] == pytest.approx(0.4)
    assert metrics["Recall@100"] == pytest.approx(0.6) and metrics["Recall@1000"] == pytest.approx(0.8)
    assert metrics["MRR"] == pytest.approx(np.mean([1, 1 / 5, 1 / 50, 1 / 500, 1 / 5000]))


def _group(context, positive, negatives=("x", "y")):
    return RerankGroup((context,), (positive, *negatives), (1,) + (0,) * len(negatives), line_no=1)


def test_build_queries_adds_or_drops_absent_golds():
    groups = [_group("hi", "hello"), _group("bye", "new text"), RerankGroup(("q",), ("a", "b"), (0, 0), line_no=7)]
    with_gold = build_queries(["hello", "other", "hello"], groups)
    assert with_gold.pool == ["hello", "other", "new text"] and with_gold.gold.tolist() == [0, 2]
    without = build_queries(["hello", "other"], groups, add_gold=False)
    assert without.contexts == [("hi",)] and without.gold.tolist() == [0]
    with pytest.raises(ValueError, match="no test context"):
        build_queries(["zzz"], groups[1:], add_gold=False)


def test_evaluate_codes_two_stage_matches_brute_force_rerank():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((20, 32))
    pool = centres[rng.integers(0, 20, 500)] + 0.3 * rng.standard_normal((500, 32))
    gold = rng.integers(0, 500, 60)
    contexts = pool[gold] + 0.3 * rng.standard_normal((60, 32))
    results = evaluate_codes(
        contexts.astype(np.float32), pool.astype(np.float32), gold, candidates=50,
        float_vectors=(contexts.astype(np.float32), pool.astype(np.float32)),
    )
    assert [suffix for suffix, _ in results] == ["", " + re-rank@50", " + float re-rank@50"]
    (_, plain), (_, reranked), (_, float_reranked) = results
    # brute force: Hamming ranks of the gold, then re-rank the 50 best by float context . +-1 code
    q_codes, p_codes = pack_codes(binarize(contexts)), pack_codes(binarize(pool))
    dist = hamming_distance(q_codes, p_codes)
    ham_ranks = np.array([(dist[i] <= dist[i, g]).sum() for i, g in enumerate(gold)])
    assert plain["Recall@10"] == pytest.approx((ham_ranks <= 10).mean())
    expected, expected_float = [], []
    for i, g in enumerate(gold):
        top = np.lexsort((np.arange(500), dist[i]))[:50]  # the index breaks ties by id
        if g not in top:
            expected.append(max(ham_ranks[i], 51))
            expected_float.append(max(ham_ranks[i], 51))
            continue
        scores = sign_dot(contexts[i : i + 1].astype(np.float32), p_codes[top], 32)[0]
        expected.append(int((scores >= scores[list(top).index(g)]).sum()))
        float_scores = pool[top].astype(np.float32) @ contexts[i].astype(np.float32)
        expected_float.append(int((float_scores >= float_scores[list(top).index(g)]).sum()))
    assert reranked["MRR"] == pytest.approx(np.mean(1.0 / np.array(expected)))
    assert float_reranked["MRR"] == pytest.approx(np.mean(1.0 / np.array(expected_float)))
    assert reranked["Recall@1"] >= plain["Recall@1"]
    assert plain["bytes/response"] == 4 and float_reranked["bytes/response"] == 4 + 32 * 4
