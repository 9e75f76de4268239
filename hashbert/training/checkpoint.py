"""Resumable trainer checkpoints: model, optimiser, scheduler, RNG and loop position, written atomically.

Layout: ``<output>/checkpoints/step-0000500/`` holding ``model.safetensors``, ``optimizer.pt`` (tensors and
numbers only, read back with ``torch.load(weights_only=True)``), ``rng.safetensors``, ``state.json`` and
``checksums.json``; ``<output>/checkpoints/LATEST`` names the newest complete one. ``state.json`` also
records the run's settings fingerprint (``training.fingerprint``) that a resume checks.
"""

from __future__ import annotations

import logging
import re
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
    remove_artefact,
    remove_stale_temporaries,
    verify_checksums,
    write_checksums,
    write_json,
)

logger = logging.getLogger(__name__)

LATEST = "LATEST"
_STEP = re.compile(r"step-(\d+)")
_LATEST_TEMPORARY = re.compile(rf"\.{LATEST}\.[0-9a-f]{{8}}\.tmp")  # atomic_write's temporary


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


def rng_state() -> dict[str, torch.Tensor]:
    """This process's torch (and CUDA) RNG state."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _rank_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Rank 0's states under their own names (``torch``, ``cuda``: a one-process file is unchanged), rank r's
    as ``torch.r``, ``cuda.r``."""
    return {name if rank == 0 else f"{name}.{rank}": tensor
            for rank, state in enumerate(states) for name, tensor in state.items()}


def _set_rng_state(states: dict[str, torch.Tensor], rank: int = 0) -> None:
    state = {name: states.get(name if rank == 0 else f"{name}.{rank}") for name in ("torch", "cuda")}
    if state["torch"] is None:
        raise ArtefactError(f"checkpoint holds no RNG state for process {rank}")
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(
    root: str | Path, model: nn.Module, optimizer, scheduler, state: TrainState, config: dict[str, Any], keep: int = 2,
    fingerprint: dict[str, Any] | None = None, rng_states: list[dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write a checkpoint under ``root/checkpoints``, point LATEST at it, keep it and the ``keep - 1`` before it.

    Args:
        root: the run's output directory.
        model, optimizer, scheduler, state: what the checkpoint restores.
        config: the ``TrainConfig`` as a dict.
        keep: checkpoints kept on disk (>= 1: the one LATEST names is never removed).
        fingerprint: the run's settings (``Trainer.fingerprint``), compared on resume.
        rng_states: every process's ``rng_state()`` by rank (multi-process runs); default: this process's.

    Raises:
        ValueError: ``keep < 1``; nothing is written.
    """
    if keep < 1:
        raise ValueError(f"keep_checkpoints must be >= 1 (the checkpoint LATEST names is always kept), got {keep}")
    ckpt_root = Path(root) / "checkpoints"
    path = ckpt_root / f"step-{state.step:07d}"
    with atomic_directory(path, kind="checkpoint") as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        with atomic_write(tmp / "optimizer.pt") as handle:
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, handle)
        save_file(_rank_states(rng_states or [rng_state()]), str(tmp / "rng.safetensors"))
        write_json(tmp / "state.json", {"state": asdict(state), "config": config, "fingerprint": fingerprint})
        write_checksums(tmp, ["model.safetensors", "optimizer.pt", "rng.safetensors", "state.json"])
    with atomic_write(ckpt_root / LATEST, "w") as handle:
        handle.write(path.name + "\n")
    _prune(ckpt_root, state.step, keep)
    logger.info("checkpoint saved: %s", path)
    return path


def _prune(ckpt_root: Path, current: int, keep: int) -> None:
    """Remove every checkpoint but ``current`` and the ``keep - 1`` before it.

    Why by step relative to ``current`` and not the newest names overall: ``step-*`` directories numbered
    after ``current`` (left by an abandoned longer run, or written just before a kill could update LATEST)
    would otherwise push out the checkpoint LATEST names. They can never be resumed from, so they go too.
    """
    steps = {int(m[1]): p for p in ckpt_root.iterdir() if (m := _STEP.fullmatch(p.name)) and p.is_dir()}
    earlier = sorted(step for step in steps if step < current)
    doomed = earlier[: max(0, len(earlier) - (keep - 1))] + sorted(step for step in steps if step > current)
    for step in doomed:
        if step > current:
            logger.info("removing %s: numbered after the checkpoint just written, left by another run", steps[step])
        remove_artefact(steps[step])  # the link and its version (rmtree refuses a symlink)


def remove_stale_checkpoint_files(root: str | Path) -> None:
    """Remove what killed checkpoint writes left under ``root/checkpoints`` (temporaries, unlinked versions).

    Why: a kill during a save leaves a temporary as large as a checkpoint that nothing would ever remove.
    Only hashbert's own names are touched: ``.step-*`` leftovers of dead writers (``remove_stale_temporaries``)
    and ``.LATEST.<hex8>.tmp``. Call it before a run writes there (no reader of an old version remains).
    """
    ckpt_root = Path(root) / "checkpoints"
    if not ckpt_root.is_dir():
        return
    remove_stale_temporaries(ckpt_root, "step-*", grace_s=0.0)
    for leftover in ckpt_root.iterdir():
        if _LATEST_TEMPORARY.fullmatch(leftover.name) and leftover.is_file():
            leftover.unlink(missing_ok=True)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The directory LATEST names, or None when there is no checkpoint yet."""
    pointer = Path(root) / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    if not path.is_dir():
        raise ArtefactError(f"{pointer}: names {path.name}, which does not exist")
    return path


def load_checkpoint(
    path: str | Path, model: nn.Module, optimizer, scheduler, rank: int = 0
) -> tuple[TrainState, dict[str, Any]]:
    """Restore model, optimiser, scheduler and process ``rank``'s RNG in place; return the loop state and the
    saved config."""
    path = verify_checksums(path, required=("model.safetensors", "optimizer.pt", "rng.safetensors", "state.json"))
    load_model(model, str(path / "model.safetensors"), strict=True)
    saved = torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    _set_rng_state(load_file(str(path / "rng.safetensors")), rank)
    payload = read_json(path / "state.json")
    return TrainState(**payload["state"]), payload["config"]


def checkpoint_settings(path: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The ``TrainConfig`` dict and settings fingerprint (None: written before fingerprints) of a checkpoint.

    Read apart from ``load_checkpoint``, before anything is loaded, so that a refused resume leaves the
    model untouched.
    """
    payload = read_json(Path(path) / "state.json")
    return payload["config"], payload.get("fingerprint")
