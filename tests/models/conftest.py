"""Model fixtures cheap enough to save and load many times: a 1-layer, 16-wide BERT with the real tokenizer.

The real all-MiniLM-L6-v2 (90 MB) makes each save/load take seconds; the damaged-artefact tests need
dozens of them, and what they test (checksums, headers, safetensors parsing, tokenizer size) does not
depend on the transformer's size.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face directory: a seeded random 1-layer BERT (hidden 16) and all-MiniLM's tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    from hashbert.models.encoder import load_tokenizer, resolve_model_dir

    tokenizer = load_tokenizer(resolve_model_dir("all-MiniLM-L6-v2"))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_dual_encoder(tiny_backbone_dir: Path):
    """A shared-tower DualEncoder on the tiny BERT (read-only: tests that alter it take a deepcopy)."""
    from hashbert.config import DualEncoderConfig, config_from_dict
    from hashbert.models.dual_encoder import DualEncoder

    encoder = {"model": str(tiny_backbone_dir), "max_context_length": 16, "max_response_length": 8}
    return DualEncoder.from_base(config_from_dict(DualEncoderConfig, {"encoder": encoder, "shared": True}))


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_dual_encoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_dual_encoder`` saved once (read-only: copy it before damaging it)."""
    return tiny_dual_encoder.save(tmp_path_factory.mktemp("tiny-saved") / "model")
