"""VaeLoss: Hash-BERT's similarity and quantization terms plus the decoder's squared error."""

from __future__ import annotations

import torch

from hashbert.config import HashLossConfig
from hashbert.losses.hash_bert import HashBertLoss
from hashbert.losses.vae import VaeLoss


def test_vae_loss_adds_squared_error_to_the_hash_terms():
    h_c, h_r = torch.tensor([[1.0, -1.0], [0.5, 0.5]]), torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    dense = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    decoded = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # squared errors 1 and 0 on the context side
    config = HashLossConfig(quantization_weight=0.5, reconstruction_weight=7.0)  # 7.0 is ignored: MSE replaces it
    loss = VaeLoss(config, reconstruction_weight=2.0)
    hash_terms = HashBertLoss(HashLossConfig(quantization_weight=0.5, reconstruction_weight=0.0))(h_c, h_r)
    expected = hash_terms + 2.0 * 0.5 * 0.5
    torch.testing.assert_close(loss(h_c, h_r, dense, dense, decoded, dense), expected)
    assert set(loss.last_parts) == {"similarity", "quantization", "reconstruction_mse"}
