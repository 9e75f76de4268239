"""Train DR-BERT (the dual-encoder) from corpus files: read, subsample, fit, save, report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hashbert.config import (
    DataConfig,
    DistillConfig,
    DualEncoderConfig,
    HardNegativeConfig,
    TrainConfig,
    config_to_dict,
)
from hashbert.io import write_json
from hashbert.losses.in_batch import InBatchSoftmaxLoss
from hashbert.models.dual_encoder import DualEncoder
from hashbert.training.distributed import gather
from hashbert.training.fingerprint import run_fingerprint
from hashbert.training.hard_negatives import (
    HardNegativeMiner,
    IndexedPair,
    mined_collate,
    negatives_fingerprint,
)
from hashbert.training.inputs import load_training_pairs, load_valid_evaluator
from hashbert.training.loss_plot import plot_loss
from hashbert.training.teacher import TeacherScores, indexed_collate
from hashbert.training.trainer import Trainer

logger = logging.getLogger(__name__)


def dual_loss(
    model: DualEncoder, loss: InBatchSoftmaxLoss, teacher: TeacherScores | None = None
) -> Callable[[dict], torch.Tensor]:
    """``batch -> scalar``: the in-batch softmax over each context's batch responses, plus its own mined
    negatives where the batch has ``negatives`` (tokenised, B * m, scored as (B, m, H) per-context negatives);
    under torchrun over every process's rows (``distributed.gather``, the negatives staying with their contexts).
    With a ``teacher``, plus its KL term from its in-batch scores of the batch's pairs (``pair_index``) to ours."""

    def compute(batch: dict) -> torch.Tensor:
        context_vecs, response_vecs = model(batch["context"], batch["response"])  # (B, H) each
        own = ()
        if "negatives" in batch:
            negative_vecs = model.response_encoder(**batch["negatives"])  # (B * m, H)
            own = (negative_vecs.view(context_vecs.shape[0], -1, negative_vecs.shape[-1]),)  # (B, m, H)
        gathered = gather((context_vecs, response_vecs, *own))
        value = loss(gathered[0], gathered[1], context_negative_vecs=gathered[2] if own else None)
        if teacher is None:
            return value
        return value + teacher.term(gathered[0] @ gathered[1].T, gather(batch["pair_index"]))

    return compute


def train_dual_encoder(
    model_config: DualEncoderConfig,
    data: DataConfig,
    train: TrainConfig,
    out_dir: str | Path,
    negatives: HardNegativeConfig | None = None,
    distill: DistillConfig | None = None,
) -> dict[str, Any]:
    """Fit DR-BERT on ``data.train`` and save it to ``out_dir/model``; returns the run summary.

    ``out_dir`` also holds the resumable checkpoints (rerun the same command to continue after an
    interruption), ``run.json`` (configs, data sizes, loss curve, validations) and ``loss.png``. Under torchrun
    the in-batch negatives are every process's responses, and rank 0 alone writes. ``negatives`` adds
    per-context hard negatives (BM25's or the model's own top-k, ``training.hard_negatives``) to the in-batch
    ones; ``distill.teacher`` a KL term towards a trained DR-BERT's in-batch scores (``training.teacher``).
    """
    out_dir, negatives, distill = Path(out_dir), negatives or HardNegativeConfig(), distill or DistillConfig()
    pairs, report = load_training_pairs(data, model_config.encoder.max_context_turns, train.seed)
    logger.info("training on %d pairs from %s", len(pairs), data.train)
    model = DualEncoder.from_base(model_config)
    teacher = None
    if distill.teacher:
        teacher = TeacherScores.for_run(distill.teacher, pairs, data, model_config.encoder.max_context_turns, train,
                                        out_dir, distill.distill_weight, model_config.temperature)
    collate = lambda items: model.collate([item.pair for item in items])  # noqa: E731
    if negatives.hard_negatives != "none":
        miner = HardNegativeMiner.for_run(negatives, pairs, data, train, out_dir)
        collate = mined_collate(miner, model, lambda: trainer.state.step, lambda: miner.mine_with_model(model))
    if teacher is not None:
        collate = indexed_collate(collate)
    distilled = {"distill": distill} if distill.teacher else {}  # runs without a teacher keep their fingerprints
    trainer = Trainer(
        model, dual_loss(model, InBatchSoftmaxLoss(model_config.temperature), teacher),
        [IndexedPair(i, pair) for i, pair in enumerate(pairs)], collate, train, out_dir,
        evaluator=load_valid_evaluator(data, train.seed), dedupe_key=lambda item: item.pair.response,
        fingerprint=run_fingerprint(data, {"teacher": distill.teacher}, model=model_config,
                                    **negatives_fingerprint(negatives), **distilled),
    )
    state = trainer.fit()
    summary = {
        **trainer.summary(), "pairs": len(pairs), "skipped_lines": len(report.errors),
        "model": config_to_dict(model_config), "data": config_to_dict(data), "negatives": config_to_dict(negatives),
        "distill": config_to_dict(distill),
    }
    if not trainer.main:
        return summary
    model.save(out_dir / "model")
    write_json(out_dir / "run.json", summary)
    plot_loss(out_dir / "loss.png", state.losses)
    return summary
