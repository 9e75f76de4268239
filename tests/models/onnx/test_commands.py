"""The runtime switch end to end: ``hashbert export onnx``, ``encode --runtime``, and a bundle served on ONNX."""

from __future__ import annotations

import numpy as np

from hashbert.cli import main
from hashbert.config.inference import InferenceConfig


def test_export_command_refuses_a_non_model_in_one_line(tmp_path, capsys):
    assert main(["export", "onnx", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_torch_models_go_to_the_device_asked_and_a_missing_gpu_is_one_error_line(onnx_models, tmp_path, capsys):
    import torch

    from hashbert.models.onnx.runtime import load_inference_model

    model = load_inference_model(onnx_models["dual"], InferenceConfig("torch", device="auto"))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert {p.device.type for p in model.parameters()} == {expected}
    if torch.cuda.is_available():
        return
    texts = tmp_path / "texts.txt"
    texts.write_text("hello there\n", encoding="utf-8")
    argv = ["encode", "--model", str(onnx_models["dual"]), "--input", str(texts), "--out", str(tmp_path / "v.npy"),
            "--runtime", "torch", "--device", "cuda"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: device 'cuda' requested but CUDA is not available"


def test_encode_runtimes_agree(onnx_models, chitchat_texts, tmp_path):
    _, responses = chitchat_texts
    texts = tmp_path / "responses.txt"
    texts.write_text("\n".join(responses[:40]) + "\n", encoding="utf-8")
    outputs = {}
    for runtime in ("torch", "onnx"):
        outputs[runtime] = tmp_path / f"{runtime}.npy"
        argv = ["encode", "--model", str(onnx_models["dual"]), "--input", str(texts), "--out", str(outputs[runtime]),
                "--runtime", runtime, "--onnx-threads", "1", "--no-progress"]
        assert main(argv) == 0
    np.testing.assert_allclose(np.load(outputs["onnx"]), np.load(outputs["torch"]), atol=2e-5)


def test_hdr_bundle_conversation_on_onnx_selects_as_torch(onnx_models, chitchat_texts, tmp_path):
    from hashbert.serving.bundle import build_bundle
    from hashbert.serving.retriever import Retriever

    contexts, responses = chitchat_texts
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(responses) + "\n", encoding="utf-8")
    build_bundle(onnx_models["hdr"], pool, tmp_path / "bundle", progress=False, inference=InferenceConfig("onnx"))
    retrievers = {r: Retriever.load(tmp_path / "bundle", 1, inference=InferenceConfig(r)) for r in ("torch", "onnx")}
    assert type(retrievers["onnx"].towers.encoder).__name__ == "OnnxHdrModel"
    conversations = {r: retriever.new_conversation() for r, retriever in retrievers.items()}
    for utterance in max(contexts, key=len)[:6]:
        for conversation in conversations.values():
            conversation.add(utterance, 0)
        ours, theirs = (retrievers[r].select_conversations([conversations[r]], 3)[0] for r in ("onnx", "torch"))
        assert [c.id for c in ours.candidates][:1] == [c.id for c in theirs.candidates][:1]
        np.testing.assert_allclose([c.score for c in ours.candidates], [c.score for c in theirs.candidates],
                                   atol=1e-4)
