from __future__ import annotations

import argparse

import pytest

from hashbert.config import (
    DualEncoderConfig,
    EncoderConfig,
    TrainConfig,
    add_config_arguments,
    config_from_args,
    config_from_dict,
    config_to_dict,
)


def test_round_trip_nested():
    config = DualEncoderConfig(encoder=EncoderConfig(pooling="cls", max_context_length=64), shared=True)
    assert config_from_dict(DualEncoderConfig, config_to_dict(config)) == config


def test_unknown_key_names_key_and_valid_ones():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['poolin'\]; valid keys are .*pooling"):
        config_from_dict(EncoderConfig, {"poolin": "cls"})


def test_nested_unknown_key():
    with pytest.raises(ValueError, match="EncoderConfig: unknown key"):
        config_from_dict(DualEncoderConfig, {"encoder": {"nope": 1}})


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (EncoderConfig, {"pooling": "max"}, "pooling"),
        (TrainConfig, {"batch_size": 1}, "batch_size"),
        (TrainConfig, {"warmup_ratio": 1.5}, "warmup_ratio"),
        (DualEncoderConfig, {"temperature": -1.0}, "temperature"),
    ],
)
def test_invalid_values(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_flags_generated_from_fields_round_trip():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, DualEncoderConfig)
    add_config_arguments(parser, TrainConfig)
    args = parser.parse_args(["--pooling", "cls", "--no-normalize", "--shared", "--lr", "1e-4", "--batch-size", "8"])
    model = config_from_args(DualEncoderConfig, args)
    train = config_from_args(TrainConfig, args)
    assert model.encoder.pooling == "cls" and model.encoder.normalize is False and model.shared is True
    assert train.lr == pytest.approx(1e-4) and train.batch_size == 8 and train.epochs == TrainConfig().epochs
    for action in parser._actions:
        if action.dest != "help":
            assert action.help, f"flag {action.option_strings} has no help"
