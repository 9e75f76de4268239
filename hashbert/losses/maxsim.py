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
        response_mask: torch.Tensor, negative_vecs: torch.Tensor | None = None,
        negative_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            context_vecs: (B, k, H), context_mask: (B, k) bool; response_vecs: (B, k', H), response_mask: (B, k')
            bool; row i of the responses is the positive of context i.
            negative_vecs: (B, m, k', H) extra negatives of each context alone (hard negatives), or None;
            negative_mask: (B, m, k') bool, with them.
        Returns: scalar mean cross-entropy.
        """
        logits = maxsim(context_vecs, context_mask, response_vecs, response_mask) / self.temperature  # (B, B)
        if negative_vecs is not None:
            batch, m = negative_vecs.shape[:2]
            every = maxsim(context_vecs, context_mask, negative_vecs.flatten(0, 1), negative_mask.flatten(0, 1))
            own = every.view(batch, batch, m)[torch.arange(batch), torch.arange(batch)]  # (B, m): context i's own
            logits = torch.cat([logits, own / self.temperature], dim=1)  # (B, B + m)
        targets = torch.arange(context_vecs.shape[0], device=context_vecs.device)
        return nn.functional.cross_entropy(logits, targets)

    def get_config_dict(self) -> dict[str, float]:
        return {"temperature": self.temperature}
