"""Cross-encoders (BERT, SA-BERT), BERT-FP post-training, and the causal LM that judges full-rank results."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from hashbert.config.encoder import BASE_MODEL, BackboneConfig, PairInputConfig
from hashbert.config.fields import Config, embedded, option

CrossPooling = Literal["cls", "mean", "segments"]
CROSS_POOLINGS: tuple[str, ...] = typing.get_args(CrossPooling)


@dataclass(frozen=True)
class CrossEncoderConfig(Config):
    """BERT / SA-BERT: ``[CLS] context [SEP] response [SEP]`` -> a linear layer on the pair vector -> one logit."""

    backbone: BackboneConfig = embedded(BackboneConfig)
    input: PairInputConfig = embedded(PairInputConfig)
    speakers: bool = option(
        False, "SA-BERT: add a 2-entry speaker embedding to the token embeddings (speakers alternate from the first "
        "utterance, or come from the corpus's .speakers sidecar where there is one)"
    )
    dropout: float = option(0.1, "dropout on the pair vector before the scoring layer", minimum=0.0, maximum=0.999)
    pooling: CrossPooling = option(
        "segments", "the pair vector the scoring layer reads: cls (BERT's convention); mean (mean of the token "
        "vectors; what sentence-transformer backbones such as all-MiniLM-L6-v2 were trained to produce); segments "
        "(the elementwise product of the unit-length means of the context's and the response's token vectors, the "
        "scoring layer started as a scaled cosine, so training starts from the backbone's bi-encoder ranking)",
    )
    segments_scale: float = option(
        20.0, "segments pooling: the scoring layer starts as logit = scale * (cosine - offset)"
    )
    segments_offset: float = option(0.3, "segments pooling: the cosine that starts at logit 0 (see --segments-scale)")


@dataclass(frozen=True)
class NegativeSamplingConfig(Config):
    """Labelled pairs for pointwise training: each context's true response plus k sampled negatives."""

    negatives: int = option(
        1, "k: negatives per training context, responses of other training pairs drawn at random", minimum=1
    )
    bm25_negatives: int = option(
        0, "m: hard negatives per training context on top of the k random ones: turns of other training dialogues "
        "that BM25 ranks highest for the context's last turns (the miner of 'train dual --hard-negatives bm25'), "
        "drawn once (seeded) from its top --bm25-depth", minimum=0,
    )
    bm25_depth: int = option(10, "the BM25 negatives are drawn from each context's top this many", minimum=1)


@dataclass(frozen=True)
class PostTrainConfig(Config):
    """BERT-FP post-training: masked LM + 3-way utterance relevance classification on the training dialogues."""

    model: str = option(BASE_MODEL, "encoder to post-train: a local model directory or an installed model package")
    input: PairInputConfig = embedded(lambda: PairInputConfig(max_length=128, max_context_turns=3))
    mlm_probability: float = option(
        0.15, "fraction of (non-special) tokens the masked LM predicts", minimum=1e-6, maximum=0.999
    )
    relevance_weight: float = option(1.0, "weight of the 3-way relevance cross-entropy beside the masked LM")
    examples: int = option(20000, "training examples drawn from the dialogues (seeded)", minimum=2)
    pooling: CrossPooling = option(
        "segments", "the pair vector the relevance head reads (see 'train cross --pooling'); use the cross-encoder's",
    )


@dataclass(frozen=True)
class LanguageModelConfig(Config):
    """A small GPT-2 causal LM over the encoder's tokenizer: the PPL-100 judge."""

    tokenizer: str = option(BASE_MODEL, "whose tokenizer (and, with --init-embeddings, word embeddings) to use")
    layers: int = option(2, "GPT-2 blocks", minimum=1)
    heads: int = option(6, "attention heads (must divide the hidden size)", minimum=1)
    hidden: int = option(384, "hidden size (384 = all-MiniLM's, so its word embeddings can start the LM's)", minimum=1)
    input: PairInputConfig = embedded(lambda: PairInputConfig(max_length=128, max_context_turns=5))
    init_embeddings: bool = option(True, "start the (tied) token embeddings from the encoder's word embeddings")

    def validate(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"heads (--heads) must divide hidden (--hidden), got {self.heads} and {self.hidden}")
