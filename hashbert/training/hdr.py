"""Train HDR-BERT from corpus files: read, subsample, fit, save, report (the DR-BERT run's twin).

The pairs, their subsample, the validation evaluator (``training.inputs``), the trainer, checkpoints
and resume are those of ``training.dual``, so an HDR model and DR-BERT trained with the same flags see
the same data. The only difference in optimisation: the randomly initialised aggregator learns at
``aggregator_lr`` while the encoders (which start trained) keep ``--lr``.

References: HDR (ACM TOIS 2023) sec. 3-4.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hashbert.config import DataConfig, HardNegativeConfig, HdrConfig, HdrInitConfig, TrainConfig, config_to_dict
from hashbert.io import write_json
from hashbert.losses.in_batch import InBatchSoftmaxLoss, own_negative_scores
from hashbert.losses.maxsim import MaxSimInBatchLoss
from hashbert.models.hdr.aggregators import maxsim
from hashbert.models.hdr.model import HdrModel
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
from hashbert.training.schedules import warmup_linear_scheduler
from hashbert.training.teacher import TeacherScores, indexed_collate
from hashbert.training.trainer import Trainer, _param_groups

logger = logging.getLogger(__name__)


class HdrTrainer(Trainer):
    """The shared ``Trainer`` with two learning rates: ``config.lr`` for the encoders, ``aggregator_lr`` for the rest.

    Args:
        *args, **kwargs: as ``Trainer`` (the model must be an ``HdrModel``).
        aggregator_lr: peak learning rate of the aggregator (same warm-up and decay as the encoders).
    """

    def __init__(self, *args, aggregator_lr: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        model, config = self.model, self.config
        encoders = nn.ModuleList([model.utterance_encoder, model.response_encoder])  # shared towers counted once
        groups = _param_groups(encoders, config.weight_decay) + [
            {**group, "lr": aggregator_lr} for group in _param_groups(model.aggregator, config.weight_decay)
        ]
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr)
        warmup = math.ceil(config.warmup_ratio * self.total_steps)
        self.scheduler = warmup_linear_scheduler(self.optimizer, self.total_steps, warmup)


def hdr_loss(model: HdrModel, teacher: TeacherScores | None = None) -> Callable[[dict], torch.Tensor]:
    """``batch -> scalar``: in-batch softmax on cosine scores (``MaxSim`` scores for colbert), at the config's
    temperature, plus each context's own mined negatives where the batch has ``negatives`` (tokenised, B * m);
    under torchrun over every process's rows (``distributed.gather``). With a ``teacher``, plus its weight times
    the KL term from the teacher's in-batch scores of the batch's pairs (``pair_index``) to HDR's."""
    temperature = model.config.temperature
    late, single = MaxSimInBatchLoss(temperature), InBatchSoftmaxLoss(temperature)

    def loss(batch: dict) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k not in ("negatives", "pair_index")}
        context, context_mask, response, response_mask = model(**inputs)
        negatives = _negative_slots(model, batch.get("negatives"), context.shape[0])
        if model.multi_vector:
            gathered = gather((context, context_mask, response, response_mask, *negatives))
            value = late(*gathered)
            student = maxsim(*gathered[:4]) if teacher else None
        else:
            own = (negatives[0][:, :, 0],) if negatives else ()  # (B, m, H): one vector per response
            gathered = gather((context[:, 0], response[:, 0], *own))  # (B, 1, H) -> (B, H)
            value = single(gathered[0], gathered[1], context_negative_vecs=gathered[2] if own else None)
            student = gathered[0] @ gathered[1].T if teacher else None
        if teacher is None:
            return value
        on_negatives = None
        if teacher.response_tower is not None and negatives:
            teacher_negatives = gather(teacher.negative_scores(batch["pair_index"], batch["negatives"]))
            on_negatives = (own_negative_scores(gathered[0], gathered[2]), teacher_negatives)
        return value + teacher.term(student, gather(batch["pair_index"]), on_negatives)

    return loss


def _negative_slots(model: HdrModel, tokens: dict | None, batch: int) -> tuple[torch.Tensor, ...]:
    """The mined negatives' response vectors (B, m, k', H) and mask (B, m, k'); () when the batch has none."""
    if tokens is None:
        return ()
    vecs, mask = model.response_slots(**tokens)  # (B * m, k', H), (B * m, k')
    return vecs.view(batch, -1, *vecs.shape[1:]), mask.view(batch, -1, mask.shape[-1])


def train_hdr(
    model_config: HdrConfig, init: HdrInitConfig, data: DataConfig, train: TrainConfig, out_dir: str | Path,
    negatives: HardNegativeConfig | None = None,
) -> dict[str, Any]:
    """Fit an HDR model on ``data.train`` and save it to ``out_dir/model``; returns the run summary.

    ``out_dir`` also holds the resumable checkpoints (rerun the same command to continue),
    ``run.json`` (configs, data sizes, loss curve, validations) and ``loss.png``. ``negatives`` ``bm25`` adds
    each context's ``hard_per_context`` BM25 negatives (``training.hard_negatives``) to the in-batch ones.
    """
    negatives = negatives or HardNegativeConfig()
    if negatives.hard_negatives not in ("none", "bm25"):
        got = negatives.hard_negatives
        raise ValueError(f"train hdr mines BM25 negatives: --hard-negatives bm25 or none, got {got!r}")
    _check_distill_negatives(init, model_config, negatives)
    if not data.train:
        raise ValueError("--train is required")
    out_dir = Path(out_dir)
    pairs, report = load_training_pairs(data, model_config.max_turns, train.seed)
    logger.info("training %s on %d pairs from %s", model_config.aggregator, len(pairs), data.train)
    torch.manual_seed(train.seed)  # the aggregator's initialisation
    model = HdrModel.build(model_config, init.dual_encoder)
    if init.freeze_utterance_encoder:
        _freeze_utterance_encoder(model)
    teacher = _teacher(init, data, model_config, train, pairs, out_dir)
    examples = [IndexedPair(i, pair) for i, pair in enumerate(pairs)]
    collate = lambda items: model.collate([item.pair for item in items])  # noqa: E731
    if negatives.hard_negatives != "none":
        miner = HardNegativeMiner.for_run(negatives, pairs, data, train, out_dir)
        collate = mined_collate(miner, model, lambda: trainer.state.step, mine_with_model=None)
    if teacher is not None:
        collate = indexed_collate(collate)
    trainer = HdrTrainer(
        model, hdr_loss(model, teacher), examples, collate, train, out_dir,
        evaluator=load_valid_evaluator(data, train.seed),
        dedupe_key=lambda item: item.pair.response, aggregator_lr=init.aggregator_lr,
        fingerprint=run_fingerprint(
            data, {"dual_encoder": init.dual_encoder}, model=model_config, init=init,
            **negatives_fingerprint(negatives),
        ),
    )
    state = trainer.fit()
    summary = {
        **trainer.summary(), "pairs": len(pairs), "skipped_lines": len(report.errors),
        "model": config_to_dict(model.config), "init": config_to_dict(init), "data": config_to_dict(data),
        "negatives": config_to_dict(negatives),
    }
    if not trainer.main:  # under torchrun, rank 0 alone writes
        return summary
    model.save(out_dir / "model")
    write_json(out_dir / "run.json", summary)
    plot_loss(out_dir / "loss.png", state.losses, f"{model.row_name} training loss")
    return summary


def _freeze_utterance_encoder(model: HdrModel) -> None:
    """No gradient for the utterance encoder (the optimiser's groups then leave it out); refused when it is also
    the response encoder, which must train."""
    if model.utterance_encoder is model.response_encoder:
        raise ValueError("--freeze-utterance-encoder needs separate towers: this model's utterances and responses "
                         "share one encoder")
    model.utterance_encoder.requires_grad_(False)


def _check_distill_negatives(init: HdrInitConfig, model_config: HdrConfig, negatives: HardNegativeConfig) -> None:
    """--distill-negatives needs a teacher, mined negatives and one context vector (MaxSim scores differ)."""
    if not init.distill_negatives:
        return
    if not init.distill_weight or negatives.hard_negatives == "none":
        raise ValueError("--distill-negatives needs --distill-weight > 0 and --hard-negatives bm25")
    if model_config.aggregator == "colbert":
        raise ValueError("--distill-negatives needs a single-vector aggregator (trs, trs-mv, gpt-mv), not colbert")


def _teacher(init: HdrInitConfig, data: DataConfig, model_config: HdrConfig, train: TrainConfig, pairs: list,
             out_dir: Path) -> TeacherScores | None:
    """The run's DR-BERT teacher when ``--distill-weight`` is on, else None."""
    if not init.distill_weight:
        return None
    if not init.dual_encoder:
        raise ValueError("--distill-weight needs --dual-encoder: the DR-BERT whose scores HDR learns to match")
    return TeacherScores.for_run(init.dual_encoder, pairs, data, model_config.max_turns, train, out_dir,
                                 init.distill_weight, model_config.temperature, init.distill_negatives)
