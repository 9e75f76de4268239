"""The BERT-FP post-training model: ~15% masking of maskable tokens only, and the segments relevance head's start."""

from __future__ import annotations

import pytest
import torch

from hashbert.config import PostTrainConfig
from hashbert.models.cross.post_training import (
    NEXT,
    OTHER_DIALOGUE,
    SAME_DIALOGUE,
    SEGMENTS_OFFSET,
    SEGMENTS_SCALE,
    PostTrainingModel,
    mask_tokens,
)
from hashbert.models.encoder import load_backbone, load_tokenizer, resolve_model_dir


def test_mlm_masks_about_15_percent_of_maskable_tokens_only():
    torch.manual_seed(0)
    ids = torch.randint(1000, 2000, (64, 128))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -1] = False  # [CLS] and [SEP]
    masked, targets = mask_tokens(ids, maskable, 0.15, mask_id=103, vocab_size=30522)
    picked = targets != -100
    assert picked.float().sum() / maskable.sum() == pytest.approx(0.15, abs=0.01)
    assert not picked[:, 0].any() and not picked[:, -1].any()
    assert torch.equal(targets[picked], ids[picked]) and torch.equal(masked[~picked], ids[~picked])
    assert (masked[picked] == 103).float().mean() == pytest.approx(0.8, abs=0.03)


def test_segments_relevance_head_starts_as_a_signed_scaled_cosine():
    model_dir = resolve_model_dir("all-MiniLM-L6-v2")
    config = PostTrainConfig.from_flat(max_length=32, max_response_length=8, pooling="segments")
    model = PostTrainingModel(load_backbone(model_dir), load_tokenizer(model_dir), config)
    cosine = torch.tensor([0.9, 0.5])
    pair_vectors = cosine[:, None] * torch.full((2, 384), 1 / 384)  # product vectors summing to the cosine
    logits = model.relevance_head(pair_vectors)
    expected_next = SEGMENTS_SCALE * (cosine - SEGMENTS_OFFSET)
    assert torch.allclose(logits[:, NEXT], expected_next, atol=1e-5)
    assert torch.allclose(logits[:, OTHER_DIALOGUE], -expected_next, atol=1e-5)
    assert torch.allclose(logits[:, SAME_DIALOGUE], torch.zeros(2))
