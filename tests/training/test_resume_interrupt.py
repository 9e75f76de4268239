"""Ctrl-C in the middle of a step: the checkpoint is the one an uninterrupted run saves, and the rerun is exact."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from hashbert.training.checkpoint import latest_checkpoint


def _ctrl_c_during_step(step: int, times: int = 1):
    """A hook that presses Ctrl-C ``times`` times while step ``step`` (1-based) is half done."""

    def hook(trainer) -> None:
        if trainer.state.step == step - 1:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    return hook


def _contents(path) -> dict:
    """What a checkpoint restores: weights, optimiser and scheduler, RNG, loop state (wall time left out)."""
    state = json.loads((path / "state.json").read_text())["state"]
    state.pop("seconds")
    saved = torch.load(path / "optimizer.pt", weights_only=True)
    return {
        "model": load_file(path / "model.safetensors"), "rng": load_file(path / "rng.safetensors"),
        "optimizer": saved["optimizer"], "scheduler": saved["scheduler"], "state": state,
    }


def test_ctrl_c_mid_step_saves_the_uninterrupted_checkpoint_and_resumes_exactly(toy_trainer, tmp_path):
    handler = signal.getsignal(signal.SIGINT)
    reference = toy_trainer(tmp_path / "straight", save_every=1, keep_checkpoints=10)
    expected = reference.fit()

    with pytest.raises(KeyboardInterrupt):
        toy_trainer(tmp_path / "run", hook=_ctrl_c_during_step(3)).fit()
    saved = latest_checkpoint(tmp_path / "run")
    assert saved.name == "step-0000003"  # step 3 finished, then the stop
    torch.testing.assert_close(
        _contents(saved), _contents(tmp_path / "straight" / "checkpoints" / "step-0000003"), rtol=0, atol=0
    )
    assert signal.getsignal(signal.SIGINT) is handler  # the previous handler is back

    resumed = toy_trainer(tmp_path / "run")
    final = resumed.fit()
    assert final.losses == expected.losses
    torch.testing.assert_close(resumed.model.state_dict(), reference.model.state_dict(), rtol=0, atol=0)


def test_second_ctrl_c_stops_at_once_without_saving(toy_trainer, tmp_path):
    out, seen = tmp_path / "run", {}
    press = _ctrl_c_during_step(3, times=2)

    def hook(trainer) -> None:
        if trainer.state.step == 2:
            seen["version"] = os.path.realpath(out / "checkpoints" / "step-0000002")
        press(trainer)

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        toy_trainer(out, hook=hook).fit()
    assert signal.getsignal(signal.SIGINT) is handler
    # nothing written after step 2's regular checkpoint, which is still the very same version
    assert latest_checkpoint(out).name == "step-0000002"
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-0000002"]
    assert os.path.realpath(out / "checkpoints" / "step-0000002") == seen["version"]

    assert toy_trainer(out).fit().losses == toy_trainer(tmp_path / "straight").fit().losses
