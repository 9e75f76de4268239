"""Shared fixtures for the data tests: small real slices of the Chit-Chat corpus, cut at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashbert.data import Dialogue, load_chitchat, prepare_chitchat

FIXTURES = Path(__file__).parent / "fixtures"
SLICE_DIALOGUES = 60


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def chitchat_slice() -> list[Dialogue]:
    """The first 60 dialogues (sorted ids) of the installed corpus."""
    return load_chitchat(max_dialogues=SLICE_DIALOGUES)


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``prepare_chitchat`` output for the 60-dialogue slice, seed 0 (read-only: do not write into it)."""
    out = tmp_path_factory.mktemp("chitchat60")
    prepare_chitchat(out, seed=0, max_dialogues=SLICE_DIALOGUES)
    return out
