"""BERT-FP's post-training loss: masked LM + 3-way utterance relevance classification.

References: Han et al. 2021, "Fine-grained Post-training for Improving Retrieval-based Dialogue Systems"
(BERT-FP) sec. 3.2; SPEC "Models" (BERT-FP).
"""

from __future__ import annotations

import torch
from torch import nn


class PostTrainingLoss(nn.Module):
    """``mlm cross-entropy + relevance_weight * relevance cross-entropy``; the parts are kept in ``last_parts``.

    Args:
        relevance_weight: weight of the 3-way classification term.
    """

    def __init__(self, relevance_weight: float = 1.0) -> None:
        super().__init__()
        if relevance_weight < 0:
            raise ValueError(f"relevance_weight must be >= 0, got {relevance_weight}")
        self.relevance_weight = relevance_weight
        self.last_parts: dict[str, float] = {}

    def forward(
        self, mlm_logits: torch.Tensor, mlm_targets: torch.Tensor, relevance_logits: torch.Tensor,
        relevance_targets: torch.Tensor,
    ) -> torch.Tensor:
        """Args:
            mlm_logits: (M, V) vocabulary logits at the M masked positions; mlm_targets: (M,) original token ids.
            relevance_logits: (B, 3); relevance_targets: (B,) 0 next / 1 same dialogue / 2 other dialogue.
        Returns: scalar loss (the MLM term is 0 for a batch with no masked token).
        """
        if mlm_targets.numel():
            mlm = nn.functional.cross_entropy(mlm_logits, mlm_targets)
        else:
            mlm = mlm_logits.sum() * 0.0
        relevance = nn.functional.cross_entropy(relevance_logits, relevance_targets)
        self.last_parts = {"mlm": float(mlm.detach()), "relevance": float(relevance.detach())}
        return mlm + self.relevance_weight * relevance

    def get_config_dict(self) -> dict[str, float]:
        return {"relevance_weight": self.relevance_weight}
