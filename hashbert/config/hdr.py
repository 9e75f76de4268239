"""HDR-BERT: utterances encoded one by one and combined by an aggregator; hashing on top of it."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from hashbert.config.encoder import EncoderConfig
from hashbert.config.fields import Config, embedded, option, required
from hashbert.config.hashing import HashConfig, SimilarityForm

Aggregator = Literal["trs", "trs-mv", "colbert", "gpt-mv"]
HdrHashRecipe = Literal["bpr", "similarity", "vae"]
HDR_AGGREGATORS: tuple[str, ...] = typing.get_args(Aggregator)
HDR_HASH_RECIPES: tuple[str, ...] = typing.get_args(HdrHashRecipe)


@dataclass(frozen=True)
class HdrConfig(Config):
    """HDR-BERT: utterances encoded one by one, their cached vectors combined by a light aggregator.

    ``encoder.max_context_turns`` bounds the history (training, scoring and the incremental cache alike);
    ``encoder.max_response_length``, ``pooling`` and ``normalize`` apply as in DR-BERT.
    """

    encoder: EncoderConfig = embedded(EncoderConfig)
    aggregator: Aggregator = option(
        "trs-mv",
        "trs: one pooled vector per utterance, Transformer aggregator; trs-mv: m vectors per utterance, one context "
        "vector out; colbert: m context vectors out and m per response, MaxSim score; gpt-mv: a causal Transformer "
        "over m vectors per utterance, read at its last position",
    )
    utterance_length: int = option(
        48, "tokens kept per utterance (32-64 in the research); long turns keep their end", minimum=8, maximum=512
    )
    vectors_per_utterance: int = option(
        5, "m: vectors kept per utterance (and per response for colbert): slot 0 is the pooled vector, then tokens "
        "1..m-1", minimum=1,
    )
    utterance_layers: int = option(
        0, "a lighter per-turn encoder: keep N of the utterance encoder's transformer layers, its first and its "
        "last N-1 (0: all of them); the response encoder keeps every layer", minimum=0,
    )
    layers: int = option(
        3, "aggregator Transformer layers (1: the light per-turn option; the aggregator's FLOPs grow with layers)",
        minimum=1,
    )
    heads: int = option(12, "aggregator attention heads (must divide the encoder's hidden size)", minimum=1)
    ffn_dim: int = option(0, "aggregator feed-forward width; 0: 4 x the encoder's hidden size", minimum=0)
    dropout: float = option(0.1, "dropout in the aggregator and before the merge layer", minimum=0.0, maximum=0.999)
    shared: bool = option(False, "one encoder for utterances and responses (set from the DR-BERT it starts from)")
    history_decay: float = option(
        0.3, "skip path: the d-th previous turn's pooled vector is added to the context vector with a learned weight "
        "initialised to history_decay^d (0: no skip path, the aggregator alone carries the history)",
        minimum=0.0, maximum=0.999,
    )
    temperature: float = option(
        0.05, "softmax temperature of the in-batch loss on cosine (or MaxSim) scores", minimum=1e-6
    )

    def validate(self) -> None:
        if self.vectors_per_utterance > self.utterance_length:
            raise ValueError(
                f"vectors_per_utterance must be <= utterance_length, got {self.vectors_per_utterance}"
            )
        if self.utterance_layers and self.shared:
            raise ValueError("utterance_layers needs separate towers: a shared encoder also encodes the responses")
        if self.encoder.max_context_turns < 1:
            raise ValueError("HDR needs a bounded history: max_context_turns must be >= 1")

    @property
    def slots(self) -> int:
        """Vectors kept per utterance: 1 for ``trs``, else ``vectors_per_utterance``."""
        return 1 if self.aggregator == "trs" else self.vectors_per_utterance

    @property
    def max_turns(self) -> int:
        """The history bound: the newest ``max_context_turns`` utterances are kept."""
        return self.encoder.max_context_turns


@dataclass(frozen=True)
class HdrInitConfig(Config):
    """Where an HDR run starts and how fast its new layers learn."""

    dual_encoder: str = option(
        "", "trained DR-BERT directory: its context tower encodes utterances, its response tower responses "
        "(empty: both start from the pretrained --model)"
    )
    aggregator_lr: float = option(
        1e-3, "peak learning rate of the randomly initialised aggregator and merge layers", minimum=1e-12
    )
    distill_weight: float = option(
        0.0, "weight of a KL term pulling HDR's in-batch score distribution towards the --dual-encoder's (its "
        "vectors of the training pairs are encoded once into OUT/cache); 0: off", minimum=0.0
    )
    freeze_utterance_encoder: bool = option(
        False, "keep the utterance encoder (the --dual-encoder's context tower) as it starts: only the aggregator "
        "and the response tower train, so hard negatives are learnt through the history, not by re-encoding the "
        "newest turn (needs separate towers)"
    )
    distill_negatives: bool = option(
        False, "with --distill-weight and --hard-negatives bm25: the KL term also covers each context's mined "
        "negatives, scored by the --dual-encoder's response tower (no gradient), so HDR learns the DR-BERT's "
        "ranking of the on-topic candidates, not only their labels (single-vector aggregators)"
    )


@dataclass(frozen=True)
class HdrHashTrainConfig(Config):
    """Hashing heads on a frozen HDR model: which model, which recipe, the recipe's weights."""

    hdr: str = required("trained HDR model directory (frozen; its vectors are encoded once and cached)")
    recipe: HdrHashRecipe = option(
        "bpr",
        "bpr: margin ranking on codes + float context . codes cross-entropy; similarity: the similarity-preserving "
        "loss alone; vae: similarity + quantization + decoder reconstruction MSE (the seed's VAELoss)",
    )
    margin: float = option(0.1, "bpr: ranking margin on h_c . h_r / b", minimum=0.0)
    candidate_weight: float = option(1.0, "bpr: weight of the ranking loss on codes", minimum=0.0)
    rerank_weight: float = option(1.0, "bpr: weight of the float context . codes cross-entropy", minimum=0.0)
    similarity: SimilarityForm = option("softmax", "similarity/vae: form of the similarity-preserving term")
    temperature: float = option(
        0.05, "similarity/vae softmax form: logits are h_c . h_r / (b * temperature)", minimum=1e-6
    )
    quantization_weight: float = option(0.1, "vae: weight of the quantization term mean (|h| - 1)^2", minimum=0.0)
    reconstruction_weight: float = option(1.0, "vae: weight of the decoders' MSE to the dense vectors", minimum=0.0)
    cache_dir: str = option("", "cache of encoded HDR vectors (default: <out>/cache)")
    encode_batch_size: int = option(64, "batch size when encoding texts into HDR vectors", minimum=1)


@dataclass(frozen=True)
class HdrHashConfig(Config):
    """What a saved HDR hashing model records: its hasher (trained heads or LSH) and the frozen HDR it reads."""

    hash: HashConfig = embedded(HashConfig)
    hasher: Literal["heads", "lsh"] = option("heads", "heads (trained hashing heads) or lsh (random hyperplanes)")
    in_dim: int = option(384, "dense vector size of the HDR model", minimum=1)
    decoders: bool = option(False, "whether the heads have decoders")
    recipe: str = option("", "how the heads were trained (bpr, similarity, vae); empty for lsh")
    lsh_seed: int = option(0, "lsh: seed of the hyperplanes")
    encoder_path: str = option("", "the HDR model directory (absolute)")
    encoder_checksums_sha256: str = option("", "sha256 of that directory's checksums.json, checked on load")
    encoder_embedded: bool = option(False, "always False: the HDR model is referenced, never copied")
