"""Train DR-BERT (the dual-encoder) from corpus files: read, subsample, fit, save, report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from hashbert.config import DataConfig, DualEncoderConfig, TrainConfig, config_to_dict
from hashbert.data import read_rerank_groups, read_training_pairs
from hashbert.data.response_selection import ReadReport
from hashbert.evaluation.rerank import RerankEvaluator
from hashbert.io import write_json
from hashbert.losses.in_batch import InBatchSoftmaxLoss
from hashbert.models.dual_encoder import DualEncoder
from hashbert.sampling import seeded_subsample
from hashbert.training.trainer import Trainer

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


def train_dual_encoder(
    model_config: DualEncoderConfig, data: DataConfig, train: TrainConfig, out_dir: str | Path
) -> dict[str, Any]:
    """Fit DR-BERT on ``data.train`` and save it to ``out_dir/model``; returns the run summary.

    ``out_dir`` also holds the resumable checkpoints (rerun the same command to continue after an
    interruption), ``run.json`` (configs, data sizes, loss curve, validations) and ``loss.png``.
    """
    out_dir = Path(out_dir)
    pairs, report = load_training_pairs(data, model_config.encoder.max_context_turns, train.seed)
    logger.info("training on %d pairs from %s", len(pairs), data.train)
    model = DualEncoder.from_base(model_config)
    loss = InBatchSoftmaxLoss(model_config.temperature)
    trainer = Trainer(
        model, lambda batch: loss(*model(**batch)), pairs, model.collate, train, out_dir,
        evaluator=load_valid_evaluator(data, train.seed), dedupe_key=lambda pair: pair.response,
    )
    state = trainer.fit()
    model.save(out_dir / "model")
    summary = {
        **trainer.summary(), "pairs": len(pairs), "skipped_lines": len(report.errors),
        "model": config_to_dict(model_config), "data": config_to_dict(data),
    }
    write_json(out_dir / "run.json", summary)
    plot_loss(out_dir / "loss.png", state.losses)
    return summary


def plot_loss(path: Path, losses: list[float], title: str = "DR-BERT training loss") -> None:
    """Plot the moving mean of a run's per-step losses to a PNG (nothing for fewer than two steps)."""
    from hashbert.evaluation.report import plot_metric_vs

    if len(losses) >= 2:
        window = max(1, len(losses) // 10)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        points = [(i + window, float(v)) for i, v in enumerate(smooth)]
        plot_metric_vs(path, {"in-batch loss": points}, "step", "loss (moving mean)", title)
