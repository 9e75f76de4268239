"""The facade ``hashbert``: every public name resolves from its lazy map, and ``import hashbert`` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import hashbert

NAMES = {
    "BinaryFlatIndex", "BinaryIVFIndex", "CrossEncoder", "DualEncoder", "FloatIndex", "HashBert", "HdrCache",
    "HdrModel", "NumpyBinaryIndex", "RetrieveThenRerank", "TextEncoder", "TwoStageSearcher", "load_model",
}


@pytest.mark.parametrize("name", sorted(hashbert._PUBLIC))
def test_every_public_name_resolves(name):
    obj = getattr(hashbert, name)
    assert obj.__name__ == name and obj.__module__ == hashbert._PUBLIC[name]


def test_public_names_are_listed_and_unknown_names_raise():
    assert NAMES <= set(hashbert._PUBLIC) <= set(hashbert.__all__)
    with pytest.raises(AttributeError, match="no_such_name"):
        hashbert.no_such_name  # noqa: B018


def test_import_hashbert_imports_no_torch():
    code = "import sys, hashbert; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
