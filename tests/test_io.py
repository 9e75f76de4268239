"""Atomic writes: the result appears whole or not at all, as an ordinary file."""

from __future__ import annotations

import os
import stat

import pytest

from hashbert.io import atomic_write


def test_atomic_write_gives_an_ordinary_file_mode(tmp_path):
    with atomic_write(tmp_path / "out.txt", "w") as handle:
        handle.write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~mask
    assert (tmp_path / "out.txt").read_text() == "x"


def test_failed_atomic_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "out.bin") as handle:
        handle.write(b"partial")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
