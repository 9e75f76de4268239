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
                 weight: float, temperature: float, device: torch.device, progress: bool = True) -> None:
        from hashbert.data.vector_cache import pair_vectors
        from hashbert.models.dual_encoder import DualEncoder

        dual = DualEncoder.load(dual_encoder).to(device).eval()
        contexts, responses = pair_vectors(dual, dual_encoder, pairs, data_files, params, cache_dir, progress=progress)
        self.contexts = torch.from_numpy(contexts).to(device)
        self.responses = torch.from_numpy(responses).to(device)
        self.weight = weight
        self.loss = ScoreDistillationLoss(temperature, dual.config.temperature)

    @classmethod
    def for_run(cls, dual_encoder: str, pairs: list, data: DataConfig, max_turns: int, train: TrainConfig,
                out_dir: Path, weight: float, temperature: float) -> TeacherScores:
        """The teacher of a training run (``train dual --teacher``, ``train hdr --distill-weight``): its vectors
        cached in ``out_dir/cache`` under what selected the pairs (the data settings, history bound and seed)."""
        params = {"data": config_to_dict(data), "max_turns": max_turns, "seed": train.seed}
        return cls(dual_encoder, pairs, {"train": data.train}, params, Path(out_dir) / "cache", weight, temperature,
                   resolve_device(train.device), train.progress)

    def scores(self, pair_index: torch.Tensor) -> torch.Tensor:
        """(B, B) teacher scores of the pairs ``pair_index`` (B,): context i against response j."""
        return self.contexts[pair_index] @ self.responses[pair_index].T

    def term(self, student_scores: torch.Tensor, pair_index: torch.Tensor) -> torch.Tensor:
        """weight x KL(teacher's in-batch distribution || the student's (B, B) ``student_scores``) of the pairs."""
        return self.weight * self.loss(student_scores, self.scores(pair_index))


def indexed_collate(collate: Callable[[list[IndexedPair]], dict]) -> Callable[[list[IndexedPair]], dict]:
    """``collate`` plus ``pair_index``, the (B,) positions of the batch's pairs in the run's list."""

    def with_index(items: list[IndexedPair]) -> dict:
        return {**collate(items), "pair_index": torch.tensor([item.index for item in items])}

    return with_index
