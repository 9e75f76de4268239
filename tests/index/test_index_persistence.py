"""save/load: identical results after a round trip; damaged or foreign directories are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashbert.index import load_index
from hashbert.index.base import FORMAT_VERSION
from hashbert.index.binary import BinaryFlatIndex, BinaryIVFIndex
from hashbert.index.dense import FloatIndex
from hashbert.index.reference import NumpyBinaryIndex
from hashbert.io import ArtefactError, write_checksums


def build(cls, codes_256):
    db, queries = codes_256
    texts = [f'response {i} ü ✓\n"quoted"' for i in range(len(db))]
    if cls is FloatIndex:
        rng = np.random.default_rng(0)
        index, queries = cls(16), rng.standard_normal((5, 16)).astype(np.float32)
        index.add(rng.standard_normal((len(db), 16)).astype(np.float32), texts=texts)
    else:
        index = cls(256, nlist=16, nprobe=3) if cls is BinaryIVFIndex else cls(256)
        index.add(db, ids=np.arange(len(db)) * 3 + 1, texts=texts)
    return index, queries


@pytest.fixture()
def saved(tmp_path, codes_256):
    index, _ = build(BinaryFlatIndex, codes_256)
    index.save(tmp_path / "index")
    return tmp_path / "index"


@pytest.mark.parametrize("cls", [BinaryFlatIndex, BinaryIVFIndex, NumpyBinaryIndex, FloatIndex])
def test_round_trip_identical(cls, tmp_path, codes_256):
    index, queries = build(cls, codes_256)
    before = index.search(queries, 25)
    index.save(tmp_path / "index")
    loaded = cls.load(tmp_path / "index")
    again = load_index(tmp_path / "index")
    assert type(again) is cls and len(loaded) == len(index)
    for result in (loaded.search(queries, 25), again.search(queries, 25)):
        np.testing.assert_array_equal(result[0], before[0])
        np.testing.assert_array_equal(result[1], before[1])
    assert loaded.texts_of(before[1][:1, :2]) == index.texts_of(before[1][:1, :2])
    if cls is BinaryIVFIndex:
        assert (loaded.nlist, loaded.nprobe) == (16, 3)


def test_texts_and_ids_map_back(saved, codes_256):
    db, _ = codes_256
    index = BinaryFlatIndex.load(saved, threads=1)
    _, ids = index.search(db[7:8], 3)
    assert ids[0, 0] == 7 * 3 + 1
    assert index.texts_of(ids)[0][0] == index.texts_of(np.array([[22]]))[0][0] == 'response 7 ü ✓\n"quoted"'
    assert index.texts_of(np.array([[-1]])) == [[None]]
    with pytest.raises(ValueError, match="unknown ids"):
        index.texts_of(np.array([[2]]))


def test_binary_artefact_loads_without_faiss_class(saved, codes_256):
    db, queries = codes_256
    flat, numpy_index = BinaryFlatIndex.load(saved), NumpyBinaryIndex.load(saved)
    np.testing.assert_array_equal(flat.search(queries, 10)[0], numpy_index.search(queries, 10)[0])


@pytest.mark.parametrize("name", ["data.npy", "header.json", "texts.jsonl", "ids.npy"])
def test_flipped_byte_refused(saved, name):
    path = saved / name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ArtefactError, match="checksum mismatch"):
        BinaryFlatIndex.load(saved)


def test_truncated_file_refused(saved):
    path = saved / "data.npy"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ArtefactError, match="truncated or was altered"):
        load_index(saved)


def test_truncated_file_with_matching_checksums_refused(saved):
    path = saved / "data.npy"
    path.write_bytes(path.read_bytes()[:200])
    write_checksums(saved, ["data.npy", "header.json", "ids.npy", "texts.jsonl"])
    with pytest.raises(ArtefactError, match="unreadable array"):
        BinaryFlatIndex.load(saved)


def test_missing_file_refused(saved):
    (saved / "ids.npy").unlink()
    with pytest.raises(ArtefactError, match="missing"):
        BinaryFlatIndex.load(saved)
    with pytest.raises(ArtefactError, match="not found"):
        BinaryFlatIndex.load(saved.parent / "nothing-here")


def rewrite_header(directory, **changes):
    header = json.loads((directory / "header.json").read_text())
    header.update(changes)
    (directory / "header.json").write_text(json.dumps(header))
    write_checksums(directory, ["data.npy", "header.json", "ids.npy", "texts.jsonl"])


def test_wrong_format_version_refused(saved):
    rewrite_header(saved, format_version=FORMAT_VERSION + 1)
    with pytest.raises(ArtefactError, match="format version 2 is not supported"):
        BinaryFlatIndex.load(saved)


def test_wrong_kind_refused_and_count_checked(saved):
    with pytest.raises(ArtefactError, match="'binary' index"):
        FloatIndex.load(saved)
    rewrite_header(saved, count=5)
    with pytest.raises(ArtefactError, match="header says 5 rows"):
        BinaryFlatIndex.load(saved)
    rewrite_header(saved, width=128)
    with pytest.raises(ArtefactError, match="stored rows"):
        BinaryFlatIndex.load(saved)
    rewrite_header(saved, format="something-else")
    with pytest.raises(ArtefactError, match="not a hashbert index"):
        load_index(saved)


def test_save_replaces_index_but_not_other_directories(saved, tmp_path, codes_256):
    db, _ = codes_256
    index = NumpyBinaryIndex(256)
    index.add(db[:10])
    index.save(saved)
    assert len(load_index(saved)) == 10 and type(load_index(saved)) is NumpyBinaryIndex
    shown = sorted(p.name for p in saved.parent.iterdir() if not p.name.startswith(".index.v-"))
    assert shown == ["index"]  # no temporary leftovers (the hidden versions are what "index" links to)
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a hashbert index"):
        index.save(other)
    assert (other / "notes.txt").read_text() == "keep me"
