"""Artefacts saved by the code before the models/config reshape still load and score identically.

``tests/fixtures/legacy/`` holds small artefacts written by commit 2c6ff5e18ffcc2e5cdd97b12b9632f5d3d639ca6
(``make_legacy_fixtures.py`` there; never regenerate them with newer code): a DualEncoder, a HashBert with its
encoder embedded, an ITQ hasher, an HdrModel, an HdrCache, a BinaryFlatIndex and a FloatIndex, all on a tiny
seeded BERT, plus ``expected.json``, what that code computed with them. Each test loads one artefact through
the public loading path (``hashbert.load_model``, ``HdrCache.load``, the index classes' ``load``) from a copy
in a temporary directory (the checksums are verified on the way) and recomputes the same numbers: codes, ids,
texts and Hamming distances must be equal, floats equal within rtol 1e-5 / atol 1e-6. A moved module, a
renamed config field or weight, a changed tokenisation or truncation rule, or a changed scoring formula makes
one of them fail.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hashbert import load_model
from hashbert.data import RerankGroup
from hashbert.index import BinaryFlatIndex, FloatIndex, load_index

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
RTOL, ATOL = 1e-5, 1e-6


def _hdr_cache_class() -> type:
    """``HdrCache`` from its new module (``hashbert.models.hdr.cache``) or, before the move, the old one."""
    for name in ("hashbert.models.hdr.cache", "hashbert.models.hdr_cache"):
        try:
            return importlib.import_module(name).HdrCache
        except ModuleNotFoundError as err:
            if not name.startswith(str(err.name)):  # a module missing inside it is a real failure
                raise
    raise ImportError("HdrCache is in neither hashbert.models.hdr.cache nor hashbert.models.hdr_cache")


HdrCache = _hdr_cache_class()


def assert_close(actual, expected, what: str) -> None:
    """Floats equal within rtol 1e-5 / atol 1e-6 (float32 noise of another thread count or BLAS path)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    np.testing.assert_allclose(actual, expected, RTOL, ATOL, err_msg=what)


def hex_codes(codes: np.ndarray) -> list[str]:
    return [bytes(row).hex() for row in np.asarray(codes, np.uint8)]


def from_hex(codes: list[str]) -> np.ndarray:
    return np.array([list(bytes.fromhex(code)) for code in codes], dtype=np.uint8)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread, as the fixtures were written with (the machine is shared); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> Path:
    """A private copy of the fixtures (loading must work from anywhere, and tests never write into the repo)."""
    copy = tmp_path_factory.mktemp("legacy") / "legacy"
    shutil.copytree(FIXTURES, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return copy


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def groups(expected) -> list[RerankGroup]:
    """One re-rank group per context, every test response a candidate (the i-th one labelled positive)."""
    responses = tuple(expected["responses"])
    return [
        RerankGroup(tuple(c), responses, tuple(int(j == i) for j in range(len(responses))), i + 1)
        for i, c in enumerate(expected["contexts"])
    ]


def test_dual_encoder_loads_and_scores_identically(legacy, expected, groups):
    """The old DualEncoder directory loads by its recorded type; vectors, dot scores and re-rank scores match."""
    model = load_model(legacy / "dual_encoder")
    assert type(model).__name__ == "DualEncoder"
    want = expected["dual_encoder"]
    contexts = model.encode_contexts(expected["contexts"])
    responses = model.encode_responses(expected["responses"])
    assert_close(contexts, want["context_vectors"], "context vectors")
    assert_close(responses, want["response_vectors"], "response vectors")
    assert_close(contexts @ responses.T, want["scores"], "score matrix")
    for got, exp in zip(model.rerank_scores(groups), want["rerank_scores"], strict=True):
        assert_close(got, exp, "re-rank scores")


def test_hash_bert_with_embedded_encoder_gives_the_same_codes(legacy, expected, groups):
    """The old HashBert (heads + embedded DR-BERT, checked by checksum) loads; codes are bit-identical and the
    continuous outputs, Hamming and asymmetric re-rank scores match."""
    model = load_model(legacy / "hash_bert")
    assert type(model).__name__ == "HashBert" and model.n_bits == expected["hash_bert"]["n_bits"]
    want = expected["hash_bert"]
    assert hex_codes(model.encode_context_codes(expected["contexts"])) == want["context_codes_hex"]
    assert hex_codes(model.encode_response_codes(expected["responses"])) == want["response_codes_hex"]
    assert_close(model.context_hash_vectors(expected["contexts"]), want["context_hash_vectors"], "context outputs")
    symmetric = model.rerank_scores(groups, scoring="symmetric")
    assert [s.tolist() for s in symmetric] == want["symmetric_scores"]
    for got, exp in zip(model.rerank_scores(groups, scoring="asymmetric"), want["asymmetric_scores"], strict=True):
        assert_close(got, exp, "asymmetric re-rank scores")


def test_itq_hasher_projects_identically(legacy, expected):
    """The old ITQ directory (numpy arrays + config) loads; its projections of fixed vectors match."""
    itq = load_model(legacy / "itq")
    assert type(itq).__name__ == "ITQ"
    contexts = np.asarray(expected["dual_encoder"]["context_vectors"], np.float32)
    responses = np.asarray(expected["dual_encoder"]["response_vectors"], np.float32)
    assert_close(itq.context_hash_vectors(contexts), expected["itq"]["context_hash_vectors"], "ITQ context side")
    assert_close(itq.response_hash_vectors(responses), expected["itq"]["response_hash_vectors"], "ITQ response side")


def test_hdr_model_loads_and_scores_identically(legacy, expected, groups):
    """The old HdrModel (trs-mv aggregator) loads; context and response vectors and re-rank scores match."""
    model = load_model(legacy / "hdr")
    assert type(model).__name__ == "HdrModel"
    want = expected["hdr"]
    assert_close(model.encode_contexts(expected["contexts"]), want["context_vectors"], "HDR context vectors")
    assert_close(model.encode_responses(expected["responses"]), want["response_vectors"], "HDR response vectors")
    for got, exp in zip(model.rerank_scores(groups), want["rerank_scores"], strict=True):
        assert_close(got, exp, "HDR re-rank scores")


def test_hdr_cache_restores_the_same_history(legacy, expected):
    """The old HdrCache loads for the old HdrModel (same config and fingerprint); its history, context vector
    and scores match, and appending the next utterance continues exactly as the old code did."""
    model = load_model(legacy / "hdr")
    cache = HdrCache.load(legacy / "hdr_cache", model)
    want = expected["hdr_cache"]
    assert list(cache.texts) == want["texts"] and cache.max_turns == want["max_turns"]
    assert [t.speaker for t in cache.turns] == want["speakers"] and [t.index for t in cache.turns] == want["indices"]
    assert cache.next_index == want["next_index"]
    vector = cache.context_vectors()
    assert_close(vector, want["context_vector"], "cached context vector")
    assert_close(model.encode_responses(expected["responses"]) @ vector, want["scores"], "scores of the cache")
    cache.append(*want["next_turn"])
    assert_close(cache.context_vectors(), want["context_vector_after_next_turn"], "context vector after append")


def test_binary_index_loads_and_searches_identically(legacy, expected):
    """The old BinaryFlatIndex (explicit ids, texts) loads; stored codes, ids, and each query's top-k ids,
    Hamming distances and texts are identical."""
    index = BinaryFlatIndex.load(legacy / "binary_index")
    want = expected["binary_index"]
    assert len(index) == want["count"] and index.n_bits == expected["hash_bert"]["n_bits"]
    assert hex_codes(index.codes) == want["codes_hex"]
    assert index.ids.tolist() == [1000 + 7 * i for i in range(want["count"])]
    distances, ids = index.search(from_hex(expected["hash_bert"]["context_codes_hex"]), want["k"])
    assert ids.tolist() == want["ids"] and distances.tolist() == want["distances"]
    assert index.texts_of(ids) == want["texts"]
    assert type(load_index(legacy / "binary_index")).__name__ == "BinaryFlatIndex"


def test_float_index_loads_and_searches_identically(legacy, expected):
    """The old FloatIndex (texts, positional ids) loads; each query's top-k ids and texts are identical and its
    inner products match."""
    index = FloatIndex.load(legacy / "float_index")
    want = expected["float_index"]
    queries = np.asarray(expected["dual_encoder"]["context_vectors"], np.float32)
    scores, ids = index.search(queries, want["k"])
    assert ids.tolist() == want["ids"] and index.texts_of(ids) == want["texts"]
    assert_close(scores, want["scores"], "inner products")
    assert type(load_index(legacy / "float_index")).__name__ == "FloatIndex"
