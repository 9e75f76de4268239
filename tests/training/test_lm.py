"""The PPL-100 judge's language model learns: on held-out real responses it beats a unigram model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hashbert.config import DataConfig, LanguageModelConfig, TrainConfig
from hashbert.data import read_rerank_groups, read_training_pairs
from hashbert.models.cross.causal_lm import CausalLmScorer, response_token_mask
from hashbert.models.encoder import load_tokenizer, resolve_model_dir
from hashbert.models.pair_tokens import PairTokenizer
from hashbert.training.lm import train_language_model


def unigram_perplexity(train_ids: list[int], test_ids: list[int], vocab_size: int) -> float:
    """Add-one smoothed unigram model fitted on ``train_ids``, perplexity of ``test_ids``."""
    counts = np.bincount(np.asarray(train_ids), minlength=vocab_size).astype(np.float64)
    log_probs = np.log((counts + 1.0) / (counts.sum() + vocab_size))
    return math.exp(-float(log_probs[np.asarray(test_ids)].mean()))


@pytest.mark.slow
def test_lm_perplexity_on_held_out_responses_is_below_a_unigram_models(small_corpus, tmp_path):
    config = LanguageModelConfig.from_flat(layers=1, max_length=48, max_response_length=16, max_context_turns=2)
    data = DataConfig(train=str(small_corpus / "train.txt"), max_train_pairs=384)
    train = TrainConfig(lr=1e-3, batch_size=8, epochs=1, save_every=0, progress=False, device="cpu")
    train_language_model(config, data, train, tmp_path)
    groups = read_rerank_groups(small_corpus / "valid.txt")
    contexts = [g.context for g in groups]
    gold = [next(c for c, label in zip(g.candidates, g.labels, strict=True) if label) for g in groups]
    nll, counts = CausalLmScorer(tmp_path / "lm").response_losses(contexts, gold)
    lm_ppl = math.exp(nll.sum() / counts.sum())

    # The unigram model sees the same training pairs (every real token) and is scored on the same tokens.
    tokenizer = load_tokenizer(resolve_model_dir(config.tokenizer))
    pair_tokenizer = PairTokenizer(
        tokenizer, config.input.max_length, config.input.max_response_length, config.input.max_context_turns
    )
    pairs = read_training_pairs(data.train, max_context_turns=2)
    train_batch = pair_tokenizer.batch([p.context for p in pairs], [p.response for p in pairs])
    train_ids = train_batch["input_ids"][train_batch["attention_mask"].bool()].tolist()
    test_batch = pair_tokenizer.batch(contexts, gold)
    response_mask = response_token_mask(test_batch["token_type_ids"], test_batch["attention_mask"])
    test_ids = test_batch["input_ids"][response_mask].tolist()
    assert len(test_ids) == int(counts.sum())
    unigram = unigram_perplexity(train_ids, test_ids, len(tokenizer))
    assert lm_ppl < 0.8 * unigram, (lm_ppl, unigram)
