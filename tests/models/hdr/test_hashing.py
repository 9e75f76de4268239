"""Hash codes of HDR vectors: MaxSim over Hamming similarity against a packed-code loop, LSH and heads
models saved, reloaded and checked against the HDR model they reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashbert.codes import binarize, hamming_distance, pack_codes
from hashbert.config import EncoderConfig, HashConfig, HdrConfig
from hashbert.data import read_rerank_groups
from hashbert.io import ArtefactError
from hashbert.models.hashing.lsh import RandomHyperplaneLSH
from hashbert.models.hashing.scoring import index_groups
from hashbert.models.hdr.aggregators import MultiVectors
from hashbert.models.hdr.hashing import HdrHash, hashed_maxsim_scores, heads_model, save_hdr_lsh
from hashbert.models.hdr.model import HdrModel
from hashbert.models.registry import load_model


def _multi(rng: np.random.Generator, n: int, k: int, dim: int) -> MultiVectors:
    mask = rng.random((n, k)) < 0.7
    mask[:, 0] = True
    return MultiVectors(rng.standard_normal((n, k, dim)).astype(np.float32), mask)


def test_colbert_hamming_maxsim_equals_packed_code_loop():
    from hashbert.data import RerankGroup

    rng = np.random.default_rng(0)
    groups = [RerankGroup((f"c{i}",), tuple(f"r{(i + j) % 7}" for j in range(4)), (1, 0, 0, 0), 1) for i in range(3)]
    index = index_groups(groups)
    contexts, responses = _multi(rng, 3, 4, 16), _multi(rng, 7, 4, 16)
    lsh = RandomHyperplaneLSH(16, 64, seed=1)
    scores = hashed_maxsim_scores(lsh, contexts, responses, index, "symmetric")
    for g, (c, rows) in enumerate(zip(index.context_rows, index.candidate_rows, strict=True)):
        ctx_codes = pack_codes(binarize(lsh.context_hash_vectors(contexts.vectors[c][contexts.mask[c]])))
        for j, r in enumerate(rows):
            resp_codes = pack_codes(binarize(lsh.response_hash_vectors(responses.vectors[r][responses.mask[r]])))
            similarity = 64 - 2 * hamming_distance(ctx_codes, resp_codes).astype(np.float64)  # (n_ctx, n_resp)
            assert scores[g][j] == pytest.approx(similarity.max(axis=1).mean(), abs=1e-9)
    asym = hashed_maxsim_scores(lsh, contexts, responses, index, "asymmetric")
    c, r = index.context_rows[0], index.candidate_rows[0][0]
    floats = lsh.context_hash_vectors(contexts.vectors[c][contexts.mask[c]])
    codes = binarize(lsh.response_hash_vectors(responses.vectors[r][responses.mask[r]]))
    assert asym[0][0] == pytest.approx((floats @ codes.T).max(axis=1).mean(), rel=1e-5)


def _small_hdr(dual_encoder, aggregator: str) -> HdrModel:
    config = HdrConfig(
        encoder=EncoderConfig(max_response_length=16, max_context_turns=4), aggregator=aggregator,
        utterance_length=16, vectors_per_utterance=3, layers=1, heads=4, ffn_dim=128,
    )
    torch.manual_seed(0)
    return HdrModel(config, dual_encoder.context_encoder, dual_encoder.response_encoder, dual_encoder.tokenizer).eval()


@pytest.fixture()
def groups(small_corpus):
    return read_rerank_groups(small_corpus / "test.txt")[:5]


def test_lsh_on_colbert_saves_loads_and_scores_identically(dual_encoder, groups, tmp_path):
    _small_hdr(dual_encoder, "colbert").save(tmp_path / "hdr")
    save_hdr_lsh(tmp_path / "hdr", 128, tmp_path / "lsh", seed=3)
    model = load_model(tmp_path / "lsh")
    assert isinstance(model, HdrHash) and model.row_name == "HDR-BERT-ColBERT+LSH(128)"
    again = HdrHash.load(tmp_path / "lsh", scoring="asymmetric")
    np.testing.assert_array_equal(again.hasher.planes, RandomHyperplaneLSH(384, 128, seed=3).planes)
    symmetric = again.rerank_scores(groups, scoring="symmetric")
    for ours, theirs in zip(model.rerank_scores(groups), symmetric, strict=True):
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_allclose(ours * 6, np.round(ours * 6), atol=1e-4)  # integer similarities over 1-3 vectors


def test_heads_model_round_trip_and_stale_hdr_refused(dual_encoder, groups, tmp_path):
    _small_hdr(dual_encoder, "trs-mv").save(tmp_path / "hdr")
    hdr = HdrModel.load(tmp_path / "hdr")
    model = heads_model(hdr, tmp_path / "hdr", HashConfig(n_bits=64, hidden=32), decoders=True, recipe="vae")
    model.hasher.eval()
    model.save(tmp_path / "heads")
    loaded = load_model(tmp_path / "heads")
    assert loaded.row_name == "BPR-HDR-BERT-Trs-MV-vae(64)" and loaded.config == model.config
    for scoring in ("symmetric", "asymmetric"):
        pairs = zip(
            model.rerank_scores(groups, scoring=scoring), loaded.rerank_scores(groups, scoring=scoring), strict=True
        )
        for ours, theirs in pairs:
            np.testing.assert_array_equal(ours, theirs)
    _small_hdr(dual_encoder, "trs").save(tmp_path / "hdr")  # the referenced HDR model changes
    with pytest.raises(ArtefactError, match="changed"):
        load_model(tmp_path / "heads")
    with pytest.raises(ValueError, match="one vector per text"):
        heads_model(_small_hdr(dual_encoder, "colbert"), tmp_path / "hdr", HashConfig(n_bits=64), False, "bpr")
