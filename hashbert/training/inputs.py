"""What every training recipe reads: the (subsampled) training pairs and the validation evaluator."""

from __future__ import annotations

import logging

from hashbert.config import DataConfig
from hashbert.data import read_rerank_groups, read_training_pairs
from hashbert.data.response_selection import ReadReport
from hashbert.data.sampling import seeded_subsample
from hashbert.evaluation.rerank import RerankEvaluator

logger = logging.getLogger(__name__)


def load_training_pairs(data: DataConfig, max_context_turns: int, seed: int) -> tuple[list, ReadReport]:
    """Read the training pairs (``data.expansion``), then keep a seeded subsample of ``data.max_train_pairs``."""
    report = ReadReport(data.train)
    pairs = read_training_pairs(
        data.train, data.expansion, data.on_error, report, max_context_turns=max_context_turns or None
    )
    return seeded_subsample(pairs, data.max_train_pairs, seed), report


def load_valid_evaluator(data: DataConfig, seed: int, batch_size: int = 64) -> RerankEvaluator | None:
    """A RerankEvaluator over (a seeded subsample of ``max_valid_groups``) validation groups, or None."""
    if not data.valid:
        return None
    groups = seeded_subsample(read_rerank_groups(data.valid, on_error=data.on_error), data.max_valid_groups, seed)
    return RerankEvaluator(groups, batch_size=batch_size)
