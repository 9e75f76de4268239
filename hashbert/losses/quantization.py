"""QuantizationLoss: pull continuous hash outputs toward the corners ±1 of the hypercube.

References: Hash-BERT (arXiv 2012.09647) sec. 3.3 (quantization loss ||h - sign(h)||).
"""

from __future__ import annotations

import torch
from torch import nn


class QuantizationLoss(nn.Module):
    """Mean over every output of ``(h - sign(h))^2 = (|h| - 1)^2``, over both sides.

    Zero exactly when every output is ±1, so the codes ``sign(h)`` lose nothing of what the
    similarity term saw in training.
    """

    def forward(self, context_hash: torch.Tensor, response_hash: torch.Tensor) -> torch.Tensor:
        """Args: context_hash: (B, b); response_hash: (B', b). Returns: scalar loss."""
        return 0.5 * (((context_hash.abs() - 1) ** 2).mean() + ((response_hash.abs() - 1) ** 2).mean())

    def get_config_dict(self) -> dict[str, float]:
        return {}
