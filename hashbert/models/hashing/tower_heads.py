"""HashHeads: a context head and a response head (plus optional decoders) over dense DR-BERT vectors.

This is the trainable part of Hash-BERT. It works on vectors, not text, so it can be trained on
cached encoder outputs in seconds and scored with ``scoring`` next to LSH and ITQ; ``HashBert``
puts a DualEncoder in front of it for text.

References: Hash-BERT (arXiv 2012.09647) sec. 3.2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hashbert.config import HashConfig
from hashbert.models.hashing.head import Decoder, HashingHead
from hashbert.models.modes import eval_mode

logger = logging.getLogger(__name__)


@dataclass
class HashOutputs:
    """What the heads produce for a batch of (context, response) pairs.

    Attributes:
        context_hash: (B, n_bits) relaxed context outputs h_c.
        response_hash: (B, n_bits) relaxed response outputs h_r.
        context_decoded: (B, dim) decoder output of h_c, or None without decoders.
        response_decoded: (B, dim) decoder output of h_r, or None without decoders.
    """

    context_hash: torch.Tensor
    response_hash: torch.Tensor
    context_decoded: torch.Tensor | None = None
    response_decoded: torch.Tensor | None = None


class HashHeads(nn.Module):
    """Two ``HashingHead``s (context side, response side) and, optionally, a ``Decoder`` per side.

    Args:
        config: head sizes, relaxation and input normalisation.
        in_dim: dense vector size.
        decoders: build the decoders (needed only by the reconstruction term).
    """

    def __init__(self, config: HashConfig, in_dim: int, decoders: bool = True) -> None:
        super().__init__()
        self.config, self.in_dim, self.has_decoders = config, in_dim, decoders

        def head() -> HashingHead:
            return HashingHead(in_dim, config.n_bits, config.hidden, config.dropout, config.relax)

        def decoder() -> Decoder | None:
            return Decoder(config.n_bits, config.hidden, in_dim, config.dropout) if decoders else None

        self.context_head, self.response_head = head(), head()
        self.context_decoder, self.response_decoder = decoder(), decoder()
        if config.tie_init:
            # Two independently initialised heads give the same bit position unrelated meanings on the two
            # sides (random codes that training must first align); identical starting weights begin from a
            # shared random projection, i.e. from LSH quality, and training refines it.
            self.response_head.load_state_dict(self.context_head.state_dict())
            if decoders:
                self.response_decoder.load_state_dict(self.context_decoder.state_dict())

    @torch.no_grad()
    def init_linear(self, projection: np.ndarray, context_mean: np.ndarray, response_mean: np.ndarray) -> None:
        """Set linear heads (``hidden = 0``) to ``z = (x - mean) @ projection`` per side, e.g. from a fitted ITQ.

        Args:
            projection: (dim, n_bits) float; context_mean, response_mean: (dim,) float.
        """
        weight = torch.as_tensor(np.asarray(projection, dtype=np.float32).T)  # (n_bits, dim)
        for head, mean in ((self.context_head, context_mean), (self.response_head, response_mean)):
            if len(head.mlp) != 1:
                raise ValueError("init_linear needs linear heads (hidden = 0)")
            head.mlp[0].weight.copy_(weight)
            head.mlp[0].bias.copy_(-weight @ torch.as_tensor(np.asarray(mean, dtype=np.float32)))

    @property
    def n_bits(self) -> int:
        return self.config.n_bits

    def _inputs(self, vectors: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(vectors, dim=-1) if self.config.normalize_input else vectors

    def forward(self, context_vecs: torch.Tensor, response_vecs: torch.Tensor, beta: float = 1.0) -> HashOutputs:
        """Args: context_vecs, response_vecs: (B, dim) float32 dense vectors. Returns: ``HashOutputs``."""
        h_c = self.context_head(self._inputs(context_vecs), beta)  # (B, n_bits)
        h_r = self.response_head(self._inputs(response_vecs), beta)  # (B, n_bits)
        if not self.has_decoders:
            return HashOutputs(h_c, h_r)
        return HashOutputs(h_c, h_r, self.context_decoder(h_c), self.response_decoder(h_r))

    def float_outputs(self, side: str, vectors: torch.Tensor) -> torch.Tensor:
        """(B, dim) -> (B, n_bits) continuous outputs of the ``context`` or ``response`` head (with gradients):
        what asymmetric scoring uses; their signs are the codes."""
        return getattr(self, f"{side}_head").float_outputs(self._inputs(vectors))

    def context_float_outputs(self, context_vecs: torch.Tensor) -> torch.Tensor:
        """(B, dim) -> (B, n_bits) continuous context outputs, as asymmetric scoring uses them (with gradients)."""
        return self.float_outputs("context", context_vecs)

    @torch.inference_mode()
    def _float_outputs(self, side: str, vectors: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        device = next(self.parameters()).device
        out = np.empty((len(vectors), self.n_bits), dtype=np.float32)
        with eval_mode(self):
            for start in range(0, len(vectors), batch_size):
                rows = np.asarray(vectors[start : start + batch_size], dtype=np.float32)  # (b, dim)
                batch = torch.as_tensor(rows, device=device)
                out[start : start + batch_size] = self.float_outputs(side, batch).float().cpu().numpy()
        return out

    def context_hash_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) float32 dense context vectors -> (n, n_bits) float32 continuous outputs (eval mode)."""
        return self._float_outputs("context", vectors)

    def response_hash_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) float32 dense response vectors -> (n, n_bits) float32 continuous outputs (eval mode)."""
        return self._float_outputs("response", vectors)
