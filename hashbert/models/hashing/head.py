"""HashingHead (dense vector -> n_bits continuous outputs) and Decoder (n_bits -> dense vector).

The head only produces continuous outputs ``h``; codes are ``hashbert.codes.binarize(h)`` (±1, zero
counts as +1) and packing lives in ``hashbert.codes``. How ``h`` approximates a sign while training is
an explicit mode (``relax``), and the BPR ``beta`` comes from ``training.schedules``, never from a
step counter inside the model.

References: Hash-BERT (arXiv 2012.09647) sec. 3.2 (hashing MLP and decoder); BPR (Yamada et al.,
ACL 2021) sec. 3.1 (scaled tanh, HashNet schedule; straight-through sign).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from hashbert.config import RELAX_MODES, check_n_bits

logger = logging.getLogger(__name__)


def sign_pm1(x: torch.Tensor) -> torch.Tensor:
    """±1 signs of a tensor, zero counted as +1 (the convention of ``hashbert.codes.binarize``)."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def straight_through_sign(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` in the forward pass, the gradient of ``tanh(x)`` in the backward pass (BPR's STE)."""
    soft = torch.tanh(x)
    return soft + (sign_pm1(x) - soft).detach()


def relax_outputs(z: torch.Tensor, relax: str, beta: float = 1.0) -> torch.Tensor:
    """Continuous stand-in for ``sign(z)`` while training.

    Args:
        z: (..., n_bits) pre-activations.
        relax: ``tanh``, ``ste`` (hard forward, tanh gradient), ``scaled_tanh`` (``tanh(beta z)``), ``none``.
        beta: the scale of ``scaled_tanh`` (ignored by the other modes).

    Returns:
        (..., n_bits) tensor, same shape as ``z``.
    """
    if relax == "tanh":
        return torch.tanh(z)
    if relax == "ste":
        return straight_through_sign(z)
    if relax == "scaled_tanh":
        return torch.tanh(beta * z)
    if relax == "none":
        return z
    raise ValueError(f"relax must be one of {RELAX_MODES}, got {relax!r}")


def _mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    """Linear -> LeakyReLU -> Dropout -> Linear, or a single Linear when ``hidden`` is 0."""
    if hidden == 0:
        return nn.Sequential(nn.Linear(in_dim, out_dim))
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LeakyReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))


class HashingHead(nn.Module):
    """MLP from a dense vector to ``n_bits`` continuous hash outputs.

    Args:
        in_dim: dense vector size (the encoder's hidden size).
        n_bits: code length, a multiple of 64 from 64 to 4096.
        hidden: hidden width of the MLP; 0 makes the head one linear layer (BPR's hashing layer).
        dropout: dropout after the hidden layer.
        relax: how outputs approximate signs in training (see ``relax_outputs``).
    """

    def __init__(self, in_dim: int, n_bits: int, hidden: int = 1024, dropout: float = 0.1, relax: str = "tanh"):
        super().__init__()
        check_n_bits(n_bits)
        if relax not in RELAX_MODES:
            raise ValueError(f"relax must be one of {RELAX_MODES}, got {relax!r}")
        self.n_bits, self.relax = n_bits, relax
        self.mlp = _mlp(in_dim, hidden, n_bits, dropout)

    def logits(self, vectors: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, n_bits) pre-activations; their signs are the codes."""
        return self.mlp(vectors)

    def forward(self, vectors: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """(B, in_dim) -> (B, n_bits) relaxed outputs ``h`` (what the training losses see)."""
        return relax_outputs(self.logits(vectors), self.relax, beta)

    def float_outputs(self, vectors: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, n_bits) continuous outputs for asymmetric scoring against ±1 codes.

        ``tanh(z)`` for the tanh and STE heads (the soft side of the STE), the raw ``z`` for
        ``scaled_tanh`` (beta has grown until tanh is nearly a sign; BPR re-ranks with the raw
        float vector) and ``none``. Their signs are always the codes.
        """
        z = self.logits(vectors)
        return torch.tanh(z) if self.relax in ("tanh", "ste") else z


class Decoder(nn.Module):
    """MLP from ``n_bits`` hash outputs back to the dense vector (the reconstruction term).

    Args:
        n_bits: hash output size.
        hidden: hidden width (0: one linear layer).
        out_dim: dense vector size.
        dropout: dropout after the hidden layer.
    """

    def __init__(self, n_bits: int, hidden: int, out_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.mlp = _mlp(n_bits, hidden, out_dim, dropout)

    def forward(self, hash_vectors: torch.Tensor) -> torch.Tensor:
        """(B, n_bits) -> (B, out_dim) reconstructed dense vectors."""
        return self.mlp(hash_vectors)
