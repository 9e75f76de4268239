"""Score distillation: a student's in-batch score distribution pulled towards a teacher's.

``softmax_kl`` is the KL term both users share: the hashing heads' ``distill`` similarity form (codes
matching their DR-BERT) and ``ScoreDistillationLoss``, which HDR-BERT training adds to its in-batch
softmax (``train hdr --distill-weight``): the DR-BERT an HDR model starts from ranks each batch's responses
for each context from the whole 128-token history, and the KL term asks HDR's cached-utterance scores to
rank them alike, rather than only to pick the positive.

References: Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"; RocketQAv2 (EMNLP 2021)
sec. 3 for listwise distillation of a retriever's in-batch distribution.
"""

from __future__ import annotations

import torch
from torch import nn


def softmax_kl(teacher: torch.Tensor, student: torch.Tensor, teacher_temperature: float, temperature: float):
    """Mean over rows of KL(softmax(teacher / t_t) || softmax(student / t)). Args: (rows, columns) scores; the
    teacher's side gets no gradient."""
    target = torch.softmax(teacher.detach() / teacher_temperature, dim=-1)
    return nn.functional.kl_div(torch.log_softmax(student / temperature, dim=-1), target, reduction="batchmean")


class ScoreDistillationLoss(nn.Module):
    """Row-wise KL divergence from the teacher's in-batch score distribution to the student's.

    Args:
        temperature: the student's scores are divided by it (its own training temperature).
        teacher_temperature: the teacher's scores are divided by it (the teacher's training temperature).
    """

    def __init__(self, temperature: float = 0.05, teacher_temperature: float = 0.05) -> None:
        super().__init__()
        if temperature <= 0 or teacher_temperature <= 0:
            raise ValueError(f"temperatures must be > 0, got {temperature}, {teacher_temperature}")
        self.temperature, self.teacher_temperature = temperature, teacher_temperature

    def forward(self, student_scores: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
        """Args: (B, N) scores of the same B contexts against the same N responses. Returns: scalar."""
        if student_scores.shape != teacher_scores.shape:
            raise ValueError(f"score shapes differ: student {tuple(student_scores.shape)}, "
                             f"teacher {tuple(teacher_scores.shape)}")
        return softmax_kl(teacher_scores, student_scores, self.teacher_temperature, self.temperature)

    def get_config_dict(self) -> dict[str, float]:
        return {"temperature": self.temperature, "teacher_temperature": self.teacher_temperature}
