"""The hashbert command: generated from its table, every flag explained, one-line errors, a tiny real run."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import numpy as np
import pytest

from hashbert.cli import COMMANDS, build_parser, main

PATHS = [(), *(command.path for command in COMMANDS)]


def _subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = action.choices[name]
    return parser


def _words(text: str) -> str:
    return re.sub(r"\s+", "", text)  # argparse wraps lines, also at hyphens


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "hashbert")
def test_help_explains_every_flag(path, capsys):
    """Each flag of each command is listed in its --help with a non-empty explanation and its default."""
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    shown = _words(capsys.readouterr().out)
    for action in _subparser(path)._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help and action.help.strip(), f"{path} {action.option_strings} has no help"
        assert all(flag in shown for flag in action.option_strings), action.option_strings
        assert _words(action.help.split("(default")[0].strip()[:60]) in shown, action.option_strings
        if action.dest not in ("verbose", "version"):
            assert "(default:" in action.help or "(required)" in action.help, action.option_strings


def test_every_command_has_its_run_config_flags():
    """The table is the parser: a command accepts exactly its run config's fields, each once."""
    from hashbert.config.fields import is_config_type

    def leaf_names(cls):
        import dataclasses
        import typing

        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            yield from leaf_names(hints[f.name]) if is_config_type(hints[f.name]) else [f.name]

    for command in COMMANDS:
        names = list(leaf_names(command.run))
        assert len(names) == len(set(names)), f"{command.path}: a flag is defined twice"
        dests = {a.dest for a in _subparser(command.path)._actions} - {"help", "verbose", "command"}
        assert dests == set(names), command.path


def test_help_is_instant_without_torch():
    code = "import sys; from hashbert.cli import build_parser; build_parser(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_command_defaults_come_from_the_run_config():
    from hashbert.config import config_from_args
    from hashbert.config.runs import TrainHashRun

    args = build_parser().parse_args(
        ["train", "hash", "--out", "x", "--train", "t", "--dual-encoder", "d", "--n-bits", "512", "--relax", "tanh"]
    )
    run = config_from_args(TrainHashRun, args)
    assert run.hash.n_bits == 512 and run.hash.relax == "tanh" and run.train.lr == 1e-4 and run.train.batch_size == 128
    assert run.hash.init == "itq" and run.hash.hidden == 0 and run.loss.quantization_weight == 0.0
    assert run.loss.similarity == "softmax" and run.loss.reconstruction_weight == 0.1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "cross", "--out", "x"], "the following arguments are required: --train"),
        (["train", "hash", "--out", "x", "--train", "t.txt"], "required: --dual-encoder"),
        (["evaluate", "rerank"], "required: --test"),
        (["train", "cross", "--out", "x", "--train", "t.txt", "--negatives", "0"], "negatives (--negatives) must be "
        ">= 1"),
        (["train", "post", "--out", "x", "--train", "t.txt", "--mlm-probability", "1.5"], "mlm_probability"),
        (["train", "lm", "--out", "x", "--train", "t.txt", "--heads", "5"], "heads (--heads) must divide hidden"),
        (["train", "cross", "--out", "x", "--train", "t.txt", "--max-length", "20"], "max_length (--max-length) must "
        "be"),
        (["train", "dual", "--out", "x", "--train", "t", "--pooling", "max"], "argument --pooling: invalid choice"),
        (["train", "dual", "--out", "x", "--train", "t", "--epochs", "0"], "epochs (--epochs) must be >= 1"),
        (["train", "dual", "--out", "x", "--train", "t", "--max-steps", "-1"], "max_steps (--max-steps) must be >= 0"),
        (["train", "dual", "--out", "x", "--train", "t", "--keep-checkpoints", "0"], "keep_checkpoints"),
        (["train", "dual", "--out", "x", "--train", "t", "--device", "tpu"], "device (--device) must be"),
        (["train", "dual", "--out", "x", "--train", "t", "--threads", "-1"], "threads (--threads) must be >= 0"),
        (["train", "dual", "--out", "x", "--train", "t", "--teacher", "d", "--distill-weight", "0"], "distils"),
        (["evaluate", "rerank", "--test", "t", "--zero-shot", "--batch-size", "0"], "batch_size (--batch-size)"),
        (["evaluate", "rerank", "--test", "t"], "give at least one --model DIR, or --zero-shot"),
        (["evaluate", "rerank", "--test", "t", "--zero-shot", "--scoring", "both"], "scoring (--scoring) takes"),
        (["evaluate", "rerank", "--test", "t", "--zero-shot", "--seed-table", "7"], "seed_table"),
        (["train", "hash", "--out", "x", "--train", "t", "--n-bits", "100", "--dual-encoder", "d"], "multiple of 64"),
        (["evaluate", "hashing", "--test", "t", "--dual-encoder", "d", "--out", "x", "--bits", "a,b"], "--bits"),
        (["train", "itq", "--out", "x", "--train", "t", "--dual-encoder", "d", "--bits", "100"], "multiple of 64"),
    ],
)
def test_bad_input_is_one_error_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_missing_training_file_is_a_clear_error(tmp_path, capsys):
    argv = ["train", "cross", "--out", str(tmp_path / "run"), "--train", str(tmp_path / "missing.txt")]
    code = main([*argv, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "Traceback" not in err


def test_malformed_corpus_gives_file_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("1\thello\tworld\n2\thi\tthere\n", encoding="utf-8")
    code = main(["evaluate", "rerank", "--test", str(bad), "--zero-shot", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: {bad}:2: bad label" in err and "Traceback" not in err


def test_missing_model_dir_is_a_clear_error(tmp_path, small_corpus, capsys):
    code = main(["evaluate", "rerank", "--test", str(small_corpus / "test.txt"), "--model", str(tmp_path / "nope")])
    assert code == 2 and "no such model directory" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_tiny(small_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    flags = ["--max-context-length", "48", "--max-response-length", "16", "--max-context-turns", "4"]
    code = main([
        "train", "dual", "--train", str(small_corpus / "train.txt"), "--valid", str(small_corpus / "valid.txt"),
        "--out", str(run), "--max-train-pairs", "32", "--batch-size", "8", "--max-valid-groups", "10",
        "--no-progress", *flags,
    ])
    assert code == 0 and (run / "model" / "config.json").is_file() and (run / "loss.png").is_file()
    assert "trained DR-BERT: 4 steps on 32 pairs" in capsys.readouterr().out

    csv = tmp_path / "rerank.csv"
    code = main([
        "evaluate", "rerank", "--test", str(small_corpus / "test.txt"), "--zero-shot", "--model", str(run / "model"),
        "--name", "DR-BERT (tiny)", "--csv", str(csv), "--seed-table", "1", "--seed-models", "DR-BERT",
        "--no-progress",
    ])
    out = capsys.readouterr().out
    assert code == 0
    assert "| Models" in out and "zero-shot all-MiniLM-L6-v2" in out and "DR-BERT (tiny)" in out
    assert "DR-BERT (seed)" in out and "54.51" in out
    assert csv.read_text().count("\n") == 3

    pool = tmp_path / "pool.txt"
    pool.write_text("how are you?\nfine thanks\n", encoding="utf-8")
    vectors = tmp_path / "v.npy"
    argv = ["encode", "--model", str(run / "model"), "--input", str(pool), "--out", str(vectors)]
    assert main([*argv, "--no-progress"]) == 0
    array = np.load(vectors, allow_pickle=False)
    assert array.shape == (2, 384) and array.dtype == np.float32


def test_an_output_hashbert_did_not_write_is_refused_before_any_work(tmp_path, capsys):
    """`train dual --out R` used to delete a user's R/model; now it refuses at once, and --overwrite is explicit."""
    (tmp_path / "run" / "model").mkdir(parents=True)
    (tmp_path / "run" / "model" / "notes.txt").write_text("mine")
    argv = ["train", "dual", "--out", str(tmp_path / "run"), "--train", str(tmp_path / "missing.txt")]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "was not written by hashbert" in err and "--overwrite" in err
    assert (tmp_path / "run" / "model" / "notes.txt").read_text() == "mine"
    assert main([*argv, "--no-progress", "--overwrite"]) == 2  # now it gets as far as the missing corpus
    assert "missing.txt" in capsys.readouterr().err and not (tmp_path / "run" / "model").exists()


def test_two_commands_cannot_write_the_same_out(tmp_path, capsys):
    from hashbert.io import output_lock

    with output_lock(tmp_path / "run"):
        code = main(["data", "prepare", "chitchat", "--out", str(tmp_path / "run"), "--max-dialogues", "5"])
    assert code == 2 and "is in use by pid" in capsys.readouterr().err
