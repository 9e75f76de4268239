"""Trainer: one loop for every hashbert model (AdamW, warm-up, clipping, validation, exact resume).

The trainer knows nothing about what it trains: it gets examples, a ``collate`` that turns a list of
them into tensors, and a ``compute_loss(batch) -> scalar``. Losses stay small modules over tensors.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hashbert.config import TrainConfig, config_to_dict
from hashbert.training.checkpoint import TrainState, latest_checkpoint, load_checkpoint, save_checkpoint
from hashbert.training.schedules import warmup_linear_scheduler

logger = logging.getLogger(__name__)

# Fields that change which batches are drawn or how steps are taken: resuming with other values
# would silently not be a resume.
_RESUME_FIELDS = ("lr", "weight_decay", "batch_size", "warmup_ratio", "grad_clip", "seed")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def batch_order(n: int, batch_size: int, seed: int, epoch: int, key: Callable[[int], Hashable] | None = None):
    """Seeded batches of example indices for one epoch.

    With ``key`` (e.g. the response text) no batch holds two examples with the same key, because a
    duplicate response would be a false in-batch negative; a clashing example moves to a later batch.
    The last incomplete batch is dropped (a batch of one has no negatives).
    """
    perm = np.random.default_rng([seed, epoch]).permutation(n).tolist()
    if key is None:
        return [perm[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    batches, current, seen, deferred = [], [], set(), []
    for idx in perm:
        queue = [*deferred, idx] if deferred else [idx]
        deferred = []
        for j in queue:
            k = key(j)
            if k in seen:
                deferred.append(j)
                continue
            current.append(j)
            seen.add(k)
            if len(current) == batch_size:
                batches.append(current)
                current, seen = [], set()
    return batches


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    """Fit ``model`` on ``examples`` with ``compute_loss``; checkpoints under ``output_dir`` make it resumable.

    Args:
        model: the module whose trainable parameters are optimised.
        compute_loss: ``batch -> scalar tensor`` (batch = ``collate(examples)`` moved to the device).
        examples: the training examples; batches are drawn from them by ``batch_order``.
        collate: list of examples -> (nested dict of) tensors.
        config: optimisation settings.
        output_dir: where checkpoints go.
        evaluator: optional ``model -> dict[str, float]`` run every ``eval_every`` steps and at the end.
        dedupe_key: optional ``example -> key``; no batch holds two examples with equal keys.
    """

    def __init__(
        self,
        model: nn.Module,
        compute_loss: Callable[[Any], torch.Tensor],
        examples: Sequence,
        collate: Callable[[list], Any],
        config: TrainConfig,
        output_dir: str | Path,
        evaluator: Callable[[nn.Module], dict[str, float]] | None = None,
        dedupe_key: Callable[[Any], Hashable] | None = None,
    ) -> None:
        self.model, self.compute_loss, self.examples, self.collate = model, compute_loss, examples, collate
        self.config, self.output_dir, self.evaluator = config, Path(output_dir), evaluator
        self.key = (lambda i: dedupe_key(examples[i])) if dedupe_key else None
        self.device = resolve_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.batches_per_epoch = len(batch_order(len(examples), config.batch_size, config.seed, 0, self.key))
        if self.batches_per_epoch == 0:
            raise ValueError(f"{len(examples)} examples make no full batch of {config.batch_size}")
        epoch_steps = config.epochs * self.batches_per_epoch
        self.total_steps = min(config.max_steps, epoch_steps) if config.max_steps else epoch_steps
        self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)
        warmup = math.ceil(config.warmup_ratio * self.total_steps)
        self.scheduler = warmup_linear_scheduler(self.optimizer, self.total_steps, warmup)
        self.state = TrainState()

    def _resume(self) -> None:
        path = latest_checkpoint(self.output_dir)
        if path is None:
            torch.manual_seed(self.config.seed)
            return
        state, saved_config = load_checkpoint(path, self.model, self.optimizer, self.scheduler)
        changed = [k for k in _RESUME_FIELDS if saved_config.get(k) != getattr(self.config, k)]
        if changed:
            raise ValueError(
                f"{path} was written with other {', '.join(changed)} "
                f"({', '.join(f'{k}={saved_config.get(k)!r}' for k in changed)}); "
                "use the same settings to resume, or another --out to start afresh"
            )
        self.state = state
        logger.info("resumed from %s at step %d", path, state.step)

    def _checkpoint(self) -> None:
        save_checkpoint(
            self.output_dir, self.model, self.optimizer, self.scheduler, self.state,
            config_to_dict(self.config), keep=self.config.keep_checkpoints,
        )

    def _validate(self) -> None:
        if self.evaluator is None:
            return
        metrics = self.evaluator(self.model)
        self.model.train()
        self.state.validations.append({"step": self.state.step, **metrics})
        logger.info("step %d validation: %s", self.state.step, {k: round(v, 4) for k, v in metrics.items()})

    def _train_step(self, indices: list[int]) -> float:
        batch = _to_device(self.collate([self.examples[i] for i in indices]), self.device)
        loss = self.compute_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def _next_batch(self) -> list[int]:
        state = self.state
        if self._epoch_cached != state.epoch:
            self._batches = batch_order(len(self.examples), self.config.batch_size, self.config.seed, state.epoch, self.key)
            self._epoch_cached = state.epoch
        if state.batch_in_epoch >= len(self._batches):
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            return self._next_batch()
        return self._batches[state.batch_in_epoch]

    def fit(self, stop_after: int | None = None) -> TrainState:
        """Train to ``total_steps``, resuming from the latest checkpoint under ``output_dir`` if there is one.

        Args:
            stop_after: stop (with a checkpoint) after this many steps of *this call*, as an
                interruption would; the next ``fit`` continues exactly where this one stopped.
        """
        self._resume()
        cfg, state = self.config, self.state
        self._epoch_cached = -1
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=state.step, disable=not cfg.progress, desc="train", unit="step")
        started, steps_this_call, saved_at = time.perf_counter(), 0, -1
        try:
            while state.step < self.total_steps and steps_this_call != stop_after:
                loss = self._train_step(self._next_batch())
                state.step, state.batch_in_epoch, steps_this_call = state.step + 1, state.batch_in_epoch + 1, steps_this_call + 1
                state.losses.append(loss)
                state.loss_ema = loss if state.loss_ema is None else 0.95 * state.loss_ema + 0.05 * loss
                bar.update(1)
                bar.set_postfix(loss=f"{state.loss_ema:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if cfg.eval_every and state.step % cfg.eval_every == 0 and state.step < self.total_steps:
                    self._validate()
                if cfg.save_every and state.step % cfg.save_every == 0:
                    self._checkpoint()
                    saved_at = state.step
        except KeyboardInterrupt:
            state.seconds += time.perf_counter() - started
            self._checkpoint()
            logger.warning("interrupted at step %d; checkpoint saved, run the same command again to resume", state.step)
            raise
        finally:
            bar.close()
        state.seconds += time.perf_counter() - started
        if state.step >= self.total_steps:
            self._validate()
        if saved_at != state.step or self.evaluator is not None:
            self._checkpoint()
        return state

    def summary(self) -> dict[str, Any]:
        """Plain dict of what was trained, for the run's report."""
        return {
            "examples": len(self.examples), "total_steps": self.total_steps, "device": str(self.device),
            "state": dataclasses.asdict(self.state), "config": config_to_dict(self.config),
        }
