"""A resume refuses other data, model, loss or schedule settings, naming each; other settings may change."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import pytest
import torch

from hashbert.config import DataConfig, TrainConfig
from hashbert.io import write_checksums
from hashbert.training.checkpoint import latest_checkpoint
from hashbert.training.fingerprint import compare_settings, describe_changes, flatten, run_fingerprint

RECIPE = {"data": {"train": "train.txt", "max_train_pairs": 64}, "model": {"encoder": {"max_context_length": 48}}}
OTHER_PAIRS = {**RECIPE, "data": {**RECIPE["data"], "max_train_pairs": 32}}
OTHER_LENGTH = {**RECIPE, "model": {"encoder": {"max_context_length": 64}}}


def test_flatten_and_compare_name_dotted_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": 2}) == {"a.b": 1, "a.c.d": [1], "e": 2}
    changed, unmatched = compare_settings(
        {"model": {"bits": [1, 2], "t": 0.05}, "old": 1}, {"model": {"bits": (1, 2), "t": 0.1}, "new": 2}
    )
    assert changed == [("model.t", 0.05, 0.1)] and unmatched == ["new", "old"]  # a tuple is saved as a list
    shown = describe_changes([("files.train", "ab" * 32, "cd" * 32)])
    assert shown == "files.train: sha256 abababababab -> sha256 cdcdcdcdcdcd"


def test_run_fingerprint_hashes_contents_and_skips_absent_inputs(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text("1\thi\tho\n")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "w").write_text("x")
    write_checksums(model_dir, ["w"])
    first = run_fingerprint(DataConfig(train=str(train)), {"model": model_dir, "speakers": ""}, loss={"t": 1})
    assert set(first["files"]) == {"train", "model"} and first["data"]["max_train_pairs"] == 0
    assert first["loss"] == {"t": 1}
    train.write_text("1\thi\tother\n")
    second = run_fingerprint(DataConfig(train=str(train)), {"model": model_dir})
    assert second["files"]["train"] != first["files"]["train"] and second["files"]["model"] == first["files"]["model"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"fingerprint": OTHER_PAIRS}, "data.max_train_pairs: 64 -> 32"),
        ({"fingerprint": OTHER_LENGTH}, "model.encoder.max_context_length: 48 -> 64"),
        ({"max_steps": 6}, "total_steps: 8 -> 6"),  # the LR schedule is another one
        ({"epochs": 2, "max_steps": 0}, "total_steps: 8 -> 16"),
        ({"examples": 36}, "examples: 32 -> 36"),
        ({"lr": 1e-3}, "other lr"),
    ],
)
def test_resume_with_other_settings_is_refused(toy_trainer, tmp_path, change, named):
    toy_trainer(tmp_path, examples=32, fingerprint=RECIPE).fit(stop_after=2)
    settings = {"examples": 32, "fingerprint": RECIPE, **change}
    other = toy_trainer(tmp_path, **settings)
    before = [p.clone() for p in other.model.parameters()]
    with pytest.raises(ValueError, match="use the same settings to resume") as err:
        other.fit()
    assert named in str(err.value)
    assert all(torch.equal(a, b) for a, b in zip(before, other.model.parameters(), strict=True))  # nothing loaded


def test_settings_that_do_not_change_the_result_may_change(toy_trainer, tmp_path):
    # 32 examples, batch 4: 8 steps an epoch, so max_steps 8, 50 or 0 all mean total_steps 8
    expected = toy_trainer(tmp_path / "straight", examples=32).fit().losses
    toy_trainer(tmp_path / "run", examples=32, fingerprint=RECIPE).fit(stop_after=3)
    resumed = toy_trainer(
        tmp_path / "run", examples=32, fingerprint=RECIPE, max_steps=50, threads=1, progress=True, eval_every=1,
        save_every=3, keep_checkpoints=4, evaluator=lambda model: {"noise": float(torch.rand(()))},
    )
    state = resumed.fit()
    assert state.losses == expected  # validating (it draws random numbers here) changed nothing
    assert [v["step"] for v in state.validations] == [4, 5, 6, 7, 8]


def _strip_fingerprint(checkpoint) -> None:
    """Make ``checkpoint`` look written by a hashbert without fingerprints (its checksums kept valid)."""
    version = os.path.realpath(checkpoint)
    payload = json.loads((checkpoint / "state.json").read_text())
    del payload["fingerprint"]
    with open(os.path.join(version, "state.json"), "w") as handle:
        json.dump(payload, handle)
    write_checksums(version, ["model.safetensors", "optimizer.pt", "rng.safetensors", "state.json"])


def test_checkpoint_without_fingerprint_resumes_with_a_warning(toy_trainer, tmp_path, caplog):
    expected = toy_trainer(tmp_path / "straight").fit().losses
    toy_trainer(tmp_path / "run").fit(stop_after=2)
    _strip_fingerprint(latest_checkpoint(tmp_path / "run"))
    with pytest.raises(ValueError, match="other lr"):  # the loop fields are still checked
        toy_trainer(tmp_path / "run", lr=1e-3).fit()
    with caplog.at_level(logging.WARNING, logger="hashbert.training.trainer"):
        assert toy_trainer(tmp_path / "run", fingerprint=RECIPE).fit().losses == expected
    assert "written before settings fingerprints" in caplog.text


@pytest.mark.slow
def test_train_dual_refuses_other_data_model_or_loss_settings(small_corpus, small_config, tmp_path):
    from hashbert.training.dual import train_dual_encoder

    data = DataConfig(train=str(small_corpus / "train.txt"), max_train_pairs=16)
    train = TrainConfig(batch_size=8, max_steps=1, save_every=0, threads=1, progress=False)
    train_dual_encoder(small_config, data, train, tmp_path / "run")
    other_train = tmp_path / "train.txt"
    lines = (small_corpus / "train.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    other_train.write_text("".join(lines[:-1]), encoding="utf-8")  # one dialogue line fewer
    encoder = dataclasses.replace(small_config.encoder, max_context_length=40)
    changes = [
        (small_config, dataclasses.replace(data, train=str(other_train)), "files.train: sha256"),
        (small_config, dataclasses.replace(data, max_train_pairs=24), "data.max_train_pairs: 16 -> 24"),
        (dataclasses.replace(small_config, temperature=0.1), data, "model.temperature: 0.05 -> 0.1"),
        (dataclasses.replace(small_config, encoder=encoder), data, "model.encoder.max_context_length: 48 -> 40"),
    ]
    for model_config, data_config, named in changes:
        with pytest.raises(ValueError, match="use the same settings to resume") as err:
            train_dual_encoder(model_config, data_config, train, tmp_path / "run")
        assert named in str(err.value)
    summary = train_dual_encoder(small_config, data, dataclasses.replace(train, threads=2), tmp_path / "run")
    assert summary["state"]["step"] == 1 and summary["fingerprint"]["data"]["max_train_pairs"] == 16
