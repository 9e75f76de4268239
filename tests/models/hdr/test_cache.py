"""HdrCache on the real encoder and real Chit-Chat dialogues: the incremental cache against from-scratch
encoding, one encoder call per turn, the history bound, and save/load of caches."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.io import ArtefactError
from hashbert.models.hdr.cache import HdrCache, append_many, context_vectors_many
from hashbert.models.hdr.model import HdrModel, newest_turns

AGGREGATORS = ("trs", "trs-mv", "colbert", "gpt-mv")


@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_cache_equals_from_scratch_on_real_dialogues(small_hdr, dialogues, aggregator):
    model = small_hdr(aggregator)
    for dialogue in dialogues:
        prefixes = [dialogue[: i + 1] for i in range(len(dialogue))]
        scratch = model.encode_context_vectors(prefixes)  # batched, padded, truncated to the newest 4 turns
        cache = HdrCache(model)
        for i, utterance in enumerate(dialogue):
            cache.append(utterance)
            got = cache.context_vectors()
            expected = scratch.vectors[i][scratch.mask[i]] if model.multi_vector else scratch.vectors[i, 0]
            np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_context_vectors_many_equals_each_cache_alone(small_hdr, dialogues, aggregator):
    model = small_hdr(aggregator)
    caches = []
    for n, dialogue in enumerate(dialogues[:3]):  # 1, 2, 3... turns: the shorter ones are padded in the batch
        cache = HdrCache(model)
        for utterance in dialogue[: n + 1]:
            cache.append(utterance)
        caches.append(cache)
    for cache, together in zip(caches, context_vectors_many(caches), strict=True):
        np.testing.assert_allclose(together, cache.context_vectors(), atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="empty"):
        context_vectors_many([caches[0], HdrCache(model)])


def test_append_encodes_only_the_newest_utterance(small_hdr, dialogues, monkeypatch):
    model = small_hdr("trs-mv")
    cache = HdrCache(model)
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


def test_append_many_equals_one_append_per_cache_in_one_forward_pass(small_hdr, dialogues, monkeypatch):
    model = small_hdr("trs-mv")
    alone, together = [HdrCache(model) for _ in dialogues[:3]], [HdrCache(model) for _ in dialogues[:3]]
    seen = []
    original = model.utterance_slots
    monkeypatch.setattr(model, "utterance_slots", lambda input_ids, attention_mask: seen.append(len(input_ids))
                        or original(input_ids, attention_mask))
    for turn in range(3):  # utterances of different lengths: the batch pads them
        utterances = [dialogue[turn] for dialogue in dialogues[:3]]
        for cache, utterance in zip(alone, utterances, strict=True):
            cache.append(utterance, speaker=turn % 2)
        append_many(together, utterances, [turn % 2] * 3)
    assert seen == [1, 1, 1, 3] * 3
    for one, many in zip(alone, together, strict=True):
        assert one.texts == many.texts and [t.speaker for t in one.turns] == [t.speaker for t in many.turns]
        np.testing.assert_allclose(many.context_vectors(), one.context_vectors(), atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="speaker"):
        append_many(together[:1], ["hi"], [2])
    with pytest.raises(ValueError, match="one model"):
        append_many([HdrCache(model), HdrCache(small_hdr("trs"))], ["a", "b"], [0, 1])


def test_cache_bound_drops_oldest_like_training(small_hdr, dialogues):
    model = small_hdr("trs")
    dialogue = dialogues[0]
    cache = HdrCache(model)
    for i, utterance in enumerate(dialogue):
        cache.append(utterance, speaker=i % 2)
        assert len(cache) == min(i + 1, 4)
        assert cache.texts == newest_turns(dialogue[: i + 1], model.config.max_turns)
    assert [t.index for t in cache.turns] == list(range(len(dialogue) - 4, len(dialogue)))
    assert HdrCache(model, max_turns=2).max_turns == 2
    with pytest.raises(ValueError, match="max_turns"):
        HdrCache(model, max_turns=5)  # beyond the history the model was trained on
    with pytest.raises(ValueError, match="empty"):
        HdrCache(model).context_vectors()


def test_saved_and_restored_cache_continues_identically(small_hdr, dialogues, tmp_path):
    model = small_hdr("gpt-mv")
    model.save(tmp_path / "hdr")
    dialogue = dialogues[0]
    cache = HdrCache(model)
    for utterance in dialogue[:5]:
        cache.append(utterance)
    cache.save(tmp_path / "session")
    restored = HdrCache.load(tmp_path / "session", HdrModel.load(tmp_path / "hdr"))
    assert restored.texts == cache.texts and restored.next_index == cache.next_index == 5
    for utterance in dialogue[5:8]:
        cache.append(utterance)
        restored.append(utterance)
        np.testing.assert_allclose(restored.context_vectors(), cache.context_vectors(), atol=1e-6)


def test_cache_refuses_another_model_or_damage(small_hdr, dialogues, tmp_path):
    model = small_hdr("trs")
    cache = HdrCache(model)
    cache.append(dialogues[0][0])
    cache.save(tmp_path / "session")
    other = small_hdr("trs-mv")
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
