"""Which corpus files feed a training run, and the optimisation loop every recipe shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from hashbert.config.fields import Config, option, required

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


@dataclass(frozen=True)
class DataConfig(Config):
    """Which corpus files feed training and validation."""

    train: str = required("training file in the response-selection format (label \\t utt ... \\t response)")
    valid: str = option("", "validation file with groups of candidates (empty: no periodic validation)")
    expansion: Literal["full", "last"] = option(
        "full", "full: every prefix of each dialogue is a pair; last: the line as written"
    )
    max_train_pairs: int = option(0, "subsample this many training pairs (seeded); 0 uses all", minimum=0)
    max_valid_groups: int = option(200, "validation contexts used for periodic validation; 0 uses all", minimum=0)
    on_error: Literal["raise", "skip"] = option(
        "raise", "malformed corpus lines: raise stops at the first, skip reports and counts"
    )


@dataclass(frozen=True)
class TrainConfig(Config):
    """The optimisation loop: AdamW, linear warm-up and decay, clipping, checkpoints."""

    lr: float = option(5e-5, "peak learning rate of AdamW", minimum=1e-12)
    weight_decay: float = option(0.01, "AdamW weight decay (not applied to biases and LayerNorm)", minimum=0.0)
    batch_size: int = option(
        32, "pairs per batch; the other responses of a batch are each pair's negatives (in-batch needs 2)", minimum=2
    )
    epochs: int = option(1, "passes over the training pairs", minimum=1)
    max_steps: int = option(0, "stop after this many optimiser steps in total; 0 means epochs decide", minimum=0)
    warmup_ratio: float = option(
        0.1, "fraction of the steps spent warming the learning rate up from 0", minimum=0.0, maximum=0.999
    )
    grad_clip: float = option(1.0, "clip the gradient norm to this; 0 disables", minimum=0.0)
    seed: int = option(42, "seed for data order, dropout and sampling")
    eval_every: int = option(0, "validate every N steps (0: only at the end)", minimum=0)
    save_every: int = option(100, "write a resumable checkpoint every N steps (0: only at the end)", minimum=0)
    keep_checkpoints: int = option(2, "how many checkpoints to keep on disk (the newest is always kept)", minimum=1)
    device: str = option("auto", "cpu, cuda, cuda:N, or auto (cuda when available)")
    threads: int = option(0, "torch CPU threads; 0 leaves torch's default", minimum=0)
    progress: bool = option(True, "show a progress bar")

    def validate(self) -> None:
        check_device(self.device)


@dataclass(frozen=True)
class HardNegativeConfig(Config):
    """Per-context hard negatives mixed with the in-batch ones: BM25's or the model's own top-k over the pool."""

    hard_negatives: Literal["none", "bm25", "model"] = option(
        "none", "none: in-batch only; bm25: BM25 top-k of each context over the training turns; model: the current "
        "model's own float top-k over the pool, re-mined every --hard-refresh-every steps (ANCE-style)"
    )
    hard_per_context: int = option(1, "m: hard negatives added to each context's softmax per step", minimum=1)
    hard_depth: int = option(
        10, "each step draws a context's m negatives (seeded) from its top this many eligible pool texts", minimum=1
    )
    hard_fraction: float = option(
        1.0, "share of a context's draws taken from its mined list; the rest are random eligible training turns "
        "(gentler: fewer of the mined false negatives, the same number of extra negatives)", minimum=0.0, maximum=1.0
    )
    hard_refresh_every: int = option(
        100, "model: re-encode the pool and re-mine every N steps with the current weights (0: once, at step 0)",
        minimum=0,
    )
    hard_pool_size: int = option(
        20000, "model: seeded subsample of the training turns encoded as the pool (0: all)", minimum=0
    )
    hard_denoise_model: str = option(
        "", "a trained DR-BERT that vets the mined negatives: one it scores above the context's own response minus "
        "--hard-denoise-margin is dropped as a likely false negative (RocketQA-style denoising); empty: keep all"
    )
    hard_denoise_margin: float = option(
        0.0, "cosine margin of the denoising: keep a negative only if it scores below positive - margin"
    )
    hard_cache_dir: str = option(
        "", "bm25: cache of the BM25 hits (indexing the ~116k Chit-Chat training turns and searching all ~119k "
        "contexts takes ~4 min on 2 cores), reused by a resumed or repeated run with the same pool, contexts and "
        "depth; empty: OUT/cache"
    )

    def validate(self) -> None:
        if self.hard_denoise_model and self.hard_negatives == "none":
            raise ValueError("--hard-denoise-model vets mined negatives: give --hard-negatives bm25 or model")


@dataclass(frozen=True)
class DistillConfig(Config):
    """A trained DR-BERT whose in-batch score distribution the run is pulled towards (listwise distillation)."""

    teacher: str = option(
        "", "trained DR-BERT directory (e.g. an in-batch-only run): a KL term pulls this run's in-batch score "
        "distribution towards its, so hard negatives do not cost the ranking against random candidates; its "
        "vectors of the training pairs are encoded once into OUT/cache; empty: off"
    )
    distill_weight: float = option(1.0, "weight of the --teacher's KL term beside the softmax loss", minimum=0.0)

    def validate(self) -> None:
        if self.teacher and not self.distill_weight:
            raise ValueError("--teacher with --distill-weight 0 distils nothing: give a weight > 0 or no --teacher")


def check_device(device: str) -> str:
    """Raise ``ValueError`` unless ``device`` is auto, cpu, cuda, cuda:N or mps; return it."""
    if not _DEVICE.fullmatch(device):
        raise ValueError(f"device (--device) must be auto, cpu, cuda, cuda:N or mps; got {device!r}")
    return device
