"""A Trainer start removes what killed checkpoint writes left in checkpoints/, and nothing else."""

from __future__ import annotations

import pytest

from hashbert.training.checkpoint import latest_checkpoint

# what a kill leaves (a half-written checkpoint, an old copy, an unlinked version, LATEST's temporary file);
# steps 5, 7 and 99 are never written by the run below, so only the start-up clean-up can remove them
LEFTOVERS = (".step-0000005.0a1b2c3d.tmp", ".step-0000007.old", ".step-0000099.v-00000000000000000001")
KEPT = ("notes.txt", ".mine.0a1b2c3d.tmp", "step-draft")


def _plant(checkpoints) -> None:
    checkpoints.mkdir(parents=True, exist_ok=True)
    for name in LEFTOVERS:
        (checkpoints / name).mkdir()
        (checkpoints / name / "model.safetensors").write_bytes(b"\0" * 1024)
    (checkpoints / ".LATEST.0a1b2c3d.tmp").write_text("step-00")
    (checkpoints / "notes.txt").write_text("mine")
    (checkpoints / ".mine.0a1b2c3d.tmp").mkdir()
    (checkpoints / "step-draft").mkdir()


@pytest.mark.parametrize("resume", [False, True])
def test_start_removes_orphan_temporaries(toy_trainer, tmp_path, resume):
    checkpoints = tmp_path / "checkpoints"
    if resume:
        toy_trainer(tmp_path).fit(stop_after=4)
    _plant(checkpoints)
    assert toy_trainer(tmp_path).fit().step == 8
    names = {p.name for p in checkpoints.iterdir()}
    assert not names & {*LEFTOVERS, ".LATEST.0a1b2c3d.tmp"}
    assert set(KEPT) <= names and latest_checkpoint(tmp_path).name == "step-0000008"
