"""HDR-BERT on the real encoder and real Chit-Chat dialogues: MaxSim, the incremental cache against
from-scratch encoding, the cache bound, save/load of models and caches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hashbert.config import EncoderConfig, HdrConfig
from hashbert.data import read_rerank_groups
from hashbert.io import ArtefactError
from hashbert.models.hdr import HdrModel, newest_turns
from hashbert.models.hdr_aggregators import maxsim
from hashbert.models.hdr_cache import HdrCache
from hashbert.models.registry import load_model

AGGREGATORS = ("trs", "trs-mv", "colbert", "gpt-mv")


def small_hdr(dual_encoder, aggregator: str, **overrides) -> HdrModel:
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


@pytest.fixture(scope="module")
def dialogues(small_corpus):
    """Three real test contexts of 6 to 8 turns: more than the history bound (4), so the oldest are dropped."""
    groups = read_rerank_groups(small_corpus / "test.txt")
    return sorted({g.context for g in groups if 6 <= len(g.context) <= 8})[:3]


def test_maxsim_equals_direct_loop():
    gen = torch.Generator().manual_seed(0)
    context, response = torch.randn(3, 4, 8, generator=gen), torch.randn(5, 3, 8, generator=gen)
    context_mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    response_mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1]], dtype=torch.bool)
    expected = torch.zeros(3, 5)
    for b in range(3):
        for n in range(5):
            best = []
            for a in range(4):
                if context_mask[b, a]:
                    best.append(max(float(context[b, a] @ response[n, j]) for j in range(3) if response_mask[n, j]))
            expected[b, n] = sum(best) / len(best)
    torch.testing.assert_close(maxsim(context, context_mask, response, response_mask), expected)
    one = maxsim(context[:, :1], context_mask[:, :1], response[:, :1], response_mask[:, :1])
    torch.testing.assert_close(one, context[:, 0] @ response[:, 0].T)  # one vector a side: the dot product


def test_maxsim_loss_with_one_vector_is_the_in_batch_loss():
    from hashbert.losses.in_batch import InBatchSoftmaxLoss
    from hashbert.losses.maxsim import MaxSimInBatchLoss

    gen = torch.Generator().manual_seed(1)
    context, response = torch.randn(4, 1, 8, generator=gen), torch.randn(4, 1, 8, generator=gen)
    ones = torch.ones(4, 1, dtype=torch.bool)
    torch.testing.assert_close(
        MaxSimInBatchLoss(0.1)(context, ones, response, ones), InBatchSoftmaxLoss(0.1)(context[:, 0], response[:, 0])
    )


@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_cache_equals_from_scratch_on_real_dialogues(dual_encoder, dialogues, aggregator):
    model = small_hdr(dual_encoder, aggregator)
    for dialogue in dialogues:
        prefixes = [dialogue[: i + 1] for i in range(len(dialogue))]
        scratch = model.encode_context_vectors(prefixes)  # batched, padded, truncated to the newest 4 turns
        cache = model.new_cache()
        for i, utterance in enumerate(dialogue):
            cache.append(utterance)
            got = cache.context_vectors()
            expected = scratch.vectors[i][scratch.mask[i]] if model.multi_vector else scratch.vectors[i, 0]
            np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_untrained_model_scores_newest_turn_plus_decayed_history(dual_encoder, dialogues):
    """At initialisation the aggregator is silent: the context vector is the newest utterance's pooled vector
    plus the earlier ones weighted decay^d (exactly the newest one alone without the skip path)."""
    for decay in (0.0, 0.3):
        model = small_hdr(dual_encoder, "trs-mv", history_decay=decay)
        with torch.no_grad():  # undo small_hdr's perturbation: the merge as initialised
            model.aggregator.merge.weight.zero_()
            model.aggregator.merge.weight[:, 384:] = torch.eye(384)
        turns = dialogues[0][-3:]
        pooled = model.encode_context_vectors([(u,) for u in turns]).vectors[:, 0]  # (3, H) one-turn contexts
        expected = pooled[2] + decay * pooled[1] + decay**2 * pooled[0]
        got = model.encode_context_vectors([turns]).vectors[0, 0]
        np.testing.assert_allclose(got, expected / np.linalg.norm(expected), atol=1e-5)


def test_append_encodes_only_the_newest_utterance(dual_encoder, dialogues, monkeypatch):
    model = small_hdr(dual_encoder, "trs-mv")
    cache = model.new_cache()
    for utterance in dialogues[0][:3]:
        cache.append(utterance)
    seen = []
    original = model.utterance_slots

    def counting(input_ids, attention_mask):
        seen.append(input_ids.shape[0])
        return original(input_ids, attention_mask)

    monkeypatch.setattr(model, "utterance_slots", counting)
    cache.append("and one more turn")
    cache.context_vectors()
    assert seen == [1]


def test_cache_bound_drops_oldest_like_training(dual_encoder, dialogues):
    model = small_hdr(dual_encoder, "trs")
    dialogue = dialogues[0]
    cache = model.new_cache()
    for i, utterance in enumerate(dialogue):
        cache.append(utterance, speaker=i % 2)
        assert len(cache) == min(i + 1, 4)
        assert cache.texts == newest_turns(dialogue[: i + 1], model.config.max_turns)
    assert [t.index for t in cache.turns] == list(range(len(dialogue) - 4, len(dialogue)))
    assert model.new_cache(max_turns=2).max_turns == 2
    with pytest.raises(ValueError, match="max_turns"):
        model.new_cache(max_turns=5)  # beyond the history the model was trained on
    with pytest.raises(ValueError, match="empty"):
        model.new_cache().context_vectors()


def _groups(small_corpus, n: int = 6):
    return read_rerank_groups(small_corpus / "test.txt")[:n]


@pytest.mark.parametrize("aggregator", ["trs-mv", "colbert"])
def test_save_load_identical_scores(dual_encoder, small_corpus, tmp_path, aggregator):
    model = small_hdr(dual_encoder, aggregator)
    model.save(tmp_path / "hdr")
    loaded = load_model(tmp_path / "hdr")
    assert isinstance(loaded, HdrModel) and loaded.config == model.config
    groups = _groups(small_corpus)
    for ours, theirs in zip(model.rerank_scores(groups), loaded.rerank_scores(groups), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_saved_and_restored_cache_continues_identically(dual_encoder, dialogues, tmp_path):
    model = small_hdr(dual_encoder, "gpt-mv")
    model.save(tmp_path / "hdr")
    dialogue = dialogues[0]
    cache = model.new_cache()
    for utterance in dialogue[:5]:
        cache.append(utterance)
    cache.save(tmp_path / "session")
    restored = HdrCache.load(tmp_path / "session", HdrModel.load(tmp_path / "hdr"))
    assert restored.texts == cache.texts and restored.next_index == cache.next_index == 5
    for utterance in dialogue[5:8]:
        cache.append(utterance)
        restored.append(utterance)
        np.testing.assert_allclose(restored.context_vectors(), cache.context_vectors(), atol=1e-6)


def test_cache_refuses_another_model_or_damage(dual_encoder, dialogues, tmp_path):
    model = small_hdr(dual_encoder, "trs")
    cache = model.new_cache()
    cache.append(dialogues[0][0])
    cache.save(tmp_path / "session")
    other = small_hdr(dual_encoder, "trs-mv")
    with pytest.raises(ArtefactError, match="another configuration"):
        HdrCache.load(tmp_path / "session", other)
    model.fingerprint, cache.model.fingerprint = "a" * 64, "a" * 64
    cache.save(tmp_path / "session")
    model.fingerprint = "b" * 64
    with pytest.raises(ArtefactError, match="other HDR weights"):
        HdrCache.load(tmp_path / "session", model)
    (tmp_path / "session" / "state.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ArtefactError, match="checksum"):
        HdrCache.load(tmp_path / "session", model)


def test_config_validation():
    with pytest.raises(ValueError, match="aggregator"):
        HdrConfig(aggregator="lstm")
    with pytest.raises(ValueError, match="bounded history"):
        HdrConfig(encoder=EncoderConfig(max_context_turns=0))
    with pytest.raises(ValueError, match="history_decay"):
        HdrConfig(history_decay=1.0)
    assert HdrConfig(aggregator="trs").slots == 1 and HdrConfig().slots == 5
    assert dataclasses.replace(HdrConfig(), aggregator="colbert").slots == 5
