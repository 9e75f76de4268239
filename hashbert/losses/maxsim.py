"""Softmax cross-entropy over in-batch negatives on MaxSim (late-interaction) scores: HDR-BERT-ColBERT's loss.

References: Khattab & Zaharia, "ColBERT" (SIGIR 2020) sec. 3.3-3.4; HDR (ACM TOIS 2023) sec. 3.
"""

from __future__ import annotations

import torch
from torch import nn

from hashbert.losses.in_batch import InBatchSoftmaxLoss
from hashbert.models.hdr.aggregators import maxsim


class MaxSimInBatchLoss(InBatchSoftmaxLoss):
    """Each context must pick its own response, by ``maxsim`` score, among all responses of the batch.

    With one vector per side this is ``InBatchSoftmaxLoss`` (the dot product).

    Args:
        temperature: logits are ``maxsim / temperature``.
    """

    def forward(  # type: ignore[override]
        self, context_vecs: torch.Tensor, context_mask: torch.Tensor, response_vecs: torch.Tensor,
        response_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Args:
            context_vecs: (B, k, H), context_mask: (B, k) bool; response_vecs: (B, k', H), response_mask: (B, k')
            bool; row i of the responses is the positive of context i.
        Returns: scalar mean cross-entropy.
        """
        logits = maxsim(context_vecs, context_mask, response_vecs, response_mask) / self.temperature  # (B, B)
        targets = torch.arange(context_vecs.shape[0], device=context_vecs.device)
        return nn.functional.cross_entropy(logits, targets)

    def get_config_dict(self) -> dict[str, float]:
        return {"temperature": self.temperature}
