"""The PPL-100 language model: only response tokens are counted, checked against a direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashbert.config import LanguageModelConfig
from hashbert.models.cross.causal_lm import CausalLmScorer, new_gpt2, response_nll, response_token_mask, save_causal_lm
from hashbert.models.pair_tokens import PairTokenizer

CONTEXTS = [("hello there", "hi, how are you?"), ("what do you do for fun?",)]
RESPONSES = ["i am fine", "i play the piano every evening"]


@pytest.fixture(scope="module")
def tiny_lm():
    torch.manual_seed(0)
    config = LanguageModelConfig.from_flat(layers=1, max_length=48, max_response_length=8)
    model, tokenizer = new_gpt2(config)
    return model.eval(), tokenizer, config


def test_response_mask_covers_the_response_tokens_only(tiny_lm):
    _, tokenizer, config = tiny_lm
    pair_tokenizer = PairTokenizer(tokenizer, config.input.max_length, config.input.max_response_length)
    batch = pair_tokenizer.batch(CONTEXTS, RESPONSES)
    mask = response_token_mask(batch["token_type_ids"], batch["attention_mask"])
    for row, response in enumerate(RESPONSES):
        expected = tokenizer(response, add_special_tokens=False)["input_ids"][:8]
        assert batch["input_ids"][row][mask[row]].tolist() == expected


def test_response_nll_equals_a_direct_computation(tiny_lm):
    model, tokenizer, config = tiny_lm
    pair_tokenizer = PairTokenizer(tokenizer, config.input.max_length, config.input.max_response_length)
    batch = pair_tokenizer.batch(CONTEXTS, RESPONSES)
    mask = response_token_mask(batch["token_type_ids"], batch["attention_mask"])
    with torch.no_grad():
        nll, counts = response_nll(model, batch["input_ids"], batch["attention_mask"], mask)
    for row in range(len(RESPONSES)):
        length = int(batch["attention_mask"][row].sum())
        ids = batch["input_ids"][row, :length]
        with torch.no_grad():
            log_probs = torch.log_softmax(model(input_ids=ids[None]).logits[0], dim=-1)  # unpadded, alone
        positions = [p for p in range(length) if mask[row, p]]
        direct = -sum(float(log_probs[p - 1, ids[p]]) for p in positions)
        assert int(counts[row]) == len(positions)
        assert float(nll[row]) == pytest.approx(direct, rel=1e-4)


def test_scorer_reads_a_saved_directory(tiny_lm, tmp_path):
    model, tokenizer, config = tiny_lm
    save_causal_lm(model, tokenizer, tmp_path / "lm", config)
    scorer = CausalLmScorer(
        tmp_path / "lm", max_length=config.input.max_length, max_response_length=config.input.max_response_length
    )
    nll, counts = scorer.response_losses(CONTEXTS, RESPONSES, batch_size=1)
    assert counts.tolist() == [3, 6] and np.all(nll > 0)
    assert math.isfinite(math.exp(nll.sum() / counts.sum()))
    with pytest.raises(ValueError, match="not a language-model directory"):
        CausalLmScorer(tmp_path / "missing")


def test_scorer_batches_by_length_and_returns_input_order(tiny_lm, tmp_path):
    model, tokenizer, config = tiny_lm
    save_causal_lm(model, tokenizer, tmp_path / "lm", config)
    scorer = CausalLmScorer(
        tmp_path / "lm", max_length=config.input.max_length, max_response_length=config.input.max_response_length
    )
    contexts, responses = [*CONTEXTS, ("ok",)], [*RESPONSES, "sure thing, see you at the station tomorrow"]
    one_by_one = scorer.response_losses(contexts, responses, batch_size=1)
    batched = scorer.response_losses(contexts, responses, batch_size=2)
    np.testing.assert_array_equal(batched[1], one_by_one[1])
    np.testing.assert_allclose(batched[0], one_by_one[0], rtol=1e-5)
