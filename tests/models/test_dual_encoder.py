"""The real all-MiniLM-L6-v2 encoder: truncation, pooling, save/load and damaged directories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashbert.data import RerankGroup
from hashbert.io import ArtefactError
from hashbert.models.dual_encoder import DualEncoder
from hashbert.models.encoder import resolve_model_dir
from hashbert.models.registry import load_model

CONTEXTS = [("hi, how are you?", "great, just back from a hike"), ("what is your favourite food?",)]
RESPONSES = ["where did you hike?", "pizza, definitely", "i like turtles"]


def test_resolve_model_dir_errors():
    with pytest.raises(ValueError, match="neither a directory nor one of the packaged models"):
        resolve_model_dir("no-such-model")
    assert (resolve_model_dir("all-MiniLM-L6-v2") / "config.json").is_file()


def test_context_truncated_from_left_keeps_newest_turn(dual_encoder):
    old = "an old turn " * 40
    batch = dual_encoder.batcher.contexts([(old, "the newest turn")])
    tokens = dual_encoder.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tokens[-4:-1] == ["the", "newest", "turn"]
    assert len(tokens) == dual_encoder.config.encoder.max_context_length


def test_response_truncated_from_right(dual_encoder):
    batch = dual_encoder.batcher.responses(["first words " + "filler " * 50])
    tokens = dual_encoder.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert tokens[1:3] == ["first", "words"] and len(tokens) == dual_encoder.config.encoder.max_response_length


def test_turns_joined_with_separator_and_capped(dual_encoder):
    turns = tuple(f"turn {i}" for i in range(10))
    joined = dual_encoder.batcher.join_context(turns)
    assert joined == " [SEP] ".join(turns[-dual_encoder.config.encoder.max_context_turns :])


def test_vectors_normalised_and_relevant(dual_encoder):
    ctx = dual_encoder.encode_contexts(CONTEXTS)
    resp = dual_encoder.encode_responses(RESPONSES)
    assert ctx.shape == (2, 384) and ctx.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(resp, axis=1), 1.0, rtol=1e-5)
    scores = ctx @ resp.T
    assert scores[0].argmax() == 0 and scores[1].argmax() == 1  # zero-shot MiniLM already gets these


def test_encoding_order_independent_of_length_sorting(dual_encoder):
    one_by_one = np.stack([dual_encoder.encode_responses([r])[0] for r in RESPONSES])
    np.testing.assert_allclose(dual_encoder.encode_responses(RESPONSES), one_by_one, atol=1e-5)


def test_rerank_scores_match_dot_products(dual_encoder):
    group = RerankGroup(CONTEXTS[0], tuple(RESPONSES), (1, 0, 0), line_no=1)
    scores = dual_encoder.rerank_scores([group, group])
    expected = dual_encoder.encode_responses(RESPONSES) @ dual_encoder.encode_contexts([CONTEXTS[0]])[0]
    np.testing.assert_allclose(scores[0], expected, atol=1e-5)
    np.testing.assert_allclose(scores[1], expected, atol=1e-5)


def _perturb(model: DualEncoder) -> None:
    # Make the towers differ from the pretrained weights, so a reload that silently fell back to
    # the base model would be caught.
    with torch.no_grad():
        for p in model.response_encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))


def test_save_load_identical_scores(dual_encoder, tmp_path):
    _perturb(dual_encoder)
    dual_encoder.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, DualEncoder) and loaded.config == dual_encoder.config
    np.testing.assert_array_equal(loaded.encode_responses(RESPONSES), dual_encoder.encode_responses(RESPONSES))
    np.testing.assert_array_equal(loaded.encode_contexts(CONTEXTS), dual_encoder.encode_contexts(CONTEXTS))


def test_shared_towers_round_trip(small_config, tmp_path):
    from dataclasses import replace

    model = DualEncoder.from_base(replace(small_config, shared=True))
    assert model.context_encoder is model.response_encoder
    model.save(tmp_path / "shared")
    loaded = DualEncoder.load(tmp_path / "shared")
    assert loaded.context_encoder is loaded.response_encoder
    np.testing.assert_array_equal(loaded.encode_responses(RESPONSES), model.encode_responses(RESPONSES))


def test_damaged_directory_refused(dual_encoder, tmp_path):
    path = dual_encoder.save(tmp_path / "m")
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="checksum mismatch"):
        DualEncoder.load(path)
    weights.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(ArtefactError, match="model.safetensors"):
        load_model(path)


def test_missing_directory_refused(tmp_path):
    with pytest.raises(ArtefactError):
        DualEncoder.load(tmp_path / "absent")
