"""Hashing: the heads that turn dense vectors into codes, their losses, BPR, and what a saved Hash-BERT records."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from hashbert.config.encoder import EncoderConfig
from hashbert.config.fields import Config, embedded, option, required

Relax = Literal["tanh", "ste", "scaled_tanh", "none"]
SimilarityForm = Literal["distill", "softmax", "mse", "frobenius"]
RELAX_MODES: tuple[str, ...] = typing.get_args(Relax)
SIMILARITY_FORMS: tuple[str, ...] = typing.get_args(SimilarityForm)


def check_n_bits(n_bits: int) -> int:
    """Raise ``ValueError`` unless ``n_bits`` is a multiple of 64 from 64 to 4096; return it."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, int) or not 64 <= n_bits <= 4096 or n_bits % 64:
        raise ValueError(f"n_bits must be a multiple of 64 from 64 to 4096, got {n_bits!r}")
    return n_bits


@dataclass(frozen=True)
class HashConfig(Config):
    """Hashing heads: one MLP per side from the dense vector to ``n_bits`` continuous outputs; codes are signs."""

    n_bits: int = option(256, "code length in bits: a multiple of 64 from 64 to 4096")
    hidden: int = option(
        1024, "hidden width of each head's MLP (the seed's multi_tower_dim); 0: one linear layer", minimum=0
    )
    dropout: float = option(0.1, "dropout after the hidden layer of the heads and decoders", minimum=0, maximum=0.999)
    relax: Relax = option(
        "tanh",
        "how outputs approximate signs in training: tanh; ste (sign forward, tanh gradient); scaled_tanh "
        "(tanh(beta h), beta growing, BPR); none (linear, leave it to the quantization term)",
    )
    normalize_input: bool = option(
        False, "L2-normalise the dense vectors before the heads (the seed's dr-bert normalization)"
    )
    gamma: float = option(0.1, "scaled_tanh only: beta = sqrt(1 + gamma * step) (HashNet schedule)", minimum=0.0)
    tie_init: bool = option(True, "start both heads from the same weights, so bit j means the same on both sides")
    init: Literal["random", "itq"] = option(
        "random", "random: PyTorch's default initialisation; itq (needs --hidden 0): start the linear heads from ITQ "
        "fitted on the training vectors (per-side centring, PCA, rotation), so training refines the best unsupervised "
        "hash",
    )

    def validate(self) -> None:
        check_n_bits(self.n_bits)


@dataclass(frozen=True)
class HashLossConfig(Config):
    """Hash-BERT's loss: similarity preservation + quantization + reconstruction; a weight of 0 switches a term off."""

    similarity: SimilarityForm = option(
        "softmax",
        "similarity term, on S = cos(h_c, h_r) (= h_c.h_r / b on ±1 codes): distill (rows and columns of "
        "softmax(S / temperature) match the DR-BERT's softmax(x_c.x_r / teacher_temperature), KL); softmax (row "
        "cross-entropy of S / temperature, the pair labels only); mse (S toward 1 on "
        "positives and --negative-target elsewhere, both halves weighted equally); frobenius (the literal "
        "||H_c H_r^T - b I||^2 / b^2 averaged over all entries, which lets the off-diagonal dominate)",
    )
    similarity_weight: float = option(1.0, "weight of the similarity-preserving term", minimum=0.0)
    temperature: float = option(
        0.05, "softmax and distill forms: logits are cos(h_c, h_r) / temperature", minimum=1e-6
    )
    teacher_temperature: float = option(
        0.05, "distill form: the DR-BERT's scores are divided by this (its training temperature)", minimum=1e-6
    )
    negative_target: float = option(
        0.0, "mse/frobenius forms: target of cos(h_c, h_r) for non-matching pairs (0 or -1)", minimum=-1.0, maximum=0.0
    )
    quantization_weight: float = option(
        0.1, "weight of the quantization term mean (|h| - 1)^2 (0: off, the seed's 'tanh')", minimum=0.0
    )
    reconstruction_weight: float = option(
        0.1, "weight of the decoder's 1 - cosine to the dense vector (0: off, 'no-kl')", minimum=0.0
    )


@dataclass(frozen=True)
class HashEncoderConfig(Config):
    """Which trained DR-BERT the heads sit on, where its vectors are cached, and whether it stays frozen."""

    dual_encoder: str = required("trained DR-BERT model directory (e.g. runs/dr-bert/model)")
    cache_dir: str = option("", "cache of encoded training/validation vectors (.npy + fingerprint); empty: OUT/cache")
    unfreeze_layers: int = option(
        0, "also fine-tune the top N transformer layers of both towers (slow: encodes every batch); 0 trains the "
        "heads alone on cached vectors", minimum=0,
    )
    encode_batch_size: int = option(64, "batch size when encoding texts into vectors", minimum=1)


@dataclass(frozen=True)
class BprConfig(Config):
    """BPR: encoder and linear hashing layers trained together; candidates by Hamming, re-rank float . code."""

    encoder: EncoderConfig = embedded(EncoderConfig)
    n_bits: int = option(256, "code length in bits: a multiple of 64 from 64 to 4096")
    relax: Literal["scaled_tanh", "ste"] = option(
        "scaled_tanh",
        "scaled_tanh: tanh(beta h) with beta = sqrt(1 + gamma * step); ste: sign forward, tanh gradient",
    )
    gamma: float = option(0.1, "growth rate of beta for scaled_tanh (HashNet schedule)", minimum=0.0)
    margin: float = option(0.1, "margin of the ranking loss on codes (scores h_c.h_r / b, in [-1, 1])", minimum=0.0)
    candidate_weight: float = option(1.0, "weight of the ranking loss on codes (candidate generation)")
    rerank_weight: float = option(1.0, "weight of the cross-entropy of float context . response code (re-rank)")

    def validate(self) -> None:
        check_n_bits(self.n_bits)


@dataclass(frozen=True)
class HashBertConfig(Config):
    """What a saved HashBert records: its heads, the DR-BERT it sits on (by path + checksum, or embedded)."""

    hash: HashConfig = embedded(HashConfig)
    in_dim: int = option(384, "dense vector size of the encoder", minimum=1)
    decoders: bool = option(True, "whether the heads have decoders (the reconstruction term)")
    recipe: Literal["hash_bert", "bpr"] = option(
        "hash_bert", "how it was trained: hash_bert (heads on a DR-BERT) or bpr (jointly)"
    )
    encoder_path: str = option("", "the DualEncoder directory (absolute), or 'dual_encoder' when embedded")
    encoder_checksums_sha256: str = option("", "sha256 of that directory's checksums.json, checked on load")
    encoder_embedded: bool = option(False, "the encoder was fine-tuned and is saved inside the model directory")
