"""Train a cross-encoder (BERT, SA-BERT, BERT-FP) from corpus files: labelled pairs, BCE, save, report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hashbert.config import (
    CrossEncoderConfig,
    DataConfig,
    HardNegativeConfig,
    NegativeSamplingConfig,
    TrainConfig,
    config_to_dict,
)
from hashbert.data import ContextResponse, ReadReport, existing_speakers_path, read_rerank_groups, read_training_pairs
from hashbert.data.sampling import seeded_subsample
from hashbert.evaluation.rerank import RerankEvaluator
from hashbert.io import write_json
from hashbert.losses.pointwise import PointwiseBceLoss
from hashbert.models.cross.cross_encoder import CrossEncoder
from hashbert.training.fingerprint import run_fingerprint
from hashbert.training.loss_plot import plot_loss
from hashbert.training.trainer import Trainer

logger = logging.getLogger(__name__)


def labelled_pairs(
    pairs: Sequence[ContextResponse], negatives: int, seed: int, mined: Sequence[Sequence[str]] = ()
) -> list[tuple[ContextResponse, int]]:
    """Each pair as a positive, followed by ``negatives`` copies whose response is drawn from the other pairs',
    then one copy per text of ``mined[i]`` (pair i's hard negatives, if given).

    A negative keeps its context's speakers (the response slot is the same turn); a draw that repeats
    the true response text is redrawn.
    """
    responses = [p.response for p in pairs]
    if len(set(responses)) < 2:
        raise ValueError("negative sampling needs at least two distinct responses")
    rng = np.random.default_rng(seed)
    examples: list[tuple[ContextResponse, int]] = []
    for i, pair in enumerate(pairs):
        examples.append((pair, 1))
        drawn = []
        for _ in range(negatives):
            negative = pair.response
            while negative == pair.response:
                negative = responses[int(rng.integers(len(responses)))]
            drawn.append(negative)
        for negative in [*drawn, *(mined[i] if mined else ())]:
            examples.append((ContextResponse(pair.context, negative, pair.context_speakers, pair.response_speaker), 0))
    return examples


def bm25_negatives(pairs: Sequence[ContextResponse], sampling: NegativeSamplingConfig, data: DataConfig,
                   seed: int, out_dir: str | Path | None = None) -> list[list[str]]:
    """Each pair's ``sampling.bm25_negatives`` BM25 negatives, drawn once (seeded) from its top ``bm25_depth``
    eligible training turns (never its own conversation's, never a near-copy of its response); the BM25 hits are
    cached in ``out_dir/cache``."""
    from hashbert.training.hard_negatives import HardNegativeMiner, TrainingPool

    config = HardNegativeConfig("bm25", hard_per_context=sampling.bm25_negatives, hard_depth=sampling.bm25_depth)
    miner = HardNegativeMiner(config, pairs, TrainingPool.from_file(data.train, data.on_error), seed, out_dir=out_dir)
    miner.mine_bm25()
    return [miner.draw(i, step=0) for i in range(len(pairs))]


def train_cross_encoder(
    model_config: CrossEncoderConfig, sampling: NegativeSamplingConfig, data: DataConfig, train: TrainConfig,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Fit a cross-encoder on ``data.train`` (BCE on positives + sampled negatives) and save it to ``out_dir/model``.

    ``data.max_train_pairs`` counts contexts (each brings 1 + k examples). SA-BERT reads the corpus's
    speakers sidecar when there is one. Checkpoints make the run resumable, as for ``train dual``.
    """
    out_dir = Path(out_dir)
    report = ReadReport(data.train)
    speakers = existing_speakers_path(data.train) if model_config.speakers else None
    pairs = read_training_pairs(
        data.train, data.expansion, data.on_error, report,
        max_context_turns=model_config.input.max_context_turns or None, speakers_path=speakers,
    )
    pairs = seeded_subsample(pairs, data.max_train_pairs, train.seed)
    mined = bm25_negatives(pairs, sampling, data, train.seed, out_dir) if sampling.bm25_negatives else []
    examples = labelled_pairs(pairs, sampling.negatives, train.seed, mined)
    logger.info("training on %d contexts x (1 + %d + %d BM25) pairs from %s", len(pairs), sampling.negatives,
                sampling.bm25_negatives, data.train)
    model = CrossEncoder.from_base(model_config)
    loss = PointwiseBceLoss()
    evaluator = None
    if data.valid:
        valid_speakers = existing_speakers_path(data.valid) if model_config.speakers else None
        groups = read_rerank_groups(data.valid, on_error=data.on_error, speakers_path=valid_speakers)
        evaluator = RerankEvaluator(seeded_subsample(groups, data.max_valid_groups, train.seed))
    trainer = Trainer(
        model, lambda batch: loss(model(**batch["inputs"]), batch["labels"]), examples, model.collate, train, out_dir,
        evaluator=evaluator,
        fingerprint=run_fingerprint(data, {"speakers": speakers or ""}, model=model_config, sampling=sampling),
    )
    state = trainer.fit()
    summary = {
        **trainer.summary(), "pairs": len(examples), "contexts": len(pairs), "speakers_file": str(speakers or ""),
        "skipped_lines": len(report.errors), "model": config_to_dict(model_config),
        "sampling": config_to_dict(sampling), "data": config_to_dict(data),
    }
    if not trainer.main:  # under torchrun, rank 0 alone writes
        return summary
    model.save(out_dir / "model")
    write_json(out_dir / "run.json", summary)
    plot_loss(out_dir / "loss.png", state.losses, title=f"{model.row_name} training loss (BCE)")
    return summary
