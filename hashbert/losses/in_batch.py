"""Softmax cross-entropy over in-batch negatives (DR-BERT's loss).

References: Lan et al. 2021 (DR-BERT) sec. 3.2; the multiple-negatives ranking loss of sentence-transformers.
"""

from __future__ import annotations

import torch
from torch import nn


def own_negative_scores(context_vecs: torch.Tensor, negative_vecs: torch.Tensor) -> torch.Tensor:
    """(B, H) contexts and (B, m, H) negatives of each context alone -> (B, m) dot products, row i against its m."""
    return torch.einsum("bh,bmh->bm", context_vecs, negative_vecs)


class InBatchSoftmaxLoss(nn.Module):
    """Each context must pick its own response among all responses of the batch (plus optional hard negatives).

    Hard negatives come shared by the batch, ``(N, H)``, or per context, ``(B, m, H)`` (e.g. BM25's or the
    model's own top-k for that context, ANCE-style); both are mixed with the in-batch negatives in one softmax.

    Args:
        temperature: logits are ``scores / temperature``.
    """

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(
        self,
        context_vecs: torch.Tensor,
        response_vecs: torch.Tensor,
        hard_negative_vecs: torch.Tensor | None = None,
        context_negative_vecs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            context_vecs: (B, H); response_vecs: (B, H), row i is the positive of context i;
            hard_negative_vecs: (N, H) extra negatives shared by every context, or None;
            context_negative_vecs: (B, m, H) extra negatives of each context alone (row i's m are scored
                only against context i), or None.
        Returns: scalar mean cross-entropy.
        """
        candidates = response_vecs if hard_negative_vecs is None else torch.cat([response_vecs, hard_negative_vecs])
        logits = context_vecs @ candidates.T / self.temperature  # (B, B + N)
        if context_negative_vecs is not None:
            if context_negative_vecs.ndim != 3 or context_negative_vecs.shape[::2] != context_vecs.shape:
                raise ValueError(
                    f"context_negative_vecs must be (B, m, H) = ({context_vecs.shape[0]}, m, {context_vecs.shape[1]}),"
                    f" got {tuple(context_negative_vecs.shape)}"
                )
            own = own_negative_scores(context_vecs, context_negative_vecs) / self.temperature  # (B, m)
            logits = torch.cat([logits, own], dim=1)  # (B, B + N + m)
        targets = torch.arange(context_vecs.shape[0], device=context_vecs.device)
        return nn.functional.cross_entropy(logits, targets)

    def get_config_dict(self) -> dict[str, float]:
        return {"temperature": self.temperature}
