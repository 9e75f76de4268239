"""Train the PPL-100 judge: a small GPT-2 on the training split's dialogues, with its validation perplexity."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from hashbert.config import DataConfig, LanguageModelConfig, TrainConfig, config_to_dict
from hashbert.data import read_rerank_groups
from hashbert.data.sampling import seeded_subsample
from hashbert.io import write_json
from hashbert.models.cross.causal_lm import new_gpt2, pair_response_losses, save_causal_lm
from hashbert.models.pair_tokens import PairTokenizer
from hashbert.training.fingerprint import run_fingerprint
from hashbert.training.inputs import load_training_pairs
from hashbert.training.loss_plot import plot_loss
from hashbert.training.trainer import Trainer

logger = logging.getLogger(__name__)


def perplexity(nll_sum: float, n_tokens: int) -> float:
    """exp of the mean token loss (inf for no tokens)."""
    return math.exp(nll_sum / n_tokens) if n_tokens else math.inf


def validation_perplexity(model, pair_tokenizer: PairTokenizer, groups, batch_size: int = 32) -> float:
    """Perplexity of the validation contexts' true responses (response tokens only, pooled over all of them)."""
    pairs = [(g.context, c) for g in groups for c, label in zip(g.candidates, g.labels, strict=True) if label]
    nll, counts = pair_response_losses(model, pair_tokenizer, [c for c, _ in pairs], [r for _, r in pairs], batch_size)
    return perplexity(float(nll.sum()), int(counts.sum()))


def train_language_model(
    config: LanguageModelConfig, data: DataConfig, train: TrainConfig, out_dir: str | Path
) -> dict[str, Any]:
    """Train a small GPT-2 on ``context [SEP] response [SEP]`` of the training pairs; save it to ``out_dir/lm``.

    Every real token of a sequence is a target in training; validation perplexity counts only the
    response tokens, exactly as the PPL-100 judge does.
    """
    out_dir = Path(out_dir)
    pairs, _ = load_training_pairs(data, config.input.max_context_turns, train.seed)
    model, tokenizer = new_gpt2(config)
    pair_tokenizer = PairTokenizer(
        tokenizer, config.input.max_length, config.input.max_response_length, config.input.max_context_turns
    )

    def collate(batch_pairs):
        batch = pair_tokenizer.batch([p.context for p in batch_pairs], [p.response for p in batch_pairs])
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels}

    groups = []
    if data.valid:
        groups = seeded_subsample(
            read_rerank_groups(data.valid, on_error=data.on_error), data.max_valid_groups, train.seed
        )

    def evaluator(m) -> dict[str, float]:
        return {"perplexity": validation_perplexity(m, pair_tokenizer, groups)} if groups else {}

    logger.info("training a %d-layer GPT-2 on %d pairs", config.layers, len(pairs))
    trainer = Trainer(
        model, lambda batch: model(**batch).loss, pairs, collate, train, out_dir, evaluator=evaluator,
        fingerprint=run_fingerprint(data, model=config),
    )
    state = trainer.fit()
    summary = {
        **trainer.summary(), "pairs": len(pairs), "model": config_to_dict(config), "data": config_to_dict(data),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "valid_perplexity": (
            state.validations[-1].get("perplexity", float("nan")) if state.validations else float("nan")
        ),
        "train_perplexity_last": float(np.exp(np.mean(state.losses[-10:]))) if state.losses else float("nan"),
    }
    if not trainer.main:  # under torchrun, rank 0 alone writes
        return summary
    save_causal_lm(model, tokenizer, out_dir / "lm", config)
    write_json(out_dir / "run.json", summary)
    plot_loss(out_dir / "loss.png", state.losses, title="GPT-2 judge training loss (token cross-entropy)")
    return summary
