"""DR-BERT: a dual-encoder (context tower, response tower) scored by dot product.

References: Lan et al., "Exploring Dense Retrieval for Dialogue Response Selection" (arXiv 2110.06612), sec. 3.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hashbert.config import DualEncoderConfig, config_to_dict
from hashbert.models.encoder import TextBatcher, TextEncoder, initial_weights_dir, load_backbone, load_tokenizer
from hashbert.models.modes import eval_mode
from hashbert.models.serialization import load_backbone_model, save_model_dir

logger = logging.getLogger(__name__)

MODEL_TYPE = "dual_encoder"


class DualEncoder(nn.Module):
    """Context and response encoders (separate, or one shared) whose vectors are compared by dot product.

    Build it with ``DualEncoder.from_base(config)`` (pretrained weights of ``config.encoder.init`` or
    ``config.encoder.model``) or ``DualEncoder.load(directory)`` (a saved DR-BERT).
    """

    def __init__(
        self, config: DualEncoderConfig, context_encoder: TextEncoder, response_encoder: TextEncoder, tokenizer
    ):
        super().__init__()
        self.config = config
        self.context_encoder = context_encoder
        self.response_encoder = response_encoder
        self.tokenizer = tokenizer
        self.batcher = TextBatcher(tokenizer, config.encoder)

    # ------------------------------------------------------------------ construction and persistence

    @classmethod
    def _build(cls, config: DualEncoderConfig, model_dir: Path, with_weights: bool) -> DualEncoder:
        enc = config.encoder

        def tower() -> TextEncoder:
            return TextEncoder(load_backbone(model_dir, with_weights), enc.pooling, enc.normalize)

        context = tower()
        response = context if config.shared else tower()
        return cls(config, context, response, load_tokenizer(model_dir))

    @classmethod
    def from_base(cls, config: DualEncoderConfig | None = None) -> DualEncoder:
        """A dual-encoder whose towers both start from the pretrained ``config.encoder.model``."""
        config = config or DualEncoderConfig()
        return cls._build(config, initial_weights_dir(config.encoder.model, config.encoder.init), with_weights=True)

    def save(self, directory: str | Path) -> Path:
        """Write config, safetensors weights, backbone config and tokenizer, with checksums (atomic)."""
        return save_model_dir(
            directory, MODEL_TYPE, config_to_dict(self.config), self, self.tokenizer, self.context_encoder.backbone
        )

    @classmethod
    def load(cls, directory: str | Path) -> DualEncoder:
        """Load a directory written by ``save``; checksums are verified first."""
        return load_backbone_model(
            directory, MODEL_TYPE, DualEncoderConfig,
            lambda config, backbone_dir: cls._build(config, backbone_dir, with_weights=False),
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dim(self) -> int:
        return self.context_encoder.dim

    # ------------------------------------------------------------------ training forward

    def forward(self, context: dict[str, torch.Tensor], response: dict[str, torch.Tensor]):
        """Args: token tensors from ``self.batcher``. Returns: context_vecs (B, H), response_vecs (B, H)."""
        return self.context_encoder(**context), self.response_encoder(**response)

    def collate(self, pairs: Sequence) -> dict[str, dict[str, torch.Tensor]]:
        """ContextResponse pairs -> the keyword arguments of ``forward``."""
        return {
            "context": self.batcher.contexts([p.context for p in pairs]),
            "response": self.batcher.responses([p.response for p in pairs]),
        }

    # ------------------------------------------------------------------ inference

    @torch.inference_mode()
    def _encode(
        self, items: Sequence, tokenize: Callable, tower: TextEncoder, batch_size: int, progress: bool, desc: str
    ):
        def run(tokens: dict[str, torch.Tensor]) -> np.ndarray:
            return tower(**{k: v.to(self.device) for k, v in tokens.items()}).float().cpu().numpy()

        with eval_mode(self):
            return encode_sorted(items, tokenize, run, self.dim, batch_size, progress, desc)

    def encode_contexts(self, contexts: Sequence[Sequence[str]], batch_size: int = 64, progress: bool = False):
        """Contexts (each a sequence of turns) -> (N, H) float32."""
        return self._encode(contexts, self.batcher.contexts, self.context_encoder, batch_size, progress, "contexts")

    def encode_responses(self, responses: Sequence[str], batch_size: int = 128, progress: bool = False):
        """Responses -> (N, H) float32."""
        return self._encode(
            responses, self.batcher.responses, self.response_encoder, batch_size, progress, "responses"
        )

    def rerank_scores(self, groups: Sequence, batch_size: int = 64, progress: bool = False) -> list[np.ndarray]:
        """Dot-product score of every candidate of every group (``RerankGroup``s). Each text is encoded once."""
        return dot_rerank_scores(self, groups, batch_size, progress)


def encode_sorted(
    items: Sequence, tokenize: Callable, run: Callable, dim: int, batch_size: int, progress: bool, desc: str
) -> np.ndarray:
    """Encode ``items`` in batches of similar length: ``run(tokenize(batch)) -> (B, dim)`` float32, rows in order.

    Longest first, so batches hold texts of similar length (less padding), then the order is restored.
    """
    order = sorted(range(len(items)), key=lambda i: -len(str(items[i])))
    out = np.empty((len(items), dim), dtype=np.float32)
    for start in tqdm(range(0, len(items), batch_size), desc=desc, disable=not progress, unit="batch"):
        idx = order[start : start + batch_size]
        out[idx] = run(tokenize([items[i] for i in idx]))
    return out


def dot_rerank_scores(model, groups: Sequence, batch_size: int = 64, progress: bool = False) -> list[np.ndarray]:
    """Per ``RerankGroup``, the dot products of its context and candidates under ``model`` (anything with
    ``encode_contexts`` and ``encode_responses``); each distinct text is encoded once."""
    contexts = list(dict.fromkeys(g.context for g in groups))
    responses = list(dict.fromkeys(c for g in groups for c in g.candidates))
    ctx_row = {c: i for i, c in enumerate(contexts)}
    resp_row = {r: i for i, r in enumerate(responses)}
    ctx_vecs = model.encode_contexts(contexts, batch_size, progress)
    resp_vecs = model.encode_responses(responses, batch_size * 2, progress)
    return [resp_vecs[[resp_row[c] for c in g.candidates]] @ ctx_vecs[ctx_row[g.context]] for g in groups]
