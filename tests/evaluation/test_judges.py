"""Relevance-100 and PPL-100 against direct loops; a judge is never the retriever under test."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.evaluation.judges import (
    DualEncoderJudge,
    judge_methods,
    load_relevance_judge,
    perplexity_at_k,
    relevance_at_k,
)

CONTEXTS = [("hello there", "hi, how are you?"), ("what do you do for fun?",)]
RETRIEVED = [["i am fine", "not bad", "the weather is nice"], ["i play piano", "i am fine"]]


def test_relevance_equals_a_direct_loop(dual_encoder):
    value = relevance_at_k(DualEncoderJudge(dual_encoder), CONTEXTS, RETRIEVED)
    per_context = []
    for context, responses in zip(CONTEXTS, RETRIEVED, strict=True):
        c = dual_encoder.encode_contexts([context])[0]
        scores = []
        for response in responses:
            r = dual_encoder.encode_responses([response])[0]
            scores.append((c @ r / np.linalg.norm(c) / np.linalg.norm(r) + 1) / 2)
        per_context.append(np.mean(scores))
    assert value == pytest.approx(100 * np.mean(per_context), abs=1e-4)


class FakeScorer:
    """NLL = number of characters, tokens = number of words: an exact, hand-checkable language model."""

    def response_losses(self, contexts, responses):
        return np.array([float(len(r)) for r in responses]), np.array([len(r.split()) for r in responses])


def test_perplexity_pools_tokens_per_context_then_averages_contexts():
    expected = np.mean([np.exp((9 + 7 + 19) / (3 + 2 + 4)), np.exp((12 + 9) / (3 + 3))])
    assert perplexity_at_k(FakeScorer(), CONTEXTS, RETRIEVED) == pytest.approx(expected)


class CountingJudge:
    def __init__(self):
        self.pairs = 0

    def score(self, contexts, responses):
        self.pairs += len(responses)
        return np.array([len(r) / 100 for r in responses])


def test_judge_methods_scores_each_distinct_pair_once():
    judge = CountingJudge()
    retrieved = {"a": RETRIEVED, "b": [RETRIEVED[0][:1], RETRIEVED[1]]}
    out = judge_methods(CONTEXTS, retrieved, judge=judge, scorer=FakeScorer())
    assert judge.pairs == 5
    assert out["b"]["Relevance-100"] == pytest.approx(100 * np.mean([0.09, np.mean([0.12, 0.09])]))
    assert set(out["a"]) == {"Relevance-100", "PPL-100"}


def test_the_retriever_cannot_judge_itself(tmp_path):
    with pytest.raises(ValueError, match="retriever under test"):
        load_relevance_judge(tmp_path / "dr-bert", retriever=tmp_path / "dr-bert")



@pytest.mark.slow
def test_relevance_judges_score_gold_above_random_on_a_real_slice(small_corpus, dual_encoder):
    import torch

    from hashbert.config import CrossEncoderConfig
    from hashbert.data import read_rerank_groups
    from hashbert.evaluation.judges import CrossEncoderJudge
    from hashbert.models.cross.cross_encoder import CrossEncoder

    # Every candidate of the real slice's held-out groups: the true next turn, or a turn of another conversation.
    groups = read_rerank_groups(small_corpus / "test.txt") + read_rerank_groups(small_corpus / "valid.txt")
    contexts = [g.context for g in groups for _ in g.candidates]
    responses = [c for g in groups for c in g.candidates]
    gold = np.array([label for g in groups for label in g.labels]) == 1
    torch.manual_seed(0)
    # Untrained but not random: the segments head starts as the backbone's own similarity of the two sides.
    cross = CrossEncoder.from_base(
        CrossEncoderConfig.from_flat(
            pooling="segments", segments_scale=5.0, segments_offset=0.7, max_length=96, max_response_length=24
        )
    ).eval()
    for judge, margin in ((DualEncoderJudge(dual_encoder), 0.05), (CrossEncoderJudge(cross), 0.02)):
        scores = judge.score(contexts, responses)
        gold_mean, other_mean = scores[gold].mean(), scores[~gold].mean()
        assert gold_mean > other_mean + margin, (judge.name, gold_mean, other_mean)
