"""Every way a model directory can be wrong is ``ArtefactError: PATH: reason`` (the CLI: ``error: ...``, exit 2).

The damaged files here get fresh checksums ("rechecksummed"), as a hand-edited or wrongly produced
artefact would: the checksums cannot catch them, so the parsers must. Before: valid JSON of the wrong
shape raised AttributeError/KeyError/TypeError, a pickle saved as model.safetensors raised
SafetensorError, a tokenizer larger than the embedding loaded (and failed at the first long text), an
empty checksum listing verified nothing, and a run directory said "file not found".
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from hashbert.io import CHECKSUM_FILE, ArtefactError, write_checksums
from hashbert.models.dual_encoder import DualEncoder
from hashbert.models.registry import load_model


def copy_of(model_dir: Path, tmp_path: Path) -> Path:
    """A plain copy of a saved model directory (following the version symlink) that a test may damage."""
    out = tmp_path / "model"
    shutil.copytree(model_dir, out)
    return out


def rechecksum(directory: Path) -> None:
    """Record fresh checksums for the files the listing names, as a hand-edited artefact would carry."""
    write_checksums(directory, sorted(json.loads((directory / CHECKSUM_FILE).read_text())))


def write_config(directory: Path, header: object) -> None:
    (directory / "config.json").write_text(json.dumps(header))
    rechecksum(directory)


def header_of(directory: Path) -> dict:
    return json.loads((directory / "config.json").read_text())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: [1, 2], r"config\.json: expected a JSON object with \"type\" and \"config\", got list"),
        (lambda h: "dual_encoder", r"config\.json: expected a JSON object .* got str"),
        (lambda h: {"type": h["type"]}, r"config\.json: \"config\" must be a JSON object, got None"),
        (lambda h: {"config": h["config"]}, r"config\.json: \"type\" must be a model type string, got None"),
        (lambda h: {**h, "type": 5}, r"\"type\" must be a model type string, got 5"),
        (lambda h: {**h, "config": [1]}, r"\"config\" must be a JSON object, got \[1\]"),
        (lambda h: {**h, "config": {**h["config"], "encoder": 5}}, r"config does not fit DualEncoderConfig"),
        (lambda h: {**h, "config": {**h["config"], "no_such_field": 1}}, r"config does not fit .*no_such_field"),
        (lambda h: {**h, "config": {**h["config"], "shared": "yes"}}, r"config does not fit .*shared"),
        (lambda h: {**h, "type": "no_such_model"}, r"unknown model type 'no_such_model'"),
    ],
)
def test_config_json_of_the_wrong_shape(tiny_model_dir: Path, tmp_path: Path, edit, message: str) -> None:
    model_dir = copy_of(tiny_model_dir, tmp_path)
    write_config(model_dir, edit(header_of(model_dir)))
    holds = "holds a 'no_such_model' model, expected 'dual_encoder'"
    direct = message.replace("unknown model type 'no_such_model'", holds)
    for load, expected in ((load_model, message), (DualEncoder.load, direct)):
        with pytest.raises(ArtefactError, match=expected) as excinfo:
            load(model_dir)
        assert str(excinfo.value).startswith(str(model_dir))


def test_a_damaged_type_is_reported_as_damage_not_as_an_unknown_type(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_of(tiny_model_dir, tmp_path)
    config = model_dir / "config.json"
    config.write_text(config.read_text().replace('"dual_encoder"', '"dual_encodes"'))
    with pytest.raises(ArtefactError, match=r"config\.json: checksum mismatch"):
        load_model(model_dir)
    config.write_text("[1, 2]")  # not rechecksummed either: the mismatch is the better explanation
    with pytest.raises(ArtefactError, match=r"config\.json: checksum mismatch"):
        load_model(model_dir)


def test_a_pickle_saved_as_model_safetensors(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_of(tiny_model_dir, tmp_path)
    (model_dir / "model.safetensors").write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    rechecksum(model_dir)
    with pytest.raises(ArtefactError) as excinfo:
        load_model(model_dir)
    assert str(excinfo.value).startswith(f"{model_dir / 'model.safetensors'}: not a readable safetensors file (")


def test_a_tokenizer_larger_than_the_embedding(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    from hashbert.config import DualEncoderConfig, config_from_dict

    small = tmp_path / "small-vocab"
    shutil.copytree(tiny_backbone_dir, small)
    config = BertConfig.from_pretrained(str(small))
    config.vocab_size = 1000
    BertModel(config).save_pretrained(str(small))
    encoder = {"model": str(small), "max_context_length": 16, "max_response_length": 8}
    saved = DualEncoder.from_base(config_from_dict(DualEncoderConfig, {"encoder": encoder})).save(tmp_path / "m")
    with pytest.raises(ArtefactError) as excinfo:
        load_model(saved)
    assert str(excinfo.value).startswith(
        f"{saved}: the tokenizer has 30522 tokens but the model's embedding has 1000 rows"
    )


@pytest.mark.parametrize(
    ("listing", "message"),
    [
        ({}, "expected a non-empty"),
        ([], "expected a non-empty"),
        ("config.json", "expected a non-empty"),
        (None, "does not list"),  # config.json only: the weights are not covered
    ],
)
def test_a_checksum_listing_that_verifies_nothing(tiny_model_dir: Path, tmp_path: Path, listing, message: str) -> None:
    model_dir = copy_of(tiny_model_dir, tmp_path)
    if listing is None:
        write_checksums(model_dir, ["config.json"])
    else:
        (model_dir / CHECKSUM_FILE).write_text(json.dumps(listing))
    with pytest.raises(ArtefactError, match=message):
        load_model(model_dir)


def test_a_run_directory_points_at_its_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    shutil.copytree(tiny_model_dir, run / "model")
    (run / "train_state.json").write_text("{}")
    with pytest.raises(ArtefactError) as excinfo:
        load_model(run)
    assert str(excinfo.value) == f"{run}: not a model directory; did you mean {run / 'model'}?"


def test_a_run_directory_through_the_cli(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    from hashbert.cli import main

    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    shutil.copytree(tiny_model_dir, run / "model")
    texts = tmp_path / "texts.txt"
    texts.write_text("hello\n")
    code = main(["encode", "--model", str(run), "--input", str(texts), "--out", str(tmp_path / "v.npy")])
    assert code == 2
    expected = f"error: {run}: not a model directory; did you mean {run / 'model'}?"
    assert capsys.readouterr().err.strip().endswith(expected)


def test_other_non_model_paths(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match=rf"^{tmp_path / 'absent'}: no such model directory$"):
        load_model(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtefactError, match=rf"^{tmp_path / 'file'}: not a model directory$"):
        load_model(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtefactError, match=rf"^{tmp_path / 'empty'}: not a model directory \(no config\.json\)$"):
        load_model(tmp_path / "empty")


def test_a_numpy_hasher_config_its_class_cannot_take(tmp_path: Path) -> None:
    from hashbert.models.hashing.lsh import RandomHyperplaneLSH

    model_dir = RandomHyperplaneLSH(dim=8, n_bits=8).save(tmp_path / "lsh")
    plain = copy_of(model_dir, tmp_path)
    header = header_of(plain)
    write_config(plain, {**header, "config": {**header["config"], "no_such_arg": 1}})
    with pytest.raises(ArtefactError, match=r"config\.json does not describe a loadable 'lsh' model \(TypeError"):
        load_model(plain)
