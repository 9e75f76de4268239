"""The hashbert command: every --help, clear errors without tracebacks, and a tiny real end-to-end run."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

from hashbert.cli import build_parser, main

COMMANDS = [
    [],
    ["data", "prepare", "chitchat"],
    ["train", "dual"],
    ["evaluate", "rerank"],
    ["encode"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "hashbert")
def test_help_explains_every_flag(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: hashbert" in capsys.readouterr().out


def test_every_flag_has_help():
    def walk(parser):
        for action in parser._actions:
            if action.dest != "help" and action.option_strings:
                assert action.help, f"{parser.prog} {action.option_strings} has no help"
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser())


def test_help_is_instant_without_torch():
    code = "import sys; from hashbert.cli import build_parser; build_parser(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_malformed_corpus_gives_file_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("1\thello\tworld\n2\thi\tthere\n", encoding="utf-8")
    code = main(["evaluate", "rerank", "--test", str(bad), "--zero-shot", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: {bad}:2: bad label" in err and "Traceback" not in err


def test_missing_model_dir_is_a_clear_error(tmp_path, small_corpus, capsys):
    code = main(["evaluate", "rerank", "--test", str(small_corpus / "test.txt"), "--model", str(tmp_path / "nope")])
    assert code == 2 and "not a model directory" in capsys.readouterr().err


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
    assert "trained 4 steps on 32 pairs" in capsys.readouterr().out

    csv = tmp_path / "rerank.csv"
    code = main([
        "evaluate", "rerank", "--test", str(small_corpus / "test.txt"), "--zero-shot", "--model", str(run / "model"),
        "--name", "DR-BERT (tiny)", "--csv", str(csv), "--seed-table", "1", "--seed-models", "DR-BERT", "--no-progress",
    ])
    out = capsys.readouterr().out
    assert code == 0
    assert "| Models" in out and "zero-shot all-MiniLM-L6-v2" in out and "DR-BERT (tiny)" in out
    assert "DR-BERT (seed)" in out and "54.51" in out
    assert csv.read_text().count("\n") == 3

    pool = tmp_path / "pool.txt"
    pool.write_text("how are you?\nfine thanks\n", encoding="utf-8")
    vectors = tmp_path / "v.npy"
    assert main(["encode", "--model", str(run / "model"), "--input", str(pool), "--out", str(vectors), "--no-progress"]) == 0
    array = np.load(vectors, allow_pickle=False)
    assert array.shape == (2, 384) and array.dtype == np.float32
