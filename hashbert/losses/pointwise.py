"""Binary cross-entropy on labelled (context, response) pairs: the cross-encoders' loss.

References: SPEC "Models" (BERT: binary cross-entropy on the labelled pairs).
"""

from __future__ import annotations

import torch
from torch import nn


class PointwiseBceLoss(nn.Module):
    """Mean binary cross-entropy of pair logits against 0/1 labels.

    Args:
        positive_weight: weight of the positive pairs' terms (``k`` balances 1 positive against k negatives).
    """

    def __init__(self, positive_weight: float = 1.0) -> None:
        super().__init__()
        if positive_weight <= 0:
            raise ValueError(f"positive_weight must be > 0, got {positive_weight}")
        self.positive_weight = positive_weight

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Args: logits (B,) float, labels (B,) float 0/1. Returns: scalar mean loss."""
        weight = torch.tensor(self.positive_weight, dtype=logits.dtype, device=logits.device)
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=weight)

    def get_config_dict(self) -> dict[str, float]:
        return {"positive_weight": self.positive_weight}
