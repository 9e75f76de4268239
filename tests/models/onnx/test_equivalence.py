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
    assert type(onnx_model.heads).__name__ == "OnnxHashHeads"  # the heads' graphs: no torch left in a query
    ours, theirs = onnx_model.context_hash_vectors(contexts), torch_model.context_hash_vectors(contexts)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
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


def test_hash_heads_graphs_follow_the_heads_weights(onnx_models, _base_dual_encoder, tmp_path, caplog):
    """Heads retrained on the same DR-BERT make the head graphs stale; an export without head graphs (made before
    them) keeps the heads in torch; the same vectors through the two head graphs give the torch heads' codes."""
    import shutil

    import torch

    from hashbert.io import ArtefactError, resolve_artefact
    from hashbert.models.hashing.hash_bert import HashBert

    model = HashBert.load(onnx_models["hash"])
    with torch.no_grad():
        model.heads.context_head.mlp[0].weight.mul_(-1.0)
    retrained = model.save(tmp_path / "retrained")
    shutil.copytree(resolve_artefact(onnx_models["hash"] / "onnx"), retrained / "onnx")
    with pytest.raises(ArtefactError, match="other weights"):
        load_inference_model(retrained, ONNX)
    assert type(load_inference_model(retrained).heads).__name__ == "HashHeads"  # auto: torch, with a warning
    assert "other weights" in caplog.text

    towers_only = model.save(tmp_path / "towers-only")
    shutil.copytree(resolve_artefact(onnx_models["dual"] / "onnx"), towers_only / "onnx")  # the DR-BERT's export
    loaded = load_inference_model(towers_only, ONNX)
    assert type(loaded.dual_encoder).__name__ == "OnnxDualEncoder"
    assert type(loaded.heads).__name__ == "HashHeads"

    torch_heads, onnx_heads = HashBert.load(onnx_models["hash"]).heads, load_inference_model(onnx_models["hash"]).heads
    vectors = _base_dual_encoder.encode_responses(["hi there", "what do you do for fun?", "ok!"])
    for side in ("context", "response"):
        ours = getattr(onnx_heads, f"{side}_hash_vectors")(vectors)
        theirs = getattr(torch_heads, f"{side}_hash_vectors")(vectors)
        assert ours.shape == (3, 64)
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


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


def test_hdr_hash_heads_run_on_onnx_and_lsh_stays_numpy(onnx_models, chitchat_texts, tmp_path):
    """HDR + trained heads: the export adds the head graphs, and the Hamming scores equal torch's; HDR + LSH: the
    towers run on ONNX, the hyperplanes stay a NumPy product (nothing to export)."""
    import shutil

    import torch

    from hashbert.config import HashConfig
    from hashbert.io import resolve_artefact
    from hashbert.models.hdr.hashing import heads_model, save_hdr_lsh
    from hashbert.models.hdr.model import HdrModel
    from hashbert.models.onnx import export_onnx

    torch.manual_seed(0)
    model = heads_model(HdrModel.load(onnx_models["hdr"]), onnx_models["hdr"], HashConfig(n_bits=64, hidden=32),
                        decoders=False, recipe="bpr")
    export_onnx(model.save(tmp_path / "heads"))
    torch_model, onnx_model = (load_inference_model(tmp_path / "heads", i) for i in (TORCH, ONNX))
    assert type(onnx_model.hasher).__name__ == "OnnxHashHeads"
    assert type(onnx_model.hdr).__name__ == "OnnxHdrModel"
    groups = rerank_groups_of(chitchat_texts)
    ours, theirs = onnx_model.rerank_scores(groups), torch_model.rerank_scores(groups)
    differences = [np.abs(a - b).max() for a, b in zip(ours, theirs, strict=True)]
    assert max(differences) <= 1  # -Hamming: a bit whose value sits at the threshold may flip, no more
    assert sum(d == 0 for d in differences) >= 8
    save_hdr_lsh(onnx_models["hdr"], 64, tmp_path / "lsh")
    # the export of an LSH model is its HDR's (the same source fingerprint): copied rather than traced again
    shutil.copytree(resolve_artefact(onnx_models["hdr"] / "onnx"), tmp_path / "lsh" / "onnx")
    lsh = load_inference_model(tmp_path / "lsh", ONNX)
    assert type(lsh.hasher).__name__ == "RandomHyperplaneLSH" and type(lsh.hdr).__name__ == "OnnxHdrModel"


def rerank_groups_of(chitchat_texts):
    """Ten re-rank groups of the real texts: a context and six candidates each."""
    from hashbert.data import RerankGroup

    contexts, responses = chitchat_texts
    labels = (1, 0, 0, 0, 0, 0)
    return [RerankGroup(contexts[i], tuple(responses[6 * i : 6 * i + 6]), labels, i + 1) for i in range(10)]
