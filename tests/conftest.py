"""Session-wide fixtures: the real all-MiniLM-L6-v2 encoder (small text lengths so tests run fast) and a
small real slice of the Chit-Chat corpus prepared at run time."""

from __future__ import annotations

import copy
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A suite started in the background by a non-interactive shell inherits SIGINT ignored (POSIX), and Python keeps
# it so, in this process and in every child: the Ctrl-C tests need it delivered.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SMALL_ENCODER = {"max_context_length": 48, "max_response_length": 16, "max_context_turns": 4}


@pytest.fixture(scope="session")
def small_config():
    from hashbert.config import DualEncoderConfig, EncoderConfig

    return DualEncoderConfig(encoder=EncoderConfig(**SMALL_ENCODER))


@pytest.fixture(scope="session")
def _base_dual_encoder(small_config):
    import torch

    from hashbert.models.dual_encoder import DualEncoder

    torch.set_num_threads(2)
    return DualEncoder.from_base(small_config)


@pytest.fixture()
def dual_encoder(_base_dual_encoder):
    """A fresh copy of the pretrained dual-encoder (tests may train or alter it)."""
    return copy.deepcopy(_base_dual_encoder)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """``prepare_chitchat`` on the first 80 real conversations (read-only for tests)."""
    from hashbert.data import prepare_chitchat

    out = tmp_path_factory.mktemp("chitchat80")
    prepare_chitchat(out, seed=0, contexts_per_dialogue=3, max_dialogues=80)
    return out


@pytest.fixture(scope="module")
def module_tmp(request, tmp_path_factory) -> Iterator[Path]:
    """A directory for one test module's shared runs and models, deleted after the module's last test.

    Why: models and checkpoints take about 0.5 GB each; kept until the session ends (as ``tmp_path_factory``
    keeps them) they add up to tens of GB and can fill the disk before the last test runs.
    """
    path = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    yield path
    shutil.rmtree(path, ignore_errors=True)
