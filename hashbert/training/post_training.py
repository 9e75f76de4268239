"""BERT-FP post-training on the training dialogues: masked LM + 3-way utterance relevance classification.

Each example is a short context and a candidate utterance: the true next utterance (p 0.25, label 0),
a random utterance of the same dialogue (0.25, label 1) or one of another dialogue (0.5, label 2).
15% of its tokens are masked (80% [MASK], 10% a random token, 10% unchanged), BERT's recipe. The
result is an encoder checkpoint (a plain Hugging Face directory plus checksums) that ``train cross
--init`` (BERT-FP) and ``train dual --init`` start from.

References: Han et al. 2021 (BERT-FP) sec. 3.2; Devlin et al. 2019 (BERT) sec. 3.1; SPEC "Models".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hashbert.config import DataConfig, PostTrainConfig, TrainConfig, config_to_dict
from hashbert.data import read_training_pairs
from hashbert.io import atomic_directory, write_checksums, write_json
from hashbert.losses.post_training import PostTrainingLoss
from hashbert.models.cross_encoder import pool_pair, start_as_scaled_cosine
from hashbert.models.encoder import load_backbone, load_tokenizer, resolve_model_dir
from hashbert.models.pair_tokens import PairTokenizer
from hashbert.training.dual import plot_loss
from hashbert.training.trainer import Trainer

logger = logging.getLogger(__name__)

NEXT, SAME_DIALOGUE, OTHER_DIALOGUE = 0, 1, 2
# Segments pooling's starting head: all-MiniLM-L6-v2's cosine of the two sides' means over a joined pair
# averages ~0.78 for the true next turn and ~0.67 for another conversation's (measured on Chit-Chat).
SEGMENTS_SCALE, SEGMENTS_OFFSET = 20.0, 0.7


@dataclass(frozen=True)
class RelevanceExample:
    """A short context, a candidate utterance and its relevance label (NEXT, SAME_DIALOGUE or OTHER_DIALOGUE)."""

    context: tuple[str, ...]
    candidate: str
    label: int


def relevance_examples(dialogues: Sequence[Sequence[str]], n: int, max_context_turns: int, seed: int) -> list[RelevanceExample]:
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
            examples.append(RelevanceExample(context, other_turns[int(rng.integers(len(other_turns)))], OTHER_DIALOGUE))
    return examples


def mask_tokens(
    input_ids: torch.Tensor, maskable: torch.Tensor, probability: float, mask_id: int, vocab_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: pick ``probability`` of the maskable tokens; 80% -> [MASK], 10% -> random, 10% kept.

    Args:
        input_ids: (B, T) int64; maskable: (B, T) bool (real tokens, not [CLS]/[SEP]/padding).
    Returns: (masked input ids (B, T), targets (B, T): the original id where picked, -100 elsewhere).
    """
    picked = (torch.rand(input_ids.shape) < probability) & maskable
    targets = torch.where(picked, input_ids, torch.full_like(input_ids, -100))
    draw = torch.rand(input_ids.shape)
    masked = torch.where(picked & (draw < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    random_ids = torch.randint(vocab_size, input_ids.shape)
    masked = torch.where(picked & (draw >= 0.8) & (draw < 0.9), random_ids, masked)
    return masked, targets


class PostTrainingModel(nn.Module):
    """The encoder with BERT's MLM head (tied to the word embeddings) and a 3-way relevance head on the pair vector.

    The pair vector is pooled as ``config.pooling`` says ([CLS] in the BERT-FP paper); post-train with the pooling
    the cross-encoder will use, so the relevance task shapes the vector that is later scored.
    """

    def __init__(self, backbone: nn.Module, tokenizer, config: PostTrainConfig) -> None:
        super().__init__()
        from transformers.models.bert.modeling_bert import BertOnlyMLMHead

        self.backbone, self.tokenizer, self.config = backbone, tokenizer, config
        self.mlm_head = BertOnlyMLMHead(backbone.config)
        self.mlm_head.predictions.decoder.weight = backbone.get_input_embeddings().weight  # tied, as in BERT
        self.relevance_head = nn.Linear(backbone.config.hidden_size, 3)
        if config.pooling == "segments":
            # True next utterance up, other dialogue down, same dialogue 0 (the order of the labels).
            signs = {NEXT: 1.0, SAME_DIALOGUE: 0.0, OTHER_DIALOGUE: -1.0}
            start_as_scaled_cosine(self.relevance_head, SEGMENTS_SCALE, SEGMENTS_OFFSET, [signs[k] for k in range(3)])
        self.pair_tokenizer = PairTokenizer(tokenizer, config.max_length, config.max_response_length)

    def collate(self, examples: Sequence[RelevanceExample]) -> dict[str, torch.Tensor]:
        """Examples -> masked (B, T) inputs, (B, T) MLM targets and (B,) relevance labels."""
        batch = self.pair_tokenizer.batch([e.context for e in examples], [e.candidate for e in examples])
        special = torch.tensor([self.tokenizer.cls_token_id, self.tokenizer.sep_token_id])
        maskable = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], special)
        masked, targets = mask_tokens(
            batch["input_ids"], maskable, self.config.mlm_probability, self.tokenizer.mask_token_id, len(self.tokenizer)
        )
        return {
            "input_ids": masked, "attention_mask": batch["attention_mask"], "token_type_ids": batch["token_type_ids"],
            "mlm_targets": targets, "relevance_targets": torch.tensor([e.label for e in examples]),
        }

    def forward(self, input_ids, attention_mask, token_type_ids, mlm_targets, relevance_targets):
        """Returns (mlm_logits (M, V) at the M picked positions, their targets (M,), relevance_logits (B, 3), labels (B,))."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        picked = mlm_targets != -100  # (B, T); the vocabulary projection runs only where it is needed
        mlm_logits = self.mlm_head(hidden[picked])  # (M, V)
        pair_vector = pool_pair(hidden, attention_mask, token_type_ids, self.config.pooling)  # (B, H)
        return mlm_logits, mlm_targets[picked], self.relevance_head(pair_vector), relevance_targets


def save_encoder_checkpoint(backbone: nn.Module, tokenizer, directory: str | Path, record: dict[str, Any]) -> Path:
    """Write the encoder as a Hugging Face directory (safetensors, config, tokenizer) + ``post_training.json``, atomically."""
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        backbone.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        write_json(tmp / "post_training.json", record)
        write_checksums(tmp, [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file()])
    return directory


def post_train(config: PostTrainConfig, data: DataConfig, train: TrainConfig, out_dir: str | Path) -> dict[str, Any]:
    """Post-train ``config.model`` on the dialogues of ``data.train``; the encoder goes to ``out_dir/encoder``."""
    out_dir = Path(out_dir)
    dialogues = [(*p.context, p.response) for p in read_training_pairs(data.train, "last", data.on_error)]
    examples = relevance_examples(dialogues, config.examples, config.max_context_turns, train.seed)
    model_dir = resolve_model_dir(config.model)
    model = PostTrainingModel(load_backbone(model_dir), load_tokenizer(model_dir), config)
    loss = PostTrainingLoss(config.relevance_weight)
    parts: list[dict[str, float]] = []

    def compute_loss(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        value = loss(*model(**batch))
        parts.append(loss.last_parts)
        return value

    trainer = Trainer(model, compute_loss, examples, model.collate, train, out_dir)
    state = trainer.fit()
    summary = {
        **trainer.summary(), "dialogues": len(dialogues), "pairs": len(examples), "model": config_to_dict(config),
        "data": config_to_dict(data), "last_parts": parts[-20:],
    }
    save_encoder_checkpoint(model.backbone, model.tokenizer, out_dir / "encoder", {"post_training": config_to_dict(config)})
    write_json(out_dir / "run.json", summary)
    plot_loss(out_dir / "loss.png", state.losses, title="BERT-FP post-training loss (MLM + relevance)")
    return summary
