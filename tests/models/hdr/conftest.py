"""Shared fixtures of the HDR tests: a small HDR model on the real encoder, real dialogues longer than its history."""

from __future__ import annotations

import functools

import pytest
import torch

from hashbert.config import EncoderConfig, HdrConfig
from hashbert.data import read_rerank_groups
from hashbert.models.hdr.model import HdrModel


def make_small_hdr(dual_encoder, aggregator: str, **overrides) -> HdrModel:
    """An HDR model on the (copied) real encoder, small enough for fast tests, with a non-trivial merge."""
    encoder = EncoderConfig(max_response_length=16, max_context_turns=4)
    config = HdrConfig(
        encoder=encoder, aggregator=aggregator, utterance_length=16, vectors_per_utterance=3, layers=2, heads=4,
        ffn_dim=256, **overrides,
    )
    torch.manual_seed(0)
    model = HdrModel(config, dual_encoder.context_encoder, dual_encoder.response_encoder, dual_encoder.tokenizer)
    with torch.no_grad():  # the merge starts as the identity on the own vector: make the aggregator count
        model.aggregator.merge.weight.add_(0.05 * torch.randn_like(model.aggregator.merge.weight))
    return model.eval()


@pytest.fixture()
def small_hdr(dual_encoder):
    """``small_hdr(aggregator, **overrides) -> HdrModel`` on this test's copy of the real encoder."""
    return functools.partial(make_small_hdr, dual_encoder)


@pytest.fixture(scope="module")
def dialogues(small_corpus):
    """Three real test contexts of 6 to 8 turns: more than the history bound (4), so the oldest are dropped."""
    groups = read_rerank_groups(small_corpus / "test.txt")
    return sorted({g.context for g in groups if 6 <= len(g.context) <= 8})[:3]
