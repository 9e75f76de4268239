"""Property: a damaged artefact is refused with ``ArtefactError``, never loaded and never a traceback.

Damage is one byte XOR-ed with 1..255 or a truncation, in any file of a small saved directory: the
NumPy hashers (``RandomHyperplaneLSH``, ``ITQ``), a binary index, and a torch ``DualEncoder`` on a tiny
BERT (the real 90 MB all-MiniLM gets a handful of seeded cases). The one damage that may load is a
``checksums.json`` that still parses to the same listing (a space turned into a newline).

A second property gives the damaged file fresh checksums, as a hand-edited artefact would carry: the
parsers behind the checksums must then answer ``ArtefactError`` or load; no other exception escapes.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashbert.io import CHECKSUM_FILE, ArtefactError, write_checksums
from hashbert.models.registry import load_model

PROPERTY = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
# (file index, byte position, XOR mask or None for a truncation); indexes and positions wrap around.
DAMAGE = st.tuples(st.integers(0, 63), st.integers(0, 1 << 24), st.one_of(st.none(), st.integers(1, 255)))


def listed_files(directory: Path) -> list[str]:
    """The files a loader reads: those ``checksums.json`` covers, and the listing itself."""
    return [*sorted(json.loads((directory / CHECKSUM_FILE).read_text())), CHECKSUM_FILE]


def damage(directory: Path, name: str, position: int, mask: int | None) -> tuple[bytes, bytes]:
    """Flip one byte of ``directory/name`` (``mask``) or truncate it at ``position``; returns (before, after)."""
    path = directory / name
    before = path.read_bytes()
    position %= max(len(before), 1)
    if mask is None or not before:
        after = before[:position]
    else:
        after = before[:position] + bytes([before[position] ^ mask]) + before[position + 1 :]
    path.write_bytes(after)
    return before, after


def same_json(before: bytes, after: bytes) -> bool:
    """True if both parse as JSON to equal values (whitespace-only damage)."""
    try:
        return json.loads(before) == json.loads(after)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def check_damaged_is_refused(saved: Path, load: Callable[[Path], object], choice: tuple[int, int, int | None]) -> None:
    """Damage a copy of ``saved`` as ``choice`` says and load it: ArtefactError naming the copy, or a no-op damage."""
    work = Path(tempfile.mkdtemp(prefix="artefact-prop-"))
    try:
        copy = work / saved.name
        shutil.copytree(saved, copy)
        names = listed_files(copy)
        name = names[choice[0] % len(names)]
        before, after = damage(copy, name, choice[1], choice[2])
        try:
            load(copy)
        except ArtefactError as err:
            assert str(err).startswith(str(copy)), str(err)
            return
        assert name == CHECKSUM_FILE and same_json(before, after), f"damaged {name} loaded: {after[:80]!r}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_rechecksummed_is_refused_or_loads(
    saved: Path, load: Callable[[Path], object], choice: tuple[int, int, int | None]
) -> None:
    """Damage a copy of ``saved``, record fresh checksums, load: only ``ArtefactError`` may escape."""
    work = Path(tempfile.mkdtemp(prefix="artefact-prop-"))
    try:
        copy = work / saved.name
        shutil.copytree(saved, copy)
        names = listed_files(copy)[:-1]
        damage(copy, names[choice[0] % len(names)], choice[1], choice[2])
        write_checksums(copy, names)
        try:
            load(copy)
        except ArtefactError as err:
            assert str(err).startswith(str(copy)), str(err)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def saved_lsh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hashbert.models.hashing.lsh import RandomHyperplaneLSH

    return RandomHyperplaneLSH(dim=8, n_bits=16, seed=1).save(tmp_path_factory.mktemp("lsh") / "lsh")


@pytest.fixture(scope="module")
def saved_itq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hashbert.models.hashing.lsh import ITQ

    rng = np.random.default_rng(0)
    model = ITQ(n_bits=8, iterations=3).fit(rng.standard_normal((40, 8)), rng.standard_normal((30, 8)))
    return model.save(tmp_path_factory.mktemp("itq") / "itq")


@pytest.fixture(scope="module")
def saved_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hashbert.index import BinaryFlatIndex

    index = BinaryFlatIndex(16, threads=1)
    codes = np.random.default_rng(0).integers(0, 256, (12, 2), dtype=np.uint8)
    index.add(codes, ids=np.arange(100, 112, dtype=np.int64), texts=[f"response {i}" for i in range(12)])
    path = tmp_path_factory.mktemp("index") / "index"
    index.save(path)
    return path


def load_index(path: Path) -> object:
    from hashbert.index import load_index as load

    return load(path, threads=1)


@PROPERTY
@given(DAMAGE)
def test_damaged_lsh_is_refused(saved_lsh: Path, choice) -> None:
    check_damaged_is_refused(saved_lsh, load_model, choice)


@PROPERTY
@given(DAMAGE)
def test_damaged_itq_is_refused(saved_itq: Path, choice) -> None:
    check_damaged_is_refused(saved_itq, load_model, choice)


@PROPERTY
@given(DAMAGE)
def test_damaged_binary_index_is_refused(saved_index: Path, choice) -> None:
    check_damaged_is_refused(saved_index, load_index, choice)


@PROPERTY
@given(DAMAGE)
def test_damaged_torch_model_is_refused(tiny_model_dir: Path, choice) -> None:
    check_damaged_is_refused(tiny_model_dir, load_model, choice)


@PROPERTY
@given(DAMAGE)
def test_rechecksummed_hashers_are_refused_or_load(saved_lsh: Path, saved_itq: Path, choice) -> None:
    check_rechecksummed_is_refused_or_loads(saved_lsh, load_model, choice)
    check_rechecksummed_is_refused_or_loads(saved_itq, load_model, choice)


@settings(PROPERTY, max_examples=25)
@given(DAMAGE)
def test_rechecksummed_torch_model_is_refused_or_loads(tiny_model_dir: Path, choice) -> None:
    check_rechecksummed_is_refused_or_loads(tiny_model_dir, load_model, choice)


@pytest.mark.slow
def test_damaged_real_minilm_model_is_refused(_base_dual_encoder, tmp_path: Path) -> None:
    """A handful of seeded flips and truncations of the real 90 MB model (each costs one full hash)."""
    saved = _base_dual_encoder.save(tmp_path / "saved")
    names = listed_files(saved)
    rng = random.Random(0)
    picks = ["model.safetensors", "config.json", "backbone/tokenizer.json", CHECKSUM_FILE]
    choices = [(names.index(n), rng.randrange(1 << 24), rng.randrange(1, 256)) for n in picks]
    choices.append((names.index("model.safetensors"), rng.randrange(1 << 24), None))
    choices.append((names.index("backbone/config.json"), 7, None))
    for choice in choices:
        check_damaged_is_refused(saved, load_model, choice)
