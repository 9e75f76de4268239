"""Resumable trainer checkpoints: model, optimiser, scheduler, RNG and loop position, written atomically.

Layout: ``<output>/checkpoints/step-0000500/`` holding ``model.safetensors``, ``optimizer.pt`` (tensors and
numbers only, read back with ``torch.load(weights_only=True)``), ``rng.safetensors``, ``state.json`` and
``checksums.json``; ``<output>/checkpoints/LATEST`` names the newest complete one.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from hashbert.io import (
    ArtefactError,
    atomic_directory,
    atomic_write,
    read_json,
    verify_checksums,
    write_checksums,
    write_json,
)

logger = logging.getLogger(__name__)

LATEST = "LATEST"


@dataclass
class TrainState:
    """Where the loop is; enough, with the RNG and optimiser states, to continue bit-for-bit."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    loss_ema: float | None = None
    losses: list[float] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(
    root: str | Path, model: nn.Module, optimizer, scheduler, state: TrainState, config: dict[str, Any], keep: int = 2
) -> Path:
    """Write a checkpoint under ``root/checkpoints`` and point LATEST at it; prune all but the newest ``keep``."""
    ckpt_root = Path(root) / "checkpoints"
    path = ckpt_root / f"step-{state.step:07d}"
    with atomic_directory(path) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        with atomic_write(tmp / "optimizer.pt") as handle:
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, handle)
        save_file(_rng_state(), str(tmp / "rng.safetensors"))
        write_json(tmp / "state.json", {"state": asdict(state), "config": config})
        write_checksums(tmp, ["model.safetensors", "optimizer.pt", "rng.safetensors", "state.json"])
    with atomic_write(ckpt_root / LATEST, "w") as handle:
        handle.write(path.name + "\n")
    for old in sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())[:-keep or None]:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("checkpoint saved: %s", path)
    return path


def latest_checkpoint(root: str | Path) -> Path | None:
    """The directory LATEST names, or None when there is no checkpoint yet."""
    pointer = Path(root) / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    if not path.is_dir():
        raise ArtefactError(f"{pointer}: names {path.name}, which does not exist")
    return path


def load_checkpoint(path: str | Path, model: nn.Module, optimizer, scheduler) -> tuple[TrainState, dict[str, Any]]:
    """Restore model, optimiser, scheduler and RNG in place; return the loop state and the saved config."""
    path = Path(path)
    verify_checksums(path)
    load_model(model, str(path / "model.safetensors"), strict=True)
    saved = torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    _set_rng_state(load_file(str(path / "rng.safetensors")))
    payload = read_json(path / "state.json")
    return TrainState(**payload["state"]), payload["config"]
