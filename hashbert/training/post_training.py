"""BERT-FP post-training on the training dialogues: masked LM + 3-way utterance relevance classification.

Each example is a short context and a candidate utterance: the true next utterance (p 0.25, label 0),
a random utterance of the same dialogue (0.25, label 1) or one of another dialogue (0.5, label 2);
the model (``models.cross.post_training``) masks 15% of its tokens, BERT's recipe. The result is an
encoder checkpoint (a plain Hugging Face directory plus checksums) that ``train cross --init``
(BERT-FP) and ``train dual --init`` start from.

References: Han et al. 2021 (BERT-FP) sec. 3.2; Devlin et al. 2019 (BERT) sec. 3.1; SPEC "Models".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hashbert.config import DataConfig, PostTrainConfig, TrainConfig, config_to_dict
from hashbert.data import read_training_pairs
from hashbert.io import atomic_directory, write_checksums, write_json
from hashbert.losses.post_training import PostTrainingLoss
from hashbert.models.cross.post_training import (
    NEXT,
    OTHER_DIALOGUE,
    SAME_DIALOGUE,
    PostTrainingModel,
    RelevanceExample,
)
from hashbert.models.encoder import load_backbone, load_tokenizer, resolve_model_dir
from hashbert.training.fingerprint import run_fingerprint
from hashbert.training.loss_plot import plot_loss
from hashbert.training.trainer import Trainer

logger = logging.getLogger(__name__)


def relevance_examples(
    dialogues: Sequence[Sequence[str]], n: int, max_context_turns: int, seed: int
) -> list[RelevanceExample]:
    """``n`` seeded examples of the 3-way task from dialogues of >= 2 turns.

    A position i >= 1 of a random dialogue gives the context (up to ``max_context_turns`` turns before
    i); the candidate is turn i (label 0, p 0.25), another turn j != i of that dialogue (label 1, p
    0.25), or a random turn of another dialogue (label 2, p 0.5).
    """
    usable = [tuple(d) for d in dialogues if len(d) >= 2]
    if len(usable) < 2:
        raise ValueError("post-training needs at least two dialogues of two or more turns")
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(n):
        d = int(rng.integers(len(usable)))
        turns = usable[d]
        i = int(rng.integers(1, len(turns)))
        context = turns[max(0, i - max_context_turns) : i]
        draw = rng.random()
        if draw < 0.25:
            examples.append(RelevanceExample(context, turns[i], NEXT))
        elif draw < 0.5:
            j = int(rng.integers(len(turns) - 1))
            examples.append(RelevanceExample(context, turns[j if j < i else j + 1], SAME_DIALOGUE))
        else:
            other = int(rng.integers(len(usable) - 1))
            other_turns = usable[other if other < d else other + 1]
            examples.append(
                RelevanceExample(context, other_turns[int(rng.integers(len(other_turns)))], OTHER_DIALOGUE)
            )
    return examples


def save_encoder_checkpoint(backbone: nn.Module, tokenizer, directory: str | Path, record: dict[str, Any]) -> Path:
    """Write the encoder as a Hugging Face directory (safetensors, config, tokenizer) + ``post_training.json``,
    atomically."""
    directory = Path(directory)
    with atomic_directory(directory, kind="encoder") as tmp:
        backbone.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        write_json(tmp / "post_training.json", record)
        write_checksums(tmp, [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file()])
    return directory


def post_train(config: PostTrainConfig, data: DataConfig, train: TrainConfig, out_dir: str | Path) -> dict[str, Any]:
    """Post-train ``config.model`` on the dialogues of ``data.train``; the encoder goes to ``out_dir/encoder``."""
    out_dir = Path(out_dir)
    dialogues = [(*p.context, p.response) for p in read_training_pairs(data.train, "last", data.on_error)]
    examples = relevance_examples(dialogues, config.examples, config.input.max_context_turns, train.seed)
    model_dir = resolve_model_dir(config.model)
    model = PostTrainingModel(load_backbone(model_dir), load_tokenizer(model_dir), config)
    loss = PostTrainingLoss(config.relevance_weight)
    parts: list[dict[str, float]] = []

    def compute_loss(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        value = loss(*model(**batch))
        parts.append(loss.last_parts)
        return value

    trainer = Trainer(
        model, compute_loss, examples, model.collate, train, out_dir, fingerprint=run_fingerprint(data, model=config)
    )
    state = trainer.fit()
    summary = {
        **trainer.summary(), "dialogues": len(dialogues), "pairs": len(examples), "model": config_to_dict(config),
        "data": config_to_dict(data), "last_parts": parts[-20:],
    }
    if not trainer.main:  # under torchrun, rank 0 alone writes
        return summary
    save_encoder_checkpoint(
        model.backbone, model.tokenizer, out_dir / "encoder", {"post_training": config_to_dict(config)}
    )
    write_json(out_dir / "run.json", summary)
    plot_loss(out_dir / "loss.png", state.losses, title="BERT-FP post-training loss (MLM + relevance)")
    return summary
