"""BprLoss: BPR's two objectives over relaxed codes.

* candidate generation: a margin ranking loss on code similarities ``S = H_c H_r^T / b``: the true
  response must beat every in-batch negative by ``margin`` (``S`` in [-1, 1], so the margin is a
  fraction of the code length);
* re-ranking: cross-entropy of the float context vector against the (relaxed) ±1 response codes,
  ``logits = z_c . h_r``, which is the score the asymmetric re-rank uses at search time.

References: Yamada et al., "Efficient Passage Retrieval with Hashing for Open-domain Question
Answering" (BPR, ACL 2021) sec. 3.2-3.3.
"""

from __future__ import annotations

import torch
from torch import nn


class BprLoss(nn.Module):
    """``candidate_weight * ranking(codes) + rerank_weight * CE(float context . codes)``; parts in ``last_parts``.

    Args:
        margin: ranking margin on ``S = h_c . h_r / b``.
        candidate_weight: weight of the ranking loss.
        rerank_weight: weight of the re-rank cross-entropy.
    """

    def __init__(self, margin: float = 0.1, candidate_weight: float = 1.0, rerank_weight: float = 1.0) -> None:
        super().__init__()
        if margin < 0 or candidate_weight < 0 or rerank_weight < 0 or not candidate_weight + rerank_weight:
            raise ValueError(f"bad BPR loss settings: margin={margin}, weights={candidate_weight}, {rerank_weight}")
        self.margin, self.candidate_weight, self.rerank_weight = margin, candidate_weight, rerank_weight
        self.last_parts: dict[str, float] = {}

    def forward(
        self, context_float: torch.Tensor, context_hash: torch.Tensor, response_hash: torch.Tensor
    ) -> torch.Tensor:
        """Args:
            context_float: (B, b) float context vectors (the hashing layer's raw output);
            context_hash, response_hash: (B, b) relaxed codes, row i of each a true pair.
        Returns: scalar loss.
        """
        batch, n_bits = context_hash.shape
        targets = torch.arange(batch, device=context_hash.device)
        s = context_hash @ response_hash.T / n_bits  # (B, B)
        off = ~torch.eye(batch, dtype=torch.bool, device=s.device)
        candidate = torch.relu(self.margin - (s.diagonal()[:, None] - s))[off].mean()
        rerank = nn.functional.cross_entropy(context_float @ response_hash.T, targets)
        self.last_parts = {"candidate": float(candidate.detach()), "rerank": float(rerank.detach())}
        return self.candidate_weight * candidate + self.rerank_weight * rerank

    def get_config_dict(self) -> dict[str, float]:
        return {"margin": self.margin, "candidate_weight": self.candidate_weight, "rerank_weight": self.rerank_weight}
