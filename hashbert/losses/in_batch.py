"""Softmax cross-entropy over in-batch negatives (DR-BERT's loss).

References: Lan et al. 2021 (DR-BERT) sec. 3.2; the multiple-negatives ranking loss of sentence-transformers.
"""

from __future__ import annotations

import torch
from torch import nn


class InBatchSoftmaxLoss(nn.Module):
    """Each context must pick its own response among all responses of the batch (plus optional hard negatives).

    Args:
        temperature: logits are ``scores / temperature``.
    """

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(
        self, context_vecs: torch.Tensor, response_vecs: torch.Tensor, hard_negative_vecs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args:
            context_vecs: (B, H); response_vecs: (B, H), row i is the positive of context i;
            hard_negative_vecs: (N, H) extra negatives shared by every context, or None.
        Returns: scalar mean cross-entropy.
        """
        candidates = response_vecs if hard_negative_vecs is None else torch.cat([response_vecs, hard_negative_vecs])
        logits = context_vecs @ candidates.T / self.temperature  # (B, B + N)
        targets = torch.arange(context_vecs.shape[0], device=context_vecs.device)
        return nn.functional.cross_entropy(logits, targets)

    def get_config_dict(self) -> dict[str, float]:
        return {"temperature": self.temperature}
