"""A trained DR-BERT as a teacher: its in-batch scores of every training pair, for a listwise distillation term.

``train hdr --distill-weight`` pulls HDR's in-batch score distribution towards the DR-BERT it starts from;
``train dual --teacher`` pulls a DR-BERT trained with hard negatives towards an in-batch-only one, so that what
the hard negatives teach (the order among on-topic candidates) does not cost the ranking against random ones
that the in-batch model already has. Either way the teacher's vectors of every training pair are encoded once
(``data.vector_cache``) and a batch's (B, B) teacher scores are one product of cached rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from hashbert.config import DataConfig, TrainConfig, config_to_dict
from hashbert.losses.distillation import ScoreDistillationLoss
from hashbert.losses.in_batch import own_negative_scores
from hashbert.training.hard_negatives import IndexedPair
from hashbert.training.trainer import resolve_device


class TeacherScores:
    """A DR-BERT's vectors of every training pair, encoded once (cached), and the KL term towards its scores.

    Args:
        dual_encoder: the DR-BERT directory; pairs: the run's training pairs (row i = pair i).
        data_files, params: what selected the pairs (the cache's key, with the model's checksums).
        cache_dir: where the vectors are cached; weight: the KL term's weight; temperature: the student's;
        progress: a progress bar while encoding.
    """

    def __init__(self, dual_encoder: str, pairs: list, data_files: dict, params: dict, cache_dir: Path,
                 weight: float, temperature: float, device: torch.device, progress: bool = True,
                 scores_negatives: bool = False) -> None:
        from hashbert.data.vector_cache import pair_vectors
        from hashbert.models.dual_encoder import DualEncoder

        dual = DualEncoder.load(dual_encoder).to(device).eval()
        contexts, responses = pair_vectors(dual, dual_encoder, pairs, data_files, params, cache_dir, progress=progress)
        self.contexts = torch.from_numpy(contexts).to(device)
        self.responses = torch.from_numpy(responses).to(device)
        self.weight = weight
        self.loss = ScoreDistillationLoss(temperature, dual.config.temperature)
        # Mined negatives change every step, so scoring them needs the response tower itself (frozen).
        self.response_tower = dual.response_encoder.requires_grad_(False) if scores_negatives else None

    @classmethod
    def for_run(cls, dual_encoder: str, pairs: list, data: DataConfig, max_turns: int, train: TrainConfig,
                out_dir: Path, weight: float, temperature: float, scores_negatives: bool = False) -> TeacherScores:
        """The teacher of a training run (``train dual --teacher``, ``train hdr --distill-weight``): its vectors
        cached in ``out_dir/cache`` under what selected the pairs (the data settings, history bound and seed)."""
        params = {"data": config_to_dict(data), "max_turns": max_turns, "seed": train.seed}
        return cls(dual_encoder, pairs, {"train": data.train}, params, Path(out_dir) / "cache", weight, temperature,
                   resolve_device(train.device), train.progress, scores_negatives)

    def scores(self, pair_index: torch.Tensor) -> torch.Tensor:
        """(B, B) teacher scores of the pairs ``pair_index`` (B,): context i against response j."""
        return self.contexts[pair_index] @ self.responses[pair_index].T

    @torch.no_grad()
    def negative_scores(self, pair_index: torch.Tensor, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, m) teacher scores of each context of ``pair_index`` (B,) against its own m mined negatives, whose
        tokens (B * m rows, context by context) the student's batch carries."""
        if self.response_tower is None:
            raise ValueError("this teacher was built without scores_negatives: it has no response tower")
        device = self.contexts.device
        vecs = self.response_tower(**{k: v.to(device) for k, v in tokens.items()}).float()  # (B * m, H)
        return own_negative_scores(self.contexts[pair_index], vecs.view(len(pair_index), -1, vecs.shape[-1]))

    def term(
        self, student_scores: torch.Tensor, pair_index: torch.Tensor,
        negatives: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """weight x KL(teacher's distribution || the student's) over each context's in-batch responses (B, B
        ``student_scores``) and, with ``negatives`` = (student's, teacher's) (B, m) scores, its own mined negatives."""
        teacher = self.scores(pair_index)
        if negatives is not None:
            student_scores = torch.cat([student_scores, negatives[0]], dim=1)
            teacher = torch.cat([teacher, negatives[1].to(teacher.dtype)], dim=1)
        return self.weight * self.loss(student_scores, teacher)


def indexed_collate(collate: Callable[[list[IndexedPair]], dict]) -> Callable[[list[IndexedPair]], dict]:
    """``collate`` plus ``pair_index``, the (B,) positions of the batch's pairs in the run's list."""

    def with_index(items: list[IndexedPair]) -> dict:
        return {**collate(items), "pair_index": torch.tensor([item.index for item in items])}

    return with_index
