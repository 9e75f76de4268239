"""Bundles on the real encoder over ~300 real responses: search equals brute force over the model's own scores
(float: inner product; codes: Hamming, ties aware, and both re-ranks), a resumed build equals an uninterrupted
one, an add equals a build over the concatenated file, a damaged bundle is refused, the model is self-contained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hashbert.codes import hamming_distance, sign_dot
from hashbert.config import HashBertConfig, HashConfig
from hashbert.data import read_rerank_groups
from hashbert.index import load_index
from hashbert.io import ArtefactError, resolve_artefact, sha256_file
from hashbert.models.hashing.hash_bert import HashBert, referencing
from hashbert.models.hashing.tower_heads import HashHeads
from hashbert.models.registry import load_model
from hashbert.serving import bundle as bundle_module
from hashbert.serving.bundle import add_to_bundle, build_bundle, read_manifest
from hashbert.serving.retriever import Retriever

POOL = 300
K = 10
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(_base_dual_encoder):
    """One thread: the root fixture asks for two, which oversubscribes a shared two-core machine badly."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def work(module_tmp) -> Path:
    return module_tmp


@pytest.fixture(scope="module")
def pool_file(small_corpus, work) -> Path:
    lines = (small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines()[:POOL]
    path = work / "responses.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def contexts(small_corpus) -> list[tuple[str, ...]]:
    return [g.context for g in read_rerank_groups(small_corpus / "test.txt")[:6]]


@pytest.fixture(scope="module")
def dual_dir(_base_dual_encoder, work) -> Path:
    return _base_dual_encoder.save(work / "dual" / "model")


@pytest.fixture(scope="module")
def hash_dir(_base_dual_encoder, dual_dir, work) -> Path:
    torch.manual_seed(0)
    hash_config = HashConfig(n_bits=64, hidden=64)
    heads = HashHeads(hash_config, _base_dual_encoder.dim, decoders=True)
    config = referencing(HashBertConfig(hash=hash_config, in_dim=_base_dual_encoder.dim), dual_dir)
    return HashBert(config, _base_dual_encoder, heads).save(work / "hash" / "model")


@pytest.fixture(scope="module")
def float_bundle(dual_dir, pool_file, work) -> Path:
    build_bundle(dual_dir, pool_file, work / "float-bundle", chunk_size=64, progress=False)
    return work / "float-bundle"


@pytest.fixture(scope="module")
def hash_bundle(hash_dir, pool_file, work) -> Path:
    build_bundle(hash_dir, pool_file, work / "hash-bundle", float_vectors=True, chunk_size=64, progress=False)
    return work / "hash-bundle"


def _check_float_topk(selections, brute: np.ndarray) -> None:
    """Tie-aware: the k best scores are brute force's, and every returned id really has its score."""
    for selection, row in zip(selections, brute, strict=True):
        ids = np.array([c.id for c in selection.candidates])
        scores = np.array([c.score for c in selection.candidates])
        np.testing.assert_allclose(scores, np.sort(row)[::-1][: len(ids)], atol=1e-5)
        np.testing.assert_allclose(row[ids], scores, atol=1e-5)
        assert len(set(ids.tolist())) == len(ids) == K


def test_float_bundle_equals_exact_inner_product(float_bundle, dual_dir, pool_file, contexts):
    retriever = Retriever.load(float_bundle, threads=1)
    assert retriever.manifest.scoring == "inner_product" and retriever.manifest.pool_size == POOL
    selections = retriever.select_batch(contexts, K)
    model = load_model(dual_dir)
    pool = pool_file.read_text(encoding="utf-8").splitlines()
    _check_float_topk(selections, model.encode_contexts(contexts) @ model.encode_responses(pool).T)
    assert [c.text for c in selections[0].candidates] == [pool[c.id] for c in selections[0].candidates]
    single = retriever.select(contexts[1], K)
    assert [c.id for c in single.candidates] == [c.id for c in selections[1].candidates]
    assert set(single.timings_ms) == {"encode", "aggregate", "search", "rerank"} and single.timings_ms["rerank"] == 0


def test_hamming_search_equals_brute_force_with_ties(hash_bundle, hash_dir, pool_file, contexts):
    retriever = Retriever.load(hash_bundle, threads=1, rerank_candidates=0)
    selections = retriever.select_batch(contexts, K)
    model = load_model(hash_dir)
    pool = pool_file.read_text(encoding="utf-8").splitlines()
    brute = hamming_distance(model.encode_context_codes(contexts), model.encode_response_codes(pool))  # (nq, N)
    for selection, row in zip(selections, brute, strict=True):
        ids = np.array([c.id for c in selection.candidates])
        distances = -np.array([c.score for c in selection.candidates])
        expected = np.sort(row)[:K]
        np.testing.assert_array_equal(distances, expected)
        kth = expected[-1]
        assert set(np.flatnonzero(row < kth)) == set(ids[distances < kth])
        np.testing.assert_array_equal(row[ids], distances)


def test_code_and_vector_reranks_equal_brute_force(hash_bundle, hash_dir, pool_file, contexts):
    model = load_model(hash_dir)
    pool = pool_file.read_text(encoding="utf-8").splitlines()
    context_vecs = model.dual_encoder.encode_contexts(contexts)
    response_vecs = model.dual_encoder.encode_responses(pool)
    codes = model.encode_response_codes(pool)
    by_vectors = Retriever.load(hash_bundle, threads=1)  # l = 1000 >= pool: the whole pool is re-ranked
    assert by_vectors.manifest.scoring == "hamming_vectors_rerank"
    _check_float_topk(by_vectors.select_batch(contexts, K), context_vecs @ response_vecs.T)
    loaded = bundle_module.load_bundle(hash_bundle)
    no_vectors = Retriever(bundle_module.LoadedBundle(loaded.root, loaded.manifest, loaded.towers, loaded.index, None))
    brute = sign_dot(model.context_hash_vectors(contexts), codes, model.n_bits)
    _check_float_topk(no_vectors.select_batch(contexts, K), brute)


def test_resumed_build_equals_uninterrupted(hash_dir, pool_file, hash_bundle, work, monkeypatch):
    out, calls = work / "resumed", []
    real = bundle_module._encode_chunk

    def failing(towers, responses):
        calls.append(len(responses))
        if len(calls) == 3:
            raise RuntimeError("killed in chunk 2")
        return real(towers, responses)

    monkeypatch.setattr(bundle_module, "_encode_chunk", failing)
    with pytest.raises(RuntimeError, match="chunk 2"):
        build_bundle(hash_dir, pool_file, out, float_vectors=True, chunk_size=64, progress=False)
    assert sorted(p.name for p in (work / "resumed.build").glob("chunk-*")) == ["chunk-00000.npy", "chunk-00001.npy"]
    calls.clear()
    monkeypatch.setattr(bundle_module, "_encode_chunk", lambda t, r: calls.append(len(r)) or real(t, r))
    manifest = build_bundle(hash_dir, pool_file, out, float_vectors=True, chunk_size=64, progress=False)
    assert calls == [64, 64, 44] and not (work / "resumed.build").exists()
    _assert_same_bundle(out, hash_bundle)
    assert manifest.model_fingerprint == sha256_file(resolve_artefact(hash_dir) / "checksums.json")


def _assert_same_bundle(a: Path, b: Path) -> None:
    index_a, index_b = load_index(a / "index"), load_index(b / "index")
    np.testing.assert_array_equal(index_a._rows(), index_b._rows())
    assert index_a.texts_of(index_a.ids[None]) == index_b.texts_of(index_b.ids[None])
    if (b / "vectors.npy").exists():
        np.testing.assert_array_equal(np.load(a / "vectors.npy"), np.load(b / "vectors.npy"))
    ma, mb = read_manifest(a), read_manifest(b)
    assert (ma.pool_size, ma.n_bits, ma.scoring, ma.model_fingerprint) == (mb.pool_size, mb.n_bits, mb.scoring,
                                                                           mb.model_fingerprint)


def test_add_equals_a_build_over_the_concatenated_file(dual_dir, pool_file, work):
    lines = pool_file.read_text(encoding="utf-8").splitlines()[:150]
    first, second, both = work / "first.txt", work / "second.txt", work / "both.txt"
    first.write_text("\n".join(lines[:100]) + "\n", encoding="utf-8")
    second.write_text("\n".join(lines[100:]) + "\n", encoding="utf-8")
    both.write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_bundle(dual_dir, first, work / "grown", chunk_size=50, progress=False)
    manifest = add_to_bundle(work / "grown", second, chunk_size=50, progress=False)
    build_bundle(dual_dir, both, work / "whole", chunk_size=50, progress=False)
    assert manifest.pool_size == 150 and manifest.revision == 2
    _assert_same_bundle(work / "grown", work / "whole")
    selection = Retriever.load(work / "grown", threads=1).select([lines[120]], 3)
    assert all(0 <= c.id < 150 for c in selection.candidates)


@pytest.mark.parametrize("name", ["manifest.json", "index/data.npy", "vectors.npy", "model/model.safetensors"])
def test_damaged_bundle_is_refused(hash_bundle, tmp_path, name):
    copy = tmp_path / "bundle"
    shutil.copytree(resolve_artefact(hash_bundle), copy)
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="checksum mismatch"):
        Retriever.load(copy)
    if name == "manifest.json":
        with pytest.raises(ArtefactError):
            read_manifest(copy)


def test_bundle_model_is_self_contained(hash_bundle, hash_dir, dual_dir):
    header = json.loads((hash_bundle / "model" / "config.json").read_text(encoding="utf-8"))
    assert header["config"]["encoder_embedded"] and header["config"]["encoder_path"] == "dual_encoder"
    copied = hash_bundle / "model" / "dual_encoder" / "checksums.json"
    assert sha256_file(copied) == sha256_file(resolve_artefact(dual_dir) / "checksums.json")
    assert load_model(hash_bundle / "model").config.encoder_path == "dual_encoder"


def test_float_vectors_are_refused_for_a_float_model(dual_dir, pool_file, tmp_path):
    with pytest.raises(ValueError, match="float-vectors"):
        build_bundle(dual_dir, pool_file, tmp_path / "b", float_vectors=True, progress=False)


def test_a_model_naming_no_encoder_directory_is_refused_not_the_working_directory_copied(
    _base_dual_encoder, pool_file, tmp_path, monkeypatch
):
    heads = HashHeads(HashConfig(n_bits=64, hidden=64), _base_dual_encoder.dim, decoders=True)
    unreferenced = HashBert(HashBertConfig(hash=HashConfig(n_bits=64, hidden=64), in_dim=_base_dual_encoder.dim),
                            _base_dual_encoder, heads).save(tmp_path / "hash")
    monkeypatch.chdir(tmp_path)  # "" would resolve here
    with pytest.raises(ArtefactError, match="names no encoder directory"):
        build_bundle(unreferenced, pool_file, tmp_path / "bundle", progress=False)
    assert not (tmp_path / "bundle").exists()
