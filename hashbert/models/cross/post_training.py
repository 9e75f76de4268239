"""The BERT-FP post-training model: the encoder with BERT's MLM head and a 3-way utterance relevance head.

Each example is a short context and a candidate utterance labelled NEXT (the true next utterance),
SAME_DIALOGUE (another turn of the same dialogue) or OTHER_DIALOGUE; ``collate`` masks 15% of its
tokens (80% [MASK], 10% a random token, 10% unchanged), BERT's recipe. ``training.post_training``
draws the examples and fits the model.

References: Han et al. 2021 (BERT-FP) sec. 3.2; Devlin et al. 2019 (BERT) sec. 3.1; SPEC "Models".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from hashbert.config import PostTrainConfig
from hashbert.models.cross.cross_encoder import pool_pair, start_as_scaled_cosine
from hashbert.models.pair_tokens import PairTokenizer

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
        self.pair_tokenizer = PairTokenizer(tokenizer, config.input.max_length, config.input.max_response_length)

    def collate(self, examples: Sequence[RelevanceExample]) -> dict[str, torch.Tensor]:
        """Examples -> masked (B, T) inputs, (B, T) MLM targets and (B,) relevance labels."""
        batch = self.pair_tokenizer.batch([e.context for e in examples], [e.candidate for e in examples])
        special = torch.tensor([self.tokenizer.cls_token_id, self.tokenizer.sep_token_id])
        maskable = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], special)
        masked, targets = mask_tokens(
            batch["input_ids"], maskable, self.config.mlm_probability,
            self.tokenizer.mask_token_id, len(self.tokenizer)
        )
        return {
            "input_ids": masked, "attention_mask": batch["attention_mask"], "token_type_ids": batch["token_type_ids"],
            "mlm_targets": targets, "relevance_targets": torch.tensor([e.label for e in examples]),
        }

    def forward(self, input_ids, attention_mask, token_type_ids, mlm_targets, relevance_targets):
        """Returns (mlm_logits (M, V) at the M picked positions, their targets (M,), relevance_logits (B, 3),
        labels (B,))."""
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        picked = mlm_targets != -100  # (B, T); the vocabulary projection runs only where it is needed
        mlm_logits = self.mlm_head(hidden[picked])  # (M, V)
        pair_vector = pool_pair(hidden, attention_mask, token_type_ids, self.config.pooling)  # (B, H)
        return mlm_logits, mlm_targets[picked], self.relevance_head(pair_vector), relevance_targets
