"""ONNX fixtures: the real all-MiniLM-L6-v2 towers saved as a DR-BERT, a Hash-BERT on it and a small 1-layer HDR
model, each exported once per session (the DR-BERT also in int8), and real Chit-Chat texts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hashbert.config import EncoderConfig, HashBertConfig, HashConfig, HdrConfig
from hashbert.data import read_rerank_groups


@pytest.fixture(scope="session")
def onnx_models(_base_dual_encoder, tmp_path_factory) -> dict[str, Path]:
    """``dual`` (fp32 + int8 export), ``hash`` (64 bits on ``dual``, fp32 export with its heads) and ``hdr`` (fp32
    export)."""
    from hashbert.models.hashing.hash_bert import HashBert, referencing
    from hashbert.models.hashing.tower_heads import HashHeads
    from hashbert.models.hdr.model import HdrModel
    from hashbert.models.onnx import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    dual = _base_dual_encoder.save(root / "dual")
    export_onnx(dual, "int8")
    torch.manual_seed(0)
    heads = HashHeads(HashConfig(n_bits=64, hidden=32), _base_dual_encoder.dim, decoders=False).eval()
    config = referencing(HashBertConfig(hash=HashConfig(n_bits=64, hidden=32), decoders=False), dual)
    hash_dir = HashBert(config, _base_dual_encoder, heads).save(root / "hash")
    export_onnx(hash_dir)  # the DR-BERT's towers again and the two head graphs
    config = HdrConfig(encoder=EncoderConfig(max_response_length=16, max_context_turns=4), utterance_length=16,
                       vectors_per_utterance=3, layers=1, heads=4, ffn_dim=256)
    hdr = HdrModel(config, _base_dual_encoder.context_encoder, _base_dual_encoder.response_encoder,
                   _base_dual_encoder.tokenizer)
    with torch.no_grad():  # the merge starts as the identity on the own vector: make the aggregator count
        hdr.aggregator.merge.weight.add_(0.05 * torch.randn_like(hdr.aggregator.merge.weight))
    hdr_dir = hdr.save(root / "hdr")
    export_onnx(hdr_dir)
    return {"dual": Path(dual), "hash": Path(hash_dir), "hdr": Path(hdr_dir)}


@pytest.fixture(scope="session")
def chitchat_texts(small_corpus) -> tuple[list[tuple[str, ...]], list[str]]:
    """Real test contexts (of every length, 1 to 4+ turns) and their candidate responses, short ones included."""
    groups = read_rerank_groups(small_corpus / "test.txt") + read_rerank_groups(small_corpus / "valid.txt")
    contexts = sorted({g.context for g in groups})[:40]
    responses = sorted({c for g in groups for c in g.candidates})[:60] + ["hi", "ok!"]
    return contexts, responses
