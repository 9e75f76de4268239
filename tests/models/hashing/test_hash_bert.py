"""HashBert with the real encoder: bit-identical codes after save/load, encoder checks, embedded encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashbert.config import HashBertConfig, HashConfig
from hashbert.data import RerankGroup
from hashbert.io import ArtefactError
from hashbert.models.hashing.hash_bert import HashBert, referencing
from hashbert.models.hashing.tower_heads import HashHeads
from hashbert.models.registry import load_model

CONTEXTS = [("hi, how are you?", "great, just back from a hike"), ("what is your favourite food?",)]
RESPONSES = ["where did you hike?", "pizza, definitely", "i like turtles"]


@pytest.fixture(scope="module")
def saved_dual(_base_dual_encoder, tmp_path_factory):
    return _base_dual_encoder.save(tmp_path_factory.mktemp("dual") / "model")


def _hash_bert(dual, dual_dir, n_bits=128, **overrides):
    torch.manual_seed(0)
    hash_config = HashConfig(n_bits=n_bits, hidden=64, **overrides)
    heads = HashHeads(hash_config, dual.dim, decoders=True)
    return HashBert(referencing(HashBertConfig(hash=hash_config, in_dim=dual.dim), dual_dir), dual, heads)


@pytest.mark.slow
def test_codes_bit_identical_after_save_load(dual_encoder, saved_dual, tmp_path):
    model = _hash_bert(dual_encoder, saved_dual, normalize_input=True)
    ctx_codes, resp_codes = model.encode_context_codes(CONTEXTS), model.encode_response_codes(RESPONSES)
    assert ctx_codes.dtype == np.uint8 and ctx_codes.shape == (2, 16) and resp_codes.shape == (3, 16)
    model.save(tmp_path / "hash")
    loaded = load_model(tmp_path / "hash")
    assert isinstance(loaded, HashBert) and loaded.config == model.config and not loaded.training
    assert np.array_equal(loaded.encode_context_codes(CONTEXTS), ctx_codes)
    assert np.array_equal(loaded.encode_response_codes(RESPONSES), resp_codes)
    np.testing.assert_array_equal(loaded.context_hash_vectors(CONTEXTS), model.context_hash_vectors(CONTEXTS))


@pytest.mark.slow
def test_rerank_scores_symmetric_are_negated_hamming(dual_encoder, saved_dual):
    model = _hash_bert(dual_encoder, saved_dual, n_bits=64)
    groups = [RerankGroup(CONTEXTS[0], tuple(RESPONSES), (1, 0, 0), 1)]
    sym = model.rerank_scores(groups)[0]
    ctx, resp = model.encode_context_codes(CONTEXTS[:1]), model.encode_response_codes(RESPONSES)
    expected = -np.unpackbits(ctx ^ resp, axis=1).sum(axis=1).astype(int)
    assert sym.tolist() == expected.tolist() and (sym <= 0).all() and (sym >= -64).all()
    asym = model.rerank_scores(groups, scoring="asymmetric")[0]
    assert asym.shape == (3,) and not np.array_equal(asym, sym)
    with pytest.raises(ValueError, match="scoring"):
        model.rerank_scores(groups, scoring="cosine")


@pytest.mark.slow
def test_changed_encoder_refuses_to_load(dual_encoder, tmp_path):
    dual_dir = dual_encoder.save(tmp_path / "dual")
    _hash_bert(dual_encoder, dual_dir).save(tmp_path / "hash")
    with torch.no_grad():
        next(dual_encoder.parameters()).add_(0.01)
    dual_encoder.save(tmp_path / "dual")  # the DR-BERT was retrained in place
    with pytest.raises(ArtefactError, match="changed since"):
        HashBert.load(tmp_path / "hash")


@pytest.mark.slow
def test_embedded_encoder_round_trip(dual_encoder, saved_dual, tmp_path):
    model = _hash_bert(dual_encoder, saved_dual, n_bits=64)
    model.config = HashBertConfig(hash=model.config.hash, in_dim=model.config.in_dim, encoder_embedded=True)
    with torch.no_grad():
        next(model.dual_encoder.parameters()).add_(0.01)  # a fine-tuned encoder
    codes = model.encode_response_codes(RESPONSES)
    model.save(tmp_path / "hash")
    assert (tmp_path / "hash" / "dual_encoder" / "checksums.json").is_file()
    loaded = HashBert.load(tmp_path / "hash")
    assert loaded.config.encoder_path == "dual_encoder"
    assert np.array_equal(loaded.encode_response_codes(RESPONSES), codes)


def test_trainable_encoder_layers(dual_encoder):
    heads = HashHeads(HashConfig(n_bits=64, hidden=0), dual_encoder.dim)
    model = HashBert(HashBertConfig(hash=heads.config), dual_encoder, heads)
    model.trainable_encoder_layers(1)
    trainable = {n for n, p in model.dual_encoder.named_parameters() if p.requires_grad}
    n_layers = len(dual_encoder.context_encoder.backbone.encoder.layer)
    assert trainable and all(f"encoder.layer.{n_layers - 1}." in n for n in trainable)
    assert all(p.requires_grad for p in model.heads.parameters())
    model.trainable_encoder_layers(None)
    assert all(p.requires_grad for p in model.parameters())
