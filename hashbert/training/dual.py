"""Train DR-BERT (the dual-encoder) from corpus files: read, subsample, fit, save, report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hashbert.config import DataConfig, DualEncoderConfig, HardNegativeConfig, TrainConfig, config_to_dict
from hashbert.io import write_json
from hashbert.losses.in_batch import InBatchSoftmaxLoss
from hashbert.models.dual_encoder import DualEncoder
from hashbert.training.distributed import gather
from hashbert.training.fingerprint import run_fingerprint
from hashbert.training.hard_negatives import hard_negative_trainer, negatives_fingerprint
from hashbert.training.inputs import load_training_pairs, load_valid_evaluator
from hashbert.training.loss_plot import plot_loss
from hashbert.training.trainer import Trainer

logger = logging.getLogger(__name__)


def train_dual_encoder(
    model_config: DualEncoderConfig,
    data: DataConfig,
    train: TrainConfig,
    out_dir: str | Path,
    negatives: HardNegativeConfig | None = None,
) -> dict[str, Any]:
    """Fit DR-BERT on ``data.train`` and save it to ``out_dir/model``; returns the run summary.

    ``out_dir`` also holds the resumable checkpoints (rerun the same command to continue after an
    interruption), ``run.json`` (configs, data sizes, loss curve, validations) and ``loss.png``. Under torchrun
    the in-batch negatives are every process's responses, and rank 0 alone writes. ``negatives`` adds
    per-context hard negatives (BM25's or the model's own top-k, ``training.hard_negatives``) to the in-batch ones.
    """
    out_dir, negatives = Path(out_dir), negatives or HardNegativeConfig()
    pairs, report = load_training_pairs(data, model_config.encoder.max_context_turns, train.seed)
    logger.info("training on %d pairs from %s", len(pairs), data.train)
    model = DualEncoder.from_base(model_config)
    loss = InBatchSoftmaxLoss(model_config.temperature)
    fingerprint = run_fingerprint(data, model=model_config, **negatives_fingerprint(negatives))
    if negatives.hard_negatives != "none":
        trainer = hard_negative_trainer(model, loss, pairs, negatives, data, train, out_dir, fingerprint)
    else:
        trainer = Trainer(
            model, lambda batch: loss(*gather(model(**batch))), pairs, model.collate, train, out_dir,
            evaluator=load_valid_evaluator(data, train.seed), dedupe_key=lambda pair: pair.response,
            fingerprint=fingerprint,
        )
    state = trainer.fit()
    summary = {
        **trainer.summary(), "pairs": len(pairs), "skipped_lines": len(report.errors),
        "model": config_to_dict(model_config), "data": config_to_dict(data), "negatives": config_to_dict(negatives),
    }
    if not trainer.main:
        return summary
    model.save(out_dir / "model")
    write_json(out_dir / "run.json", summary)
    plot_loss(out_dir / "loss.png", state.losses)
    return summary

