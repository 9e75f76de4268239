"""The issue-7 commands: --help for each, one-line errors on bad input."""

from __future__ import annotations

import pytest

from hashbert.cli import main

COMMANDS = [["train", "cross"], ["train", "post"], ["train", "lm"], ["evaluate", "fullrank"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "usage: hashbert" in out


def test_help_names_the_new_flags(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "fullrank", "--help"])
    out = capsys.readouterr().out
    for flag in ("--relevance-judge", "--lm", "--cross-encoder", "--cross-depths"):
        assert flag in out
    with pytest.raises(SystemExit):
        main(["train", "cross", "--help"])
    out = capsys.readouterr().out
    for flag in ("--speakers", "--init", "--negatives", "--max-length"):
        assert flag in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "cross", "--out", "x"], "error: --train is required"),
        (["train", "cross", "--out", "x", "--train", "t.txt", "--negatives", "0"], "error: negatives must be >= 1"),
        (["train", "post", "--out", "x", "--train", "t.txt", "--mlm-probability", "1.5"], "error: mlm_probability"),
        (["train", "lm", "--out", "x", "--train", "t.txt", "--heads", "5"], "error: need layers >= 1 and heads dividing"),
        (["train", "cross", "--out", "x", "--train", "t.txt", "--max-length", "20"], "error: need max_response_length"),
    ],
)
def test_bad_input_is_one_error_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message) and "Traceback" not in "\n".join(err)


def test_missing_training_file_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "cross", "--out", str(tmp_path / "run"), "--train", str(tmp_path / "missing.txt"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "Traceback" not in err
