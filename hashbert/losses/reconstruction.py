"""ReconstructionLoss: the decoder's output should point where the dense vector points (the seed's "kl").

References: Hash-BERT (arXiv 2012.09647) sec. 3.3 (reconstruction / semantic preservation term).
"""

from __future__ import annotations

import torch
from torch import nn


class ReconstructionLoss(nn.Module):
    """Mean ``1 - cosine(decoded, dense)``.

    Args:
        detach_target: stop gradients into the dense vectors, so that an encoder being fine-tuned
            with the heads is not pulled toward vectors that are merely easy to reconstruct.
    """

    def __init__(self, detach_target: bool = True) -> None:
        super().__init__()
        self.detach_target = detach_target

    def forward(self, decoded: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """Args: decoded: (B, dim) decoder outputs; dense: (B, dim) the vectors they encode. Returns: scalar."""
        target = dense.detach() if self.detach_target else dense
        return (1 - nn.functional.cosine_similarity(decoded, target, dim=-1)).mean()

    def get_config_dict(self) -> dict[str, bool]:
        return {"detach_target": self.detach_target}
