"""HdrModel on the real encoder and real Chit-Chat dialogues: the untrained aggregator, save/load, config checks."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from hashbert.config import EncoderConfig, HdrConfig
from hashbert.data import read_rerank_groups
from hashbert.models.hdr.model import HdrModel
from hashbert.models.registry import load_model


def test_untrained_model_scores_newest_turn_plus_decayed_history(small_hdr, dialogues):
    """At initialisation the aggregator is silent: the context vector is the newest utterance's pooled vector
    plus the earlier ones weighted decay^d (exactly the newest one alone without the skip path)."""
    for decay in (0.0, 0.3):
        model = small_hdr("trs-mv", history_decay=decay)
        with torch.no_grad():  # undo small_hdr's perturbation: the merge as initialised
            model.aggregator.merge.weight.zero_()
            model.aggregator.merge.weight[:, 384:] = torch.eye(384)
        turns = dialogues[0][-3:]
        pooled = model.encode_context_vectors([(u,) for u in turns]).vectors[:, 0]  # (3, H) one-turn contexts
        expected = pooled[2] + decay * pooled[1] + decay**2 * pooled[0]
        got = model.encode_context_vectors([turns]).vectors[0, 0]
        np.testing.assert_allclose(got, expected / np.linalg.norm(expected), atol=1e-5)


def _groups(small_corpus, n: int = 6):
    return read_rerank_groups(small_corpus / "test.txt")[:n]


@pytest.mark.parametrize("aggregator", ["trs-mv", "colbert"])
def test_save_load_identical_scores(small_hdr, small_corpus, tmp_path, aggregator):
    model = small_hdr(aggregator)
    model.save(tmp_path / "hdr")
    loaded = load_model(tmp_path / "hdr")
    assert isinstance(loaded, HdrModel) and loaded.config == model.config
    groups = _groups(small_corpus)
    for ours, theirs in zip(model.rerank_scores(groups), loaded.rerank_scores(groups), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_config_validation():
    with pytest.raises(ValueError, match="aggregator"):
        HdrConfig(aggregator="lstm")
    with pytest.raises(ValueError, match="bounded history"):
        HdrConfig(encoder=EncoderConfig(max_context_turns=0))
    with pytest.raises(ValueError, match="history_decay"):
        HdrConfig(history_decay=1.0)
    assert HdrConfig(aggregator="trs").slots == 1 and HdrConfig().slots == 5
    assert dataclasses.replace(HdrConfig(), aggregator="colbert").slots == 5


def test_lighter_utterance_encoder_keeps_its_first_and_last_layers_and_survives_save_load(
    dual_encoder, small_hdr, small_corpus, tmp_path
):
    full = copy.deepcopy(dual_encoder.context_encoder.backbone).eval()
    model = small_hdr("trs-mv", utterance_layers=3)
    kept = model.utterance_encoder.backbone.encoder.layer
    assert len(kept) == 3 and len(model.response_encoder.backbone.encoder.layer) == len(full.encoder.layer) == 6
    for layer, original in zip(kept, [full.encoder.layer[i] for i in (0, 4, 5)], strict=True):
        for ours, theirs in zip(layer.parameters(), original.parameters(), strict=True):
            assert torch.equal(ours, theirs)
    # reference: the uncut encoder run with layers 0, 4 and 5 picked by hand
    full.encoder.layer = torch.nn.ModuleList([full.encoder.layer[i] for i in (0, 4, 5)])
    tokens = model.tokenize_utterances(["hi, how was your weekend?", "I went hiking with my dog"])
    with torch.no_grad():
        slots, _ = model.utterance_slots(**tokens)
        hidden = full(**tokens).last_hidden_state
    np.testing.assert_allclose(slots[:, 1:].numpy(), hidden[:, 1:3].numpy(), atol=1e-5)
    model.save(tmp_path / "light")
    loaded = load_model(tmp_path / "light")
    assert len(loaded.utterance_encoder.backbone.encoder.layer) == 3 and loaded.config.utterance_layers == 3
    groups = _groups(small_corpus)
    for ours, theirs in zip(model.rerank_scores(groups), loaded.rerank_scores(groups), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_lighter_utterance_encoder_refuses_shared_towers_and_too_many_layers(dual_encoder):
    with pytest.raises(ValueError, match="separate towers"):
        HdrConfig(shared=True, utterance_layers=2)
    with pytest.raises(ValueError, match="separate towers"):
        HdrModel(HdrConfig(utterance_layers=2), dual_encoder.context_encoder, dual_encoder.context_encoder,
                 dual_encoder.tokenizer)
    with pytest.raises(ValueError, match="cannot keep 7 layers of 6"):
        HdrModel(HdrConfig(utterance_layers=7), dual_encoder.context_encoder, dual_encoder.response_encoder,
                 dual_encoder.tokenizer)
