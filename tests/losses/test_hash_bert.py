"""HashBertLoss: the weighted sum of its parts, the switched-off parts, and its errors."""

from __future__ import annotations

import pytest
import torch

from hashbert.config import HashLossConfig
from hashbert.losses.hash_bert import HashBertLoss


def test_hash_bert_loss_weights_parts_and_switches():
    torch.manual_seed(1)
    h_c, h_r, v_c, v_r = (torch.randn(6, 64).tanh(), torch.randn(6, 64).tanh(), torch.randn(6, 8), torch.randn(6, 8))
    loss = HashBertLoss(HashLossConfig(similarity="softmax", quantization_weight=0.5, reconstruction_weight=2.0))
    total = loss(h_c, h_r, v_c, v_r, v_c * 2, -v_r)
    parts = loss.last_parts
    assert set(parts) == {"similarity", "quantization", "reconstruction"}
    weighted = parts["similarity"] + 0.5 * parts["quantization"] + 2.0 * parts["reconstruction"]
    assert float(total) == pytest.approx(weighted)
    assert parts["reconstruction"] == pytest.approx(0.5 * (0.0 + 2.0), abs=1e-5)
    no_kl = HashBertLoss(HashLossConfig(similarity="softmax", reconstruction_weight=0.0, quantization_weight=0.0))
    no_kl(h_c, h_r)
    assert set(no_kl.last_parts) == {"similarity"}
    with pytest.raises(ValueError, match="dense vectors"):
        HashBertLoss(HashLossConfig(similarity="distill", reconstruction_weight=0.0))(h_c, h_r)
    with pytest.raises(ValueError, match="decoder outputs"):
        loss(h_c, h_r)
    with pytest.raises(ValueError, match="nothing to train"):
        HashBertLoss(HashLossConfig(similarity_weight=0, quantization_weight=0, reconstruction_weight=0))(h_c, h_r)
