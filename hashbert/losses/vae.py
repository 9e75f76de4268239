"""VaeLoss: the seed's "VAELoss" rows: similarity preservation + quantization + decoder reconstruction MSE.

Despite the name there is no sampling and no prior (SPEC, BPR-HDR-BERT): the hash outputs are decoded
back to the dense vector and the squared error is penalised. The similarity and quantization terms
are Hash-BERT's ``HashBertLoss`` (its cosine reconstruction switched off); only the MSE is added here.

References: HDR + DSH (ACM TOIS 2023) sec. 4; Hash-BERT (arXiv 2012.09647) sec. 3.3.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hashbert.config import HashLossConfig
from hashbert.losses.hash_bert import HashBertLoss


class VaeLoss(nn.Module):
    """``HashBertLoss(similarity, quantization) + reconstruction_weight * MSE``; parts in ``last_parts``.

    The MSE of a pair of vectors is their squared L2 distance (summed over dimensions, averaged over the
    batch and the two sides), so it is on the scale of the other terms (at most 4 for unit vectors).

    Args:
        config: similarity form, temperature and weights (its ``reconstruction_weight`` is ignored).
        reconstruction_weight: weight of the MSE term.
    """

    def __init__(self, config: HashLossConfig, reconstruction_weight: float = 1.0) -> None:
        super().__init__()
        if reconstruction_weight < 0:
            raise ValueError(f"reconstruction_weight must be >= 0, got {reconstruction_weight}")
        self.hash_loss = HashBertLoss(dataclasses.replace(config, reconstruction_weight=0.0))
        self.reconstruction_weight = reconstruction_weight
        self.last_parts: dict[str, float] = {}

    def forward(
        self, context_hash: torch.Tensor, response_hash: torch.Tensor, context_vecs: torch.Tensor,
        response_vecs: torch.Tensor, context_decoded: torch.Tensor, response_decoded: torch.Tensor,
    ) -> torch.Tensor:
        """Args:
            context_hash, response_hash: (B, b) relaxed outputs, row i of each a true pair.
            context_vecs, response_vecs: (B, dim) dense vectors (targets, not differentiated).
            context_decoded, response_decoded: (B, dim) decoder outputs.
        Returns: scalar loss.
        """
        hashing = self.hash_loss(context_hash, response_hash)
        mse = 0.5 * (
            ((context_decoded - context_vecs.detach()) ** 2).sum(-1).mean()
            + ((response_decoded - response_vecs.detach()) ** 2).sum(-1).mean()
        )
        self.last_parts = {**self.hash_loss.last_parts, "reconstruction_mse": float(mse.detach())}
        return hashing + self.reconstruction_weight * mse

    def get_config_dict(self) -> dict:
        return {**self.hash_loss.get_config_dict(), "reconstruction_mse_weight": self.reconstruction_weight}
