"""ONNX Runtime against torch on real text: the same vectors (fp32), the same codes, int8 close enough."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.config.inference import InferenceConfig
from hashbert.models.onnx import load_inference_model

ONNX, INT8, TORCH = InferenceConfig("onnx"), InferenceConfig("onnx", "int8"), InferenceConfig("torch")
# int8 floor: per-channel dynamic quantization of the encoders' weight products gave a per-vector cosine of
# 0.96-0.99 against fp32 on real Chit-Chat text (min 0.963 over 300 responses of the HDR response tower); 0.95
# leaves room for other texts while failing per-tensor weights' 0.85-0.94 (the issue's measurement).
INT8_COSINE_FLOOR = 0.95


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) cosine of each row of a with the same row of b."""
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_dual_encoder_fp32_vectors_equal_torch(onnx_models, chitchat_texts):
    contexts, responses = chitchat_texts
    torch_model, onnx_model = (load_inference_model(onnx_models["dual"], i) for i in (TORCH, ONNX))
    assert type(onnx_model).__name__ == "OnnxDualEncoder"
    for encode in ("encode_contexts", "encode_responses"):
        texts = contexts if encode == "encode_contexts" else responses
        ours = getattr(onnx_model, encode)(texts, batch_size=32)
        theirs = getattr(torch_model, encode)(texts, batch_size=32)
        assert ours.shape == theirs.shape == (len(texts), 384)
        assert cosines(ours, theirs).min() >= 0.9999, encode


def test_hash_codes_equal_torch_except_at_the_threshold(onnx_models, chitchat_texts):
    contexts, _ = chitchat_texts
    torch_model, onnx_model = (load_inference_model(onnx_models["hash"], i) for i in (TORCH, ONNX))
    assert type(onnx_model.dual_encoder).__name__ == "OnnxDualEncoder"
    ours, theirs = onnx_model.context_hash_vectors(contexts), torch_model.context_hash_vectors(contexts)
    differ = np.sign(ours) != np.sign(theirs)
    assert not differ[np.abs(theirs) >= 1e-4].any()
    same = ~(np.abs(theirs) < 1e-4).any(1)  # rows without a value at the threshold: identical packed codes
    codes_ours, codes_theirs = onnx_model.encode_context_codes(contexts), torch_model.encode_context_codes(contexts)
    assert same.any()
    np.testing.assert_array_equal(codes_ours[same], codes_theirs[same])


def test_int8_vectors_keep_the_cosine_floor(onnx_models, chitchat_texts):
    contexts, responses = chitchat_texts
    fp32, int8 = (load_inference_model(onnx_models["dual"], i) for i in (ONNX, INT8))
    for ours, theirs in ((int8.encode_responses(responses), fp32.encode_responses(responses)),
                         (int8.encode_contexts(contexts), fp32.encode_contexts(contexts))):
        similarity = cosines(ours, theirs)
        assert similarity.min() >= INT8_COSINE_FLOOR
        assert similarity.mean() < 0.99999  # it is the int8 graph: not the fp32 one under another name


def test_hdr_fp32_vectors_and_cache_equal_torch(onnx_models, chitchat_texts):
    from hashbert.models.hdr.cache import HdrCache

    contexts, responses = chitchat_texts[0][:20], chitchat_texts[1][-30:]  # short responses included
    torch_model, onnx_model = (load_inference_model(onnx_models["hdr"], i) for i in (TORCH, ONNX))
    assert cosines(onnx_model.encode_contexts(contexts), torch_model.encode_contexts(contexts)).min() >= 0.9999
    assert cosines(onnx_model.encode_responses(responses), torch_model.encode_responses(responses)).min() >= 0.9999
    dialogue = max(contexts, key=len)
    assert len(dialogue[:6]) > 4  # more turns than the history bound (4): the oldest are dropped
    ours, theirs = HdrCache(onnx_model), HdrCache(torch_model)
    for utterance in dialogue[:6]:
        ours.append(utterance)
        theirs.append(utterance)
        assert cosines(ours.context_vectors()[None], theirs.context_vectors()[None])[0] >= 0.9999
    assert all(isinstance(turn.slots, np.ndarray) for turn in ours.turns)


def test_stale_or_missing_exports_are_refused_or_skipped(onnx_models, _base_dual_encoder, tmp_path, caplog):
    import copy
    import shutil

    import torch

    from hashbert.io import ArtefactError, resolve_artefact

    other = copy.deepcopy(_base_dual_encoder)
    with torch.no_grad():
        other.context_encoder.backbone.embeddings.word_embeddings.weight.mul_(1.01)
    other_dir = other.save(tmp_path / "other")
    with pytest.raises(ValueError, match="no ONNX export"):
        load_inference_model(other_dir, ONNX)
    assert type(load_inference_model(other_dir)).__name__ == "DualEncoder"  # auto without an export: torch
    shutil.copytree(resolve_artefact(onnx_models["dual"] / "onnx"), other_dir / "onnx")  # graphs of other weights
    with pytest.raises(ArtefactError, match="other weights"):
        load_inference_model(other_dir, ONNX)
    assert type(load_inference_model(other_dir)).__name__ == "DualEncoder"
    assert "other weights" in caplog.text
    with pytest.raises(ValueError, match="no int8 graphs"):
        load_inference_model(onnx_models["hdr"], INT8)


def test_hdr_int8_quantizes_the_aggregator_too_and_keeps_the_cosine_floor(onnx_models, chitchat_texts, tmp_path):
    import json
    import shutil

    from hashbert.io import resolve_artefact
    from hashbert.models.onnx import export_onnx

    hdr_dir = tmp_path / "hdr"
    shutil.copytree(resolve_artefact(onnx_models["hdr"]), hdr_dir, ignore=shutil.ignore_patterns("onnx", ".onnx*"))
    export_onnx(hdr_dir, "int8")
    manifest = json.loads((resolve_artefact(hdr_dir / "onnx") / "manifest.json").read_text())
    assert set(manifest["int8"]) == {"utterance", "response", "aggregator"}
    contexts = chitchat_texts[0][:20]
    fp32, int8 = (load_inference_model(hdr_dir, i) for i in (ONNX, INT8))
    assert int8.aggregator_graph.path.name == "aggregator.int8.onnx"
    assert fp32_weight_products(int8.aggregator_graph.path) == []  # key/value too, not only what the export names
    similarity = cosines(int8.encode_contexts(contexts), fp32.encode_contexts(contexts))
    assert similarity.min() >= INT8_COSINE_FLOOR and similarity.mean() < 0.99999


def fp32_weight_products(path) -> list[str]:
    """Names of the MatMul nodes of an ONNX file whose second input is a constant (an initializer, or computed
    from constants only): the weight products the int8 quantizer left in fp32."""
    import onnx

    graph = onnx.load(str(path)).graph
    constant = {tensor.name for tensor in graph.initializer}
    for node in graph.node:  # topological order: a node of constants only makes constants
        if all(not name or name in constant for name in node.input):
            constant.update(node.output)
    return [node.name for node in graph.node if node.op_type == "MatMul" and node.input[1] in constant]
