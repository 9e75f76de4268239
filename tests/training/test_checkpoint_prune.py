"""Pruning keeps the checkpoint LATEST names: keep >= 1, and step-* numbered after it never push it out."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

from hashbert.training.checkpoint import TrainState, latest_checkpoint, save_checkpoint
from hashbert.training.schedules import warmup_linear_scheduler


def _steps(out) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").glob("step-*"))


@pytest.mark.parametrize("keep", [0, -1])
def test_keep_below_one_is_refused_before_writing(tmp_path, keep):
    model = nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = warmup_linear_scheduler(optimizer, 4, 1)
    with pytest.raises(ValueError, match="keep_checkpoints must be >= 1"):
        save_checkpoint(tmp_path, model, optimizer, scheduler, TrainState(step=2), {}, keep=keep)
    assert latest_checkpoint(tmp_path) is None


@pytest.mark.parametrize("keep", [0, -1])
def test_trainer_refuses_keep_below_one(toy_trainer, tmp_path, keep):
    with pytest.raises(ValueError, match="keep_checkpoints"):
        toy_trainer(tmp_path, keep_checkpoints=keep)


def test_keep_one_leaves_the_latest_and_reruns(toy_trainer, tmp_path):
    toy_trainer(tmp_path, keep_checkpoints=1).fit()
    assert _steps(tmp_path) == ["step-0000008"] and latest_checkpoint(tmp_path).name == "step-0000008"
    assert toy_trainer(tmp_path, keep_checkpoints=1).fit().step == 8  # the rerun finds its checkpoint


@pytest.mark.parametrize("keep", [1, 2])
def test_later_numbered_leftovers_never_push_out_latest(toy_trainer, tmp_path, keep):
    # a longer run in the same --out left step-98 and step-99 behind (or anything copied in as step-*)
    toy_trainer(tmp_path / "other").fit()
    for step in (98, 99):
        shutil.copytree(tmp_path / "other/checkpoints/step-0000008", tmp_path / f"checkpoints/step-{step:07d}")

    state = toy_trainer(tmp_path, keep_checkpoints=keep).fit()
    assert state.step == 8 and latest_checkpoint(tmp_path).name == "step-0000008"
    assert _steps(tmp_path) == ["step-0000006", "step-0000008"][-keep:]  # the leftovers after it are gone too
    assert toy_trainer(tmp_path, keep_checkpoints=keep).fit().step == 8  # the rerun finds its checkpoint
