"""Cross-encoders: BERT and SA-BERT score ``[CLS] context [SEP] response [SEP]`` with one logit.

BERT-FP is the same model started from a post-trained encoder (``CrossEncoderConfig.init``).

References: SPEC "Models"; Gu et al. 2020 (SA-BERT) sec. 3; Han et al. 2021 (BERT-FP) sec. 3.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from hashbert.config import CrossEncoderConfig, config_to_dict
from hashbert.models.encoder import initial_weights_dir, load_backbone, load_tokenizer, pool_tokens
from hashbert.models.modes import eval_mode
from hashbert.models.pair_tokens import PairTokenizer, longest_first
from hashbert.models.serialization import load_backbone_model, save_model_dir

logger = logging.getLogger(__name__)

MODEL_TYPE = "cross_encoder"


def segment_product(hidden: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
    """(B, T, H) token vectors of joined pairs -> (B, H): unit-length context mean * unit-length response mean.

    Context tokens are the real tokens of type 0 ([CLS], the turns and their [SEP]s), response tokens
    those of type 1; the vectors come from one pass over the joined pair, so each side has attended to
    the other. Summed over H, the product is the cosine of the two means.
    """
    real = attention_mask.to(hidden.dtype)
    response = real * token_type_ids.to(hidden.dtype)
    context = real - response
    means = [
        F.normalize((hidden * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0), dim=-1)
        for m in (context, response)
    ]
    return means[0] * means[1]


def pool_pair(
    hidden: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor, pooling: str
) -> torch.Tensor:
    """(B, T, H) token vectors of joined pairs -> (B, H) pair vectors: ``cls``, ``mean`` or ``segments``."""
    if pooling == "segments":
        return segment_product(hidden, attention_mask, token_type_ids)
    return pool_tokens(hidden, attention_mask, pooling)


@torch.no_grad()
def start_as_scaled_cosine(layer: nn.Linear, scale: float, offset: float, signs: Sequence[float] = (1.0,)) -> None:
    """Set ``layer``, read over ``segment_product`` vectors, to output k = signs[k] * scale * (cosine - offset).

    The product of unit vectors has entries ~1/H and sums to the cosine of the two sides, so a constant
    weight turns it into the backbone's own similarity; a randomly started layer reads ~0 from it and,
    at fine-tuning learning rates, stays at chance.
    """
    signs_t = torch.tensor(signs, dtype=layer.weight.dtype)  # (out,)
    layer.weight.copy_(scale * signs_t[:, None].expand_as(layer.weight))
    layer.bias.copy_(-scale * offset * signs_t)


class CrossEncoder(nn.Module):
    """A transformer over the joined pair, a linear layer on its pair vector; SA-BERT adds speaker embeddings.

    Build it with ``CrossEncoder.from_base(config)`` or ``CrossEncoder.load(directory)``.
    """

    def __init__(self, config: CrossEncoderConfig, backbone: nn.Module, tokenizer) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.tokenizer = tokenizer
        hidden = int(backbone.config.hidden_size)
        # Zero-initialised: SA-BERT starts exactly as BERT and learns what the speakers add.
        self.speaker_embeddings = nn.Embedding(2, hidden) if config.speakers else None
        if self.speaker_embeddings is not None:
            nn.init.zeros_(self.speaker_embeddings.weight)
        self.dropout = nn.Dropout(config.dropout)
        self.score_layer = nn.Linear(hidden, 1)
        if config.pooling == "segments":
            # At step 0 the pair is ranked by the backbone's own similarity of the two sides (for a
            # sentence-transformer, already well above chance), which a randomly started head is not.
            start_as_scaled_cosine(self.score_layer, config.segments_scale, config.segments_offset)
        self.pair_tokenizer = PairTokenizer(
            tokenizer, config.input.max_length, config.input.max_response_length, config.input.max_context_turns
        )

    # ------------------------------------------------------------------ construction and persistence

    @classmethod
    def from_base(cls, config: CrossEncoderConfig | None = None) -> CrossEncoder:
        """A cross-encoder whose transformer starts from ``config.backbone.init`` (if set).

        Otherwise from the pretrained ``config.backbone.model``.
        """
        config = config or CrossEncoderConfig()
        model_dir = initial_weights_dir(config.backbone.model, config.backbone.init)
        return cls(config, load_backbone(model_dir), load_tokenizer(model_dir))

    def save(self, directory: str | Path) -> Path:
        """Write config, safetensors weights, backbone config and tokenizer, with checksums (atomic)."""
        return save_model_dir(directory, MODEL_TYPE, config_to_dict(self.config), self, self.tokenizer, self.backbone)

    @classmethod
    def load(cls, directory: str | Path) -> CrossEncoder:
        """Load a directory written by ``save``; checksums are verified first."""
        return load_backbone_model(
            directory, MODEL_TYPE, CrossEncoderConfig,
            lambda config, backbone_dir: cls(
                config, load_backbone(backbone_dir, with_weights=False), load_tokenizer(backbone_dir)
            ),
            saved_before={"pooling": "cls"},  # cross-encoders saved before --pooling existed read [CLS]
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def row_name(self) -> str:
        """Default table row name: SA-BERT with speakers, BERT-FP from a post-trained encoder, else BERT."""
        if self.config.speakers:
            return "SA-BERT"
        return "BERT-FP" if self.config.backbone.init else "BERT"

    # ------------------------------------------------------------------ forward

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor,
        speaker_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args: (B, T) int64 tensors from ``self.pair_tokenizer.batch``. Returns: (B,) float32 logits."""
        inputs = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if self.speaker_embeddings is None:
            inputs["input_ids"] = input_ids
        else:
            words = self.backbone.get_input_embeddings()(input_ids)  # (B, T, H); positions are added inside
            inputs["inputs_embeds"] = words + self.speaker_embeddings(speaker_ids)
        hidden = self.backbone(**inputs).last_hidden_state  # (B, T, H)
        pair_vector = pool_pair(hidden, attention_mask, token_type_ids, self.config.pooling)  # (B, H)
        return self.score_layer(self.dropout(pair_vector)).squeeze(-1)

    def tokenize(self, contexts, responses, context_speakers=None, response_speakers=None) -> dict[str, torch.Tensor]:
        """The model's inputs for (B,) pairs (see ``PairTokenizer.batch``); speaker ids only for SA-BERT."""
        batch = self.pair_tokenizer.batch(contexts, responses, context_speakers, response_speakers)
        if self.speaker_embeddings is None:
            batch.pop("speaker_ids")
        return batch

    def collate(self, examples: Sequence) -> dict:
        """``(ContextResponse, label)`` examples -> ``{"inputs": model inputs, "labels": (B,) float32}``."""
        pairs = [pair for pair, _ in examples]
        inputs = self.tokenize(
            [p.context for p in pairs], [p.response for p in pairs],
            [p.context_speakers for p in pairs], [p.response_speaker for p in pairs],
        )
        return {"inputs": inputs, "labels": torch.tensor([float(label) for _, label in examples])}

    # ------------------------------------------------------------------ inference

    @torch.inference_mode()
    def score_pairs(
        self, contexts: Sequence[Sequence[str]], responses: Sequence[str], context_speakers=None,
        batch_size: int = 64, progress: bool = False,
    ) -> np.ndarray:
        """Logit of every (context, response) pair -> (N,) float32 (higher = more likely the true response)."""
        n = len(contexts)
        context_speakers = context_speakers or [None] * n
        order = longest_first(contexts, responses)
        out = np.empty(n, dtype=np.float32)
        with eval_mode(self):
            for start in tqdm(range(0, n, batch_size), desc="pairs", disable=not progress, unit="batch"):
                idx = order[start : start + batch_size]
                batch = self.tokenize(
                    [contexts[i] for i in idx], [responses[i] for i in idx], [context_speakers[i] for i in idx]
                )
                out[idx] = self(**{k: v.to(self.device) for k, v in batch.items()}).float().cpu().numpy()
        return out

    def rerank_scores(self, groups: Sequence, batch_size: int = 64, progress: bool = False) -> list[np.ndarray]:
        """Logit of every candidate of every ``RerankGroup`` (the group's recorded speakers, if any, are used)."""
        contexts = [g.context for g in groups for _ in g.candidates]
        responses = [c for g in groups for c in g.candidates]
        speakers = [g.speakers for g in groups for _ in g.candidates]
        flat = self.score_pairs(contexts, responses, speakers, batch_size, progress)
        bounds = np.cumsum([0, *(len(g.candidates) for g in groups)])
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
