"""SimilarityPreservingLoss: make the context-by-response matrix of hash outputs identify the true pairs.

With ``S_ij = cos(h_c_i, h_r_j)`` (B x B, or B x (B + N) with N extra negatives after the paired responses;
for ±1 outputs this is ``h_c . h_r / b = 1 - 2 d_H / b``, d_H the Hamming distance, and using the cosine
elsewhere makes the term blind to the outputs' scale, which the quantization term sets), four forms:

* ``distill``: make each row (and column) of ``softmax(S / temperature)`` match the dense model's
  ``softmax(x_c . x_r / teacher_temperature)`` (KL divergence): preserves the DR-BERT's whole
  in-batch ranking instead of only its labels, so the heads cannot drift into a new, weaker
  retrieval model fitted to the training pairs.
* ``softmax``: row-wise cross-entropy of ``S / temperature``: each context must pick its own response
  among the batch, as DR-BERT's own loss does. Only the *ranking* of each row matters, so nothing
  rewards pushing every pair to the same distance.
* ``mse``: ``S_ii -> 1`` and ``S_ij -> negative_target`` (0 or -1), the diagonal mean and the
  off-diagonal mean weighted equally.
* ``frobenius``: the literal ``||H_c H_r^T - b I||^2 / (b^2 B^2)`` (target ``negative_target`` off the
  diagonal). Its B^2 - B off-diagonal terms outweigh the B diagonal ones, so near-constant outputs
  that zero the off-diagonal similarity are a cheap optimum: collapse (SPEC, Hash-BERT).

References: Hash-BERT (arXiv 2012.09647) sec. 3.3 (similarity preservation); DR-BERT (arXiv 2110.06612) sec. 3.2.
"""

from __future__ import annotations

import torch
from torch import nn

from hashbert.config import SIMILARITY_FORMS
from hashbert.losses.distillation import softmax_kl


class SimilarityPreservingLoss(nn.Module):
    """Similarity preservation on in-batch pairs.

    Args:
        form: ``distill``, ``softmax``, ``mse`` or ``frobenius`` (see the module docstring).
        temperature: softmax and distill forms: logits are ``S / temperature``.
        negative_target: mse/frobenius forms: the target of ``S_ij`` for i != j (0 or -1).
        teacher_temperature: distill form: the dense scores are divided by it (DR-BERT's own temperature).
    """

    def __init__(
        self, form: str = "softmax", temperature: float = 0.05, negative_target: float = 0.0,
        teacher_temperature: float = 0.05,
    ) -> None:
        super().__init__()
        if form not in SIMILARITY_FORMS:
            raise ValueError(f"form must be one of {SIMILARITY_FORMS}, got {form!r}")
        if temperature <= 0 or teacher_temperature <= 0:
            raise ValueError(f"temperatures must be > 0, got {temperature}, {teacher_temperature}")
        self.form, self.temperature, self.negative_target = form, temperature, negative_target
        self.teacher_temperature = teacher_temperature

    def forward(
        self, context_hash: torch.Tensor, response_hash: torch.Tensor, teacher_scores: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args:
            context_hash: (B, b) relaxed context outputs.
            response_hash: (B + N, b): row i < B pairs with context i; the N rows after them are extra negatives
                (hard negatives mined for the batch's contexts), shared by every context.
            teacher_scores: (B, B + N) dense scores ``context_vecs @ response_vecs.T`` (``distill`` form only).
        Returns: scalar loss.
        """
        batch = context_hash.shape[0]
        if response_hash.shape[0] < batch:
            raise ValueError(f"need a response per context: {batch} contexts, {response_hash.shape[0]} responses")
        # Cosine, which is h_c . h_r / b exactly at the corners (±1 outputs) and ignores the outputs' scale
        # elsewhere: at initialisation a random projection's cosines already track the dense ones.
        unit_c, unit_r = nn.functional.normalize(context_hash, dim=-1), nn.functional.normalize(response_hash, dim=-1)
        s = unit_c @ unit_r.T  # (B, B+N)
        eye = torch.eye(batch, s.shape[1], dtype=torch.bool, device=s.device)  # the true pairs
        if self.form == "softmax":
            return nn.functional.cross_entropy(s / self.temperature, torch.arange(batch, device=s.device))
        if self.form == "distill":
            if teacher_scores is None:
                raise ValueError("the distill form needs teacher_scores (the dense model's in-batch scores)")
            # rows over every response; columns only for the B paired responses (an extra negative's own
            # context is not in the batch, so its column has no target to match)
            t, t_teacher = self.temperature, self.teacher_temperature
            rows = softmax_kl(teacher_scores, s, t_teacher, t)
            return 0.5 * (rows + softmax_kl(teacher_scores[:, :batch].T, s[:, :batch].T, t_teacher, t))
        target = torch.where(eye, torch.ones_like(s), torch.full_like(s, self.negative_target))
        squared = (s - target) ** 2  # (B, B+N)
        if self.form == "frobenius":
            return squared.mean()
        return 0.5 * (squared[eye].mean() + squared[~eye].mean())

    def get_config_dict(self) -> dict[str, float | str]:
        return {"form": self.form, "temperature": self.temperature, "negative_target": self.negative_target,
                "teacher_temperature": self.teacher_temperature}
