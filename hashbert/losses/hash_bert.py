"""HashBertLoss: weighted sum of similarity preservation, quantization and reconstruction.

References: Hash-BERT (arXiv 2012.09647) sec. 3.3.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hashbert.config import HashLossConfig
from hashbert.losses.quantization import QuantizationLoss
from hashbert.losses.reconstruction import ReconstructionLoss
from hashbert.losses.similarity import SimilarityPreservingLoss


class HashBertLoss(nn.Module):
    """``w_s * similarity + w_q * quantization + w_r * reconstruction``; a term with weight 0 is not computed.

    After each call, ``last_parts`` holds the unweighted value of every computed term (floats), for logging.

    Args:
        config: weights and the similarity form.
    """

    def __init__(self, config: HashLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or HashLossConfig()
        cfg = self.config
        self.similarity = SimilarityPreservingLoss(
            cfg.similarity, cfg.temperature, cfg.negative_target, cfg.teacher_temperature
        )
        self.quantization = QuantizationLoss()
        self.reconstruction = ReconstructionLoss()
        self.last_parts: dict[str, float] = {}

    def forward(
        self,
        context_hash: torch.Tensor,
        response_hash: torch.Tensor,
        context_vecs: torch.Tensor | None = None,
        response_vecs: torch.Tensor | None = None,
        context_decoded: torch.Tensor | None = None,
        response_decoded: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            context_hash, response_hash: (B, b) and (B + N, b) relaxed outputs, row i < B of each a true pair; the
                N responses after them are extra (hard) negatives shared by the batch.
            context_vecs, response_vecs: (B, dim) and (B + N, dim) dense vectors (distillation teacher,
                reconstruction targets).
            context_decoded, response_decoded: decoder outputs, shaped as the vectors (needed when the
                reconstruction weight > 0).
        Returns: scalar loss.
        """
        cfg = self.config
        parts: dict[str, torch.Tensor] = {}
        if cfg.similarity_weight:
            teacher = None
            if cfg.similarity == "distill":
                if context_vecs is None or response_vecs is None:
                    raise ValueError("the distill similarity needs the dense vectors (the teacher's scores)")
                teacher = context_vecs @ response_vecs.T  # (B, B+N) DR-BERT's scores
            parts["similarity"] = self.similarity(context_hash, response_hash, teacher)
        if cfg.quantization_weight:
            parts["quantization"] = self.quantization(context_hash, response_hash)
        if cfg.reconstruction_weight:
            if any(t is None for t in (context_vecs, response_vecs, context_decoded, response_decoded)):
                raise ValueError("reconstruction_weight > 0 needs the dense vectors and the decoder outputs")
            parts["reconstruction"] = 0.5 * (
                self.reconstruction(context_decoded, context_vecs)
                + self.reconstruction(response_decoded, response_vecs)
            )
        if not parts:
            raise ValueError("every loss weight is 0: nothing to train")
        weights = {"similarity": cfg.similarity_weight, "quantization": cfg.quantization_weight,
                   "reconstruction": cfg.reconstruction_weight}
        self.last_parts = {name: float(value.detach()) for name, value in parts.items()}
        return sum(weights[name] * value for name, value in parts.items())

    def get_config_dict(self) -> dict:
        return dataclasses.asdict(self.config)
