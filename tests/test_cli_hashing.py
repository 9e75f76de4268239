"""The hashing subcommands: --help for each, the heads' own defaults, and clear errors."""

from __future__ import annotations

import pytest

from hashbert.cli import build_parser, main

COMMANDS = [["train", "hash"], ["train", "bpr"], ["train", "itq"], ["evaluate", "hashing"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0 and "usage: hashbert" in capsys.readouterr().out


def test_train_hash_flags_come_from_the_configs_with_head_defaults():
    args = build_parser().parse_args(["train", "hash", "--out", "x", "--n-bits", "512", "--relax", "tanh", "--no-normalize-input"])
    assert args.n_bits == 512 and args.relax == "tanh" and args.lr == 1e-4 and args.batch_size == 128
    assert args.init == "itq" and args.hidden == 0 and args.quantization_weight == 0.0
    assert args.similarity == "softmax" and args.reconstruction_weight == 0.1


def test_errors_are_one_line(capsys, tmp_path):
    assert main(["train", "hash", "--out", str(tmp_path), "--train", "t.txt"]) == 2
    assert "--dual-encoder is required" in capsys.readouterr().err
    assert main(["train", "hash", "--out", str(tmp_path), "--n-bits", "100", "--dual-encoder", "d"]) == 2
    assert "multiple of 64" in capsys.readouterr().err
    assert main(["evaluate", "hashing", "--test", "t", "--dual-encoder", "d", "--out", str(tmp_path), "--bits", "a,b"]) == 2
    assert "--bits" in capsys.readouterr().err
