"""HashBert: a DualEncoder (DR-BERT) followed by HashHeads: text -> binary codes.

Saved layout (a directory, like every hashbert model): ``config.json`` (type ``hash_bert``, a
``HashBertConfig``), ``model.safetensors`` (the heads only) and ``checksums.json``. The encoder is

* **referenced** when it stayed frozen: ``encoder_path`` is the absolute path of the DR-BERT
  directory and ``encoder_checksums_sha256`` the sha256 of its ``checksums.json``; loading fails
  (``ArtefactError``) if that directory has changed since, so codes never come from another encoder;
* **embedded** when it was fine-tuned (``--unfreeze-layers``, BPR): saved whole under
  ``dual_encoder/`` inside the model directory and covered by the outer checksums.

Scores for the re-rank protocol are negated Hamming distances (``scoring="symmetric"``) or float
context outputs against ±1 response codes (``"asymmetric"``); see ``scoring``.

References: Hash-BERT (arXiv 2012.09647) sec. 3; BPR (ACL 2021) sec. 3.2 for asymmetric re-ranking.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_model
from torch import nn

from hashbert import __version__
from hashbert.config import HashBertConfig, config_from_dict, config_to_dict
from hashbert.io import ArtefactError, artefact_fingerprint, atomic_directory, write_checksums, write_json
from hashbert.models.dual_encoder import DualEncoder
from hashbert.models.hashing.scoring import SCORING_MODES, codes_of, hasher_scores, index_groups
from hashbert.models.hashing.tower_heads import HashHeads
from hashbert.models.serialization import load_weights, read_model_config

logger = logging.getLogger(__name__)

MODEL_TYPE = "hash_bert"
EMBEDDED_DIR = "dual_encoder"


def referencing(config: HashBertConfig, dual_encoder_dir: str | Path) -> HashBertConfig:
    """``config`` pointing at the frozen DR-BERT saved in ``dual_encoder_dir`` (path + checksum)."""
    path = Path(os.path.abspath(dual_encoder_dir))  # not resolve(): that would pin today's saved version
    return dataclasses.replace(
        config, encoder_path=str(path), encoder_checksums_sha256=artefact_fingerprint(path), encoder_embedded=False
    )


class HashBert(nn.Module):
    """DualEncoder + HashHeads.

    Args:
        config: heads and encoder reference.
        dual_encoder: the DR-BERT whose vectors the heads hash.
        heads: the hashing heads (``heads.n_bits`` bits): ``HashHeads``, or their ONNX twin (``OnnxHashHeads``, a
            ``VectorHasher``) in a model loaded for inference on ONNX Runtime.
        scoring: default scoring of ``rerank_scores``: ``symmetric`` or ``asymmetric``.
    """

    def __init__(
        self, config: HashBertConfig, dual_encoder: DualEncoder, heads: HashHeads, scoring: str = "symmetric"
    ):
        super().__init__()
        if scoring not in SCORING_MODES:
            raise ValueError(f"scoring must be one of {SCORING_MODES}, got {scoring!r}")
        self.config, self.dual_encoder, self.heads, self.scoring = config, dual_encoder, heads, scoring

    @property
    def n_bits(self) -> int:
        return self.heads.n_bits

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> Path:
        """Write the model directory atomically (the encoder embedded or referenced, see the module doc)."""
        directory = Path(directory)
        config = self.config
        with atomic_directory(directory, kind=MODEL_TYPE) as tmp:
            if config.encoder_embedded:
                self.dual_encoder.save(tmp / EMBEDDED_DIR)
                embedded = artefact_fingerprint(tmp / EMBEDDED_DIR)
                config = dataclasses.replace(config, encoder_path=EMBEDDED_DIR, encoder_checksums_sha256=embedded)
            header = {"type": MODEL_TYPE, "hashbert_version": __version__, "config": config_to_dict(config)}
            write_json(tmp / "config.json", header)
            save_model(self.heads, str(tmp / "model.safetensors"))
            write_checksums(tmp, [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file()])
        self.config = config
        logger.info("saved %s (%d bits) to %s", MODEL_TYPE, self.n_bits, directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path, scoring: str = "symmetric") -> HashBert:
        """Load a directory written by ``save``; checksums (and the referenced encoder's) are verified."""
        directory = Path(directory)
        config = config_from_dict(HashBertConfig, read_model_config(directory, MODEL_TYPE))
        dual_encoder = DualEncoder.load(resolve_encoder_dir(config, directory))
        heads = HashHeads(config.hash, config.in_dim, config.decoders)
        load_weights(heads, directory)
        model = cls(config, dual_encoder, heads, scoring)
        model.eval()
        return model

    # ------------------------------------------------------------------ training forward

    def forward(self, context: dict[str, torch.Tensor], response: dict[str, torch.Tensor], beta: float = 1.0):
        """Token tensors -> context_vecs (B, H), response_vecs (B, H), ``HashOutputs`` (for joint training)."""
        context_vecs, response_vecs = self.dual_encoder(context, response)
        return context_vecs, response_vecs, self.heads(context_vecs, response_vecs, beta)

    def collate(self, pairs: Sequence) -> dict[str, dict[str, torch.Tensor]]:
        """ContextResponse pairs -> the token tensors of ``forward``."""
        return self.dual_encoder.collate(pairs)

    def trainable_encoder_layers(self, n_layers: int | None) -> None:
        """Freeze the encoder except its top ``n_layers`` transformer layers per tower (None: train it all)."""
        for param in self.dual_encoder.parameters():
            param.requires_grad = n_layers is None
        if n_layers:
            towers = (self.dual_encoder.context_encoder, self.dual_encoder.response_encoder)
            for tower in {id(t): t for t in towers}.values():
                for layer in tower.backbone.encoder.layer[-n_layers:]:
                    for param in layer.parameters():
                        param.requires_grad = True

    # ------------------------------------------------------------------ inference

    def context_hash_vectors(self, contexts: Sequence[Sequence[str]], batch_size: int = 64, progress: bool = False):
        """Contexts -> (N, n_bits) float32 continuous outputs (the asymmetric side)."""
        return self.heads.context_hash_vectors(self.dual_encoder.encode_contexts(contexts, batch_size, progress))

    def encode_context_codes(self, contexts: Sequence[Sequence[str]], batch_size: int = 64, progress: bool = False):
        """Contexts -> (N, n_bits // 8) uint8 packed codes."""
        return codes_of(self.context_hash_vectors(contexts, batch_size, progress))

    def encode_response_codes(self, responses: Sequence[str], batch_size: int = 128, progress: bool = False):
        """Responses -> (N, n_bits // 8) uint8 packed codes."""
        vectors = self.dual_encoder.encode_responses(responses, batch_size, progress)
        return codes_of(self.heads.response_hash_vectors(vectors))

    def rerank_scores(
        self, groups: Sequence, batch_size: int = 64, progress: bool = False, scoring: str | None = None
    ) -> list[np.ndarray]:
        """Per group, (n,) scores: -Hamming (symmetric) or float context . ±1 code (asymmetric); higher = better.

        Equal Hamming distances stay tied (the metrics count ties against the positives).
        """
        index = index_groups(groups)
        context_vecs = self.dual_encoder.encode_contexts(index.contexts, batch_size, progress)
        response_vecs = self.dual_encoder.encode_responses(index.responses, batch_size * 2, progress)
        return hasher_scores(self.heads, context_vecs, response_vecs, index, scoring or self.scoring)


def resolve_encoder_dir(config: HashBertConfig, directory: Path) -> Path:
    """The DualEncoder directory a HashBert config names, checked against its recorded checksum."""
    path = directory / config.encoder_path if config.encoder_embedded else Path(config.encoder_path)
    if not (path / "checksums.json").is_file():
        raise ArtefactError(f"{directory}: its DR-BERT encoder {path} is missing")
    if artefact_fingerprint(path) != config.encoder_checksums_sha256:
        raise ArtefactError(
            f"{directory}: the DR-BERT at {path} changed since the heads were trained on it "
            "(checksums.json differs); retrain the heads or restore that encoder"
        )
    return path

