"""The parts of a loaded model that serving uses: a dense encoder (DR-BERT or HDR) and, for hashing models, the
hasher that turns its vectors into codes.

Every model kind a bundle takes reduces to the same two steps: text -> dense vectors (``encoder``), then for
``hash_bert`` / ``hdr_hash`` dense vectors -> continuous hash vectors -> packed sign codes (``hasher``). So
one chunk of encoded responses is stored once as dense vectors, whatever the index will hold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashbert.config.inference import InferenceConfig
from hashbert.config.serving import BUNDLE_MODEL_KINDS
from hashbert.models.hashing.scoring import VectorHasher, codes_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Towers:
    """A model seen by serving.

    Attributes:
        kind: the model's registry type (one of ``BUNDLE_MODEL_KINDS``).
        model: the loaded model (``DualEncoder``, ``HashBert``, ``HdrModel`` or ``HdrHash``).
        encoder: the dense encoder: the ``DualEncoder`` or the ``HdrModel``.
        hasher: the hashing heads or LSH of a hashing model, else None.
    """

    kind: str
    model: Any
    encoder: Any
    hasher: VectorHasher | None

    @property
    def is_hdr(self) -> bool:
        return self.kind in ("hdr", "hdr_hash")

    @property
    def n_bits(self) -> int:
        """Code length (0 for float models)."""
        return 0 if self.hasher is None else int(self.hasher.n_bits)

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    def response_vectors(self, responses: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Responses -> (N, dim) float32 dense vectors."""
        return self.encoder.encode_responses(list(responses), batch_size)

    def context_vectors(self, contexts: Sequence[Sequence[str]]) -> np.ndarray:
        """Contexts (tuples of turns) -> (N, dim) float32, all in one batch (one forward pass; for HDR one pass
        over their distinct utterances)."""
        contexts = [tuple(c) for c in contexts]
        return self.encoder.encode_contexts(contexts, max(1, sum(map(len, contexts))))

    def response_codes(self, vectors: np.ndarray) -> np.ndarray:
        """(N, dim) dense response vectors -> (N, n_bits/8) uint8 packed codes."""
        return codes_of(self.hasher.response_hash_vectors(vectors))

    def context_hash_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(N, dim) dense context vectors -> (N, n_bits) float32 continuous hash vectors (signs = codes)."""
        return np.asarray(self.hasher.context_hash_vectors(vectors), dtype=np.float32)


def load_towers(model_dir: str | Path, inference: InferenceConfig | None = None) -> Towers:
    """Load the model saved in ``model_dir`` for serving, its towers on ``inference.runtime`` (default: auto).

    Raises:
        ValueError: a model kind a bundle cannot serve (cross-encoders, LSH/ITQ over raw vectors) or a
            multi-vector (colbert) HDR model, which scores by MaxSim and has no one vector per text.
        ArtefactError: a damaged model directory.
    """
    from hashbert.models.onnx.runtime import load_inference_model
    from hashbert.models.serialization import model_type_of

    kind = model_type_of(model_dir)
    if kind not in BUNDLE_MODEL_KINDS:
        raise ValueError(f"{model_dir}: a bundle serves {', '.join(BUNDLE_MODEL_KINDS)} models, not {kind!r}")
    model = load_inference_model(model_dir, inference)
    encoder = {"hash_bert": lambda: model.dual_encoder, "hdr_hash": lambda: model.hdr}.get(kind, lambda: model)()
    hasher = {"hash_bert": lambda: model.heads, "hdr_hash": lambda: model.hasher}.get(kind, lambda: None)()
    if kind in ("hdr", "hdr_hash") and encoder.multi_vector:
        raise ValueError(f"{model_dir}: a colbert HDR model scores by MaxSim over several vectors; bundles index one")
    return Towers(kind, model, encoder, hasher)
