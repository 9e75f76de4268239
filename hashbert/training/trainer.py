"""Trainer: one loop for every hashbert model (AdamW, warm-up, clipping, validation, exact resume).

The trainer knows nothing about what it trains: it gets examples, a ``collate`` that turns a list of
them into tensors, and a ``compute_loss(batch) -> scalar``. Losses stay small modules over tensors.
Under ``torchrun`` each process trains on its rows of every global batch (``training.distributed``: the
batch convention, the gradient averaging, rank 0 alone writing); a recipe gathers the in-batch negatives.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hashbert.config import TrainConfig, config_to_dict
from hashbert.models.modes import resolve_device
from hashbert.training import distributed
from hashbert.training.checkpoint import (
    TrainState,
    checkpoint_settings,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_checkpoint_files,
    rng_state,
    save_checkpoint,
)
from hashbert.training.fingerprint import compare_settings, describe_changes
from hashbert.training.interrupt import StepBoundaryInterrupt
from hashbert.training.launch import process_count, process_rank
from hashbert.training.schedules import warmup_linear_scheduler

logger = logging.getLogger(__name__)

# Fields that change which batches are drawn or how steps are taken: resuming with other values
# would silently not be a resume. With ``total_steps`` (below) they are the loop's part of the fingerprint;
# device, threads, progress, eval_every, save_every and keep_checkpoints do not change the result.
_RESUME_FIELDS = ("lr", "weight_decay", "batch_size", "warmup_ratio", "grad_clip", "seed")


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
        fingerprint: the recipe's data, model and loss settings and input digests (``run_fingerprint``);
            saved in every checkpoint, a resume with other values is refused.
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
        fingerprint: Mapping[str, Any] | None = None,
    ) -> None:
        self.model, self.compute_loss, self.examples, self.collate = model, compute_loss, examples, collate
        self.config, self.output_dir, self.evaluator = config, Path(output_dir), evaluator
        self.key = (lambda i: dedupe_key(examples[i])) if dedupe_key else None
        if config.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1 (the newest is kept), got {config.keep_checkpoints}")
        distributed.setup()  # torchrun's process group; nothing for one process
        self.processes, self.rank, self.main = process_count(), process_rank(), distributed.is_main()
        self.global_batch = config.batch_size * self.processes  # each process takes batch_size rows of it
        self.device = resolve_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.batches_per_epoch = len(batch_order(len(examples), self.global_batch, config.seed, 0, self.key))
        if self.batches_per_epoch == 0:
            raise ValueError(f"{len(examples)} examples make no full batch of {self.global_batch}")
        epoch_steps = config.epochs * self.batches_per_epoch
        self.total_steps = min(config.max_steps, epoch_steps) if config.max_steps else epoch_steps
        self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)
        warmup = math.ceil(config.warmup_ratio * self.total_steps)
        self.scheduler = warmup_linear_scheduler(self.optimizer, self.total_steps, warmup)
        self.state = TrainState()
        # The LR schedule depends on total_steps, not on epochs or max_steps themselves (batch order is seeded
        # per epoch): another --max-steps that leaves total_steps alone is the same run.
        self.fingerprint: dict[str, Any] = {
            **{k: getattr(config, k) for k in _RESUME_FIELDS}, "total_steps": self.total_steps,
            "examples": len(examples), **(fingerprint or {}),
        }
        if self.processes > 1:  # a one-process fingerprint stays as it was before torchrun training
            self.fingerprint["processes"] = self.processes

    def _resume(self) -> None:
        if self.main:
            remove_stale_checkpoint_files(self.output_dir)
        distributed.barrier()  # the others read LATEST once rank 0 has cleaned up
        path = latest_checkpoint(self.output_dir)
        if path is None:
            distributed.broadcast_parameters(self.model)
            torch.manual_seed(distributed.rank_seed(self.config.seed))
            return
        self._check_settings(path)
        self.state, _ = load_checkpoint(path, self.model, self.optimizer, self.scheduler, self.rank)
        logger.info("resumed from %s at step %d", path, self.state.step)

    def _check_settings(self, path: Path) -> None:
        """Refuse to resume ``path`` with other data, model, loss or loop settings, naming each change.

        Checkpoints written before fingerprints only record the ``TrainConfig``: the loop fields are
        checked and a warning says that the rest could not be.
        """
        saved_config, saved = checkpoint_settings(path)
        written_by = (saved or {}).get("processes", 1)
        if written_by != self.processes:
            raise ValueError(
                f"{path} was written by {written_by} training process(es), this run has {self.processes}; "
                f"resume it with torchrun --nproc-per-node (x nodes) = {written_by}, or use another --out"
            )
        current: Mapping[str, Any] = self.fingerprint
        if saved is None:
            logger.warning(
                "%s was written before settings fingerprints: only %s are checked, not the data, model or loss",
                path, ", ".join(_RESUME_FIELDS),
            )
            saved = {k: saved_config.get(k) for k in _RESUME_FIELDS}
            current = {k: getattr(self.config, k) for k in _RESUME_FIELDS}
        changed, unmatched = compare_settings(saved, current)
        if unmatched:
            logger.warning("%s: settings recorded on one side only, not compared: %s", path, ", ".join(unmatched))
        if changed:
            raise ValueError(
                f"{path} was written with other {describe_changes(changed)}; "
                "use the same settings to resume, or another --out to start afresh"
            )

    def _tick(self) -> None:
        """Add the time since the last tick to ``state.seconds`` (before each checkpoint, so a kill loses none)."""
        now = time.perf_counter()
        self.state.seconds += now - self._clock
        self._clock = now

    def _checkpoint(self) -> None:
        self._tick()
        rng_states = distributed.all_objects(rng_state())  # every process's, so that each resumes its own
        if not self.main:
            return
        save_checkpoint(
            self.output_dir, self.model, self.optimizer, self.scheduler, self.state,
            config_to_dict(self.config), keep=self.config.keep_checkpoints, fingerprint=self.fingerprint,
            rng_states=rng_states,
        )

    def _validate(self) -> None:
        if self.evaluator is None:
            return
        metrics = None
        if self.main:  # rank 0 validates and tells the others, so that every process keeps the same state
            # forked RNG: validating (or not, with another eval_every) must not change the training run
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                metrics = self.evaluator(self.model)
        metrics = distributed.broadcast_object(metrics)
        self.model.train()
        self.state.validations.append({"step": self.state.step, **metrics})
        logger.info("step %d validation: %s", self.state.step, {k: round(v, 4) for k, v in metrics.items()})

    def _train_step(self, indices: list[int]) -> float:
        batch = _to_device(self.collate([self.examples[i] for i in indices]), self.device)
        loss = self.compute_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(self.model)
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def _next_batch(self) -> list[int]:
        """This process's rows of the step's global batch (all of it for one process)."""
        state = self.state
        if self._epoch_cached != state.epoch:
            cfg = self.config
            self._batches = batch_order(len(self.examples), self.global_batch, cfg.seed, state.epoch, self.key)
            self._epoch_cached = state.epoch
        if state.batch_in_epoch >= len(self._batches):
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            return self._next_batch()
        size = self.config.batch_size
        return self._batches[state.batch_in_epoch][self.rank * size : (self.rank + 1) * size]

    def fit(self, stop_after: int | None = None) -> TrainState:
        """Train to ``total_steps``, resuming from the latest checkpoint under ``output_dir`` if there is one.

        Ctrl-C finishes the step in progress, saves the checkpoint an uninterrupted run would save at that
        step (unless it is on disk already) and raises ``KeyboardInterrupt``; a second Ctrl-C stops at once
        without saving. Why: a state caught mid-step (RNG or optimiser advanced, counters not) resumes into
        another run.

        Args:
            stop_after: stop (with a checkpoint) after this many steps of *this call*, as an
                interruption would; the next ``fit`` continues exactly where this one stopped.

        Raises:
            KeyboardInterrupt: after Ctrl-C, once the checkpoint is saved.
            ValueError: the latest checkpoint was written with other settings (see ``fingerprint``).
        """
        self._resume()
        self._clock = time.perf_counter()
        with StepBoundaryInterrupt() as interrupt:
            saved_at = self._loop(stop_after, interrupt)
            # every process decides alike (a Ctrl-C may reach one before another)
            if not distributed.mean_and_any(0.0, interrupt.requested)[1]:
                saved_at = self._finish(saved_at)
            if distributed.mean_and_any(0.0, interrupt.requested)[1]:
                if saved_at != self.state.step:
                    self._checkpoint()
                logger.warning("interrupted at step %d; checkpoint saved, rerun to resume", self.state.step)
                raise KeyboardInterrupt
        return self.state

    def _loop(self, stop_after: int | None, interrupt: StepBoundaryInterrupt) -> int:
        """Take steps until ``total_steps``, ``stop_after`` steps or a Ctrl-C; return the last checkpoint's step."""
        cfg, state = self.config, self.state
        self._epoch_cached = -1
        self.model.train()
        bar = tqdm(
            total=self.total_steps, initial=state.step, disable=not (cfg.progress and self.main), desc="train",
            unit="step",
        )
        saved_at, steps_this_call = state.step, 0
        stop = distributed.mean_and_any(0.0, interrupt.requested)[1]
        try:
            while state.step < self.total_steps and steps_this_call != stop_after and not stop:
                # the loss of the global batch (the mean of the processes'), and a Ctrl-C seen by any of them
                loss, stop = distributed.mean_and_any(self._train_step(self._next_batch()), interrupt.requested)
                state.step, state.batch_in_epoch = state.step + 1, state.batch_in_epoch + 1
                steps_this_call += 1
                state.losses.append(loss)
                state.loss_ema = loss if state.loss_ema is None else 0.95 * state.loss_ema + 0.05 * loss
                bar.update(1)
                bar.set_postfix(loss=f"{state.loss_ema:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if cfg.eval_every and state.step % cfg.eval_every == 0 and state.step < self.total_steps:
                    self._validate()
                if cfg.save_every and state.step % cfg.save_every == 0:
                    self._checkpoint()
                    saved_at = state.step
        finally:
            bar.close()
        return saved_at

    def _finish(self, saved_at: int) -> int:
        """Validate a finished run (once: a rerun of a finished run adds nothing) and checkpoint what is unsaved."""
        state = self.state
        validated = bool(state.validations) and state.validations[-1]["step"] == state.step
        if state.step >= self.total_steps and self.evaluator is not None and not validated:
            self._validate()
            saved_at = -1
        if saved_at != state.step:
            self._checkpoint()
            saved_at = state.step
        self._tick()
        return saved_at

    def summary(self) -> dict[str, Any]:
        """Plain dict of what was trained, for the run's report."""
        return {
            "examples": len(self.examples), "total_steps": self.total_steps, "device": str(self.device),
            "processes": self.processes,
            "state": dataclasses.asdict(self.state), "config": config_to_dict(self.config),
            "fingerprint": self.fingerprint,
        }
