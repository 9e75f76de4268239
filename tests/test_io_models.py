"""The io guarantees at the model call sites: user directories survive, listings cannot be emptied, old dirs load."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn

from hashbert.io import ArtefactError, check_replaceable, write_checksums
from hashbert.models.serialization import load_weights, read_model_config, save_model_dir


def test_train_dual_out_never_deletes_a_user_directory_at_out_model(_base_dual_encoder, tmp_path):
    model_dir = tmp_path / "R" / "model"  # `train dual --out R` saves the model to R/model
    model_dir.mkdir(parents=True)
    (model_dir / "thesis.tex").write_text("years of work")
    (model_dir / "figures").mkdir()
    message = rf"^{model_dir} exists and was not written by hashbert as a dual_encoder \(it holds 2 entries: figures"
    with pytest.raises(ValueError, match=message + r".*pass --overwrite to replace it, or choose another path$"):
        check_replaceable(model_dir, "dual_encoder")  # what a command can check before training
    with pytest.raises(ValueError, match=message):
        _base_dual_encoder.save(model_dir)
    assert (model_dir / "thesis.tex").read_text() == "years of work" and (model_dir / "figures").is_dir()
    assert sorted(p.name for p in model_dir.parent.iterdir()) == ["model"]


@pytest.fixture()
def tiny_model(tmp_path):
    torch.manual_seed(0)
    module = nn.Linear(4, 3)
    return module, save_model_dir(tmp_path / "model", "tiny", {"width": 4}, module)


@pytest.mark.parametrize("listing", [{}, []])
def test_an_emptied_listing_does_not_let_truncated_weights_through(tiny_model, listing):
    _, directory = tiny_model
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-20])
    (directory / "checksums.json").write_text(json.dumps(listing))
    with pytest.raises(ArtefactError, match=rf"^{directory / 'checksums.json'}: expected a non-empty"):
        read_model_config(directory, "tiny")


def test_the_weights_must_be_listed(tiny_model):
    _, directory = tiny_model
    write_checksums(directory, ["config.json"])
    with pytest.raises(ArtefactError, match=r"does not list \['model.safetensors'\]"):
        read_model_config(directory, "tiny")


def test_a_plain_model_directory_of_older_hashbert_loads_and_is_replaced(tiny_model, tmp_path):
    module, directory = tiny_model
    old = tmp_path / "old-model"
    shutil.copytree(directory, old)  # a plain directory, as older hashbert wrote it
    (old / ".hashbert-artefact").unlink()
    assert not old.is_symlink() and read_model_config(old, "tiny") == {"width": 4}
    loaded = nn.Linear(4, 3)
    load_weights(loaded, old)
    assert torch.equal(loaded.weight, module.weight)
    with pytest.raises(ValueError, match=r"as an other \(it holds a tiny\)"):
        save_model_dir(old, "other", {}, module)
    save_model_dir(old, "tiny", {"width": 5}, module)
    assert old.is_symlink() and read_model_config(old, "tiny") == {"width": 5}
