"""atomic_directory: versions behind a symlink, durable, never replacing what hashbert did not write, no leftovers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from hashbert.io import (
    MARKER_FILE,
    ArtefactError,
    atomic_directory,
    check_replaceable,
    remove_artefact,
    remove_stale_temporaries,
    resolve_artefact,
    verify_checksums,
    write_checksums,
)
from hashbert.io import directories as io_directories


def save(path, text="v1", kind="test", **kwargs):
    """An artefact of two files, one written as safetensors/Hugging Face write theirs (plain open)."""
    with atomic_directory(path, kind, **kwargs) as tmp:
        (tmp / "weights.bin").write_bytes(text.encode() * 100)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "config.json").write_text(json.dumps({"text": text}))
        write_checksums(tmp, ["weights.bin", "sub/config.json"])
    return path


def read(path):
    root = verify_checksums(path, required=["weights.bin", "sub/config.json"])
    return json.loads((root / "sub" / "config.json").read_text())["text"]


def hidden(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_layout_is_a_relative_link_to_a_hidden_version(tmp_path):
    path = save(tmp_path / "model")
    target = os.readlink(path)
    assert path.is_symlink() and target.startswith(".model.v-") and "/" not in target
    assert hidden(tmp_path) == [target]  # no temporary, no lock file left
    assert json.loads((path / MARKER_FILE).read_text())["kind"] == "test"
    assert read(path) == "v1"


def test_replacing_keeps_the_old_version_for_its_readers_then_removes_it(tmp_path, monkeypatch):
    path = save(tmp_path / "model")
    old = resolve_artefact(path)
    save(path, "v2")
    assert read(path) == "v2" and read(old) == "v1"  # a reader that resolved before the swap can finish
    monkeypatch.setattr(io_directories, "SUPERSEDED_GRACE_S", 0.0)
    save(path, "v3")
    assert read(path) == "v3" and hidden(tmp_path) == [os.readlink(path)]


def test_a_failed_save_leaves_the_old_version_and_nothing_else(tmp_path):
    path = save(tmp_path / "model")
    before = hidden(tmp_path)
    with pytest.raises(RuntimeError), atomic_directory(path, "test") as tmp:
        (tmp / "weights.bin").write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert read(path) == "v1" and hidden(tmp_path) == before


def test_every_file_and_directory_is_fsynced_and_the_parent_after_the_swap(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(os.fstat(fd).st_ino), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (real_replace(a, b), events.append(("replace", str(b)))))
    path = save(tmp_path / "model")
    root = resolve_artefact(path)
    tree = [root, *root.rglob("*")]
    assert len(tree) == 6 and {p.stat().st_ino for p in tree} <= set(events)
    swapped = events.index(("replace", str(path)))
    assert tmp_path.stat().st_ino in events[swapped:]


def test_old_plain_directories_load_and_are_migrated(tmp_path, monkeypatch):
    old = tmp_path / "model"  # as hashbert wrote artefacts before versioned directories
    (old / "sub").mkdir(parents=True)
    (old / "weights.bin").write_bytes(b"old" * 100)
    (old / "sub" / "config.json").write_text(json.dumps({"text": "old"}))
    (old / "config.json").write_text(json.dumps({"type": "test"}))
    write_checksums(old, ["weights.bin", "sub/config.json", "config.json"])
    assert read(old) == "old" and resolve_artefact(old) == old.resolve()
    monkeypatch.setattr(io_directories, "SUPERSEDED_GRACE_S", 0.0)
    save(old, "new")
    assert old.is_symlink() and read(old) == "new"
    save(old, "newer")
    assert hidden(tmp_path) == [os.readlink(old)]


def test_copies_of_an_artefact_load(tmp_path):
    path = save(tmp_path / "run" / "model")
    shutil.copytree(path, tmp_path / "copytree")  # follows the link: a plain directory
    subprocess.run(["cp", "-rL", str(path), str(tmp_path / "cp-L")], check=True)
    subprocess.run(["cp", "-r", str(path.parent), str(tmp_path / "run-copy")], check=True)  # the link is relative
    for copy in (tmp_path / "copytree", tmp_path / "cp-L", tmp_path / "run-copy" / "model"):
        assert read(copy) == "v1"
    assert not (tmp_path / "copytree").is_symlink()


def test_an_artefact_embedded_in_another_is_a_plain_directory(tmp_path):
    with atomic_directory(tmp_path / "hash", "hash_bert") as tmp:
        save(tmp / "dual_encoder", kind="dual_encoder")
        write_checksums(tmp, [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file()])
    embedded = tmp_path / "hash" / "dual_encoder"
    assert not embedded.is_symlink() and read(embedded) == "v1"
    assert hidden(embedded.parent) == [MARKER_FILE]
    verify_checksums(tmp_path / "hash", required=["dual_encoder/weights.bin"])


# ---- what may be replaced ---------------------------------------------------------------------------
def test_user_files_are_never_replaced_without_overwrite(tmp_path):
    precious = tmp_path / "model"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    message = (
        rf"^{precious} exists and was not written by hashbert as a test \(it holds 1 entry: notes.txt\); "
        "pass --overwrite to replace it, or choose another path$"
    )
    for kind in ("test", None):
        with pytest.raises(ValueError, match=message.replace("a test", "a test" if kind else "an artefact")):
            save(precious, kind=kind)
    assert (precious / "notes.txt").read_text() == "keep me" and hidden(tmp_path) == []
    save(precious, overwrite=True)
    assert read(precious) == "v1"


def test_a_file_or_another_kind_is_refused_an_empty_directory_is_not(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="it holds a file"):
        save(tmp_path / "file")
    save(tmp_path / "index", kind="index")
    with pytest.raises(ValueError, match=r"not written by hashbert as a dual_encoder \(it holds an index\)"):
        save(tmp_path / "index", kind="dual_encoder")
    save(tmp_path / "index", kind=None)  # callers that name no kind replace any hashbert artefact
    (tmp_path / "empty").mkdir()
    assert read(save(tmp_path / "empty")) == "v1"
    (tmp_path / "dangling").symlink_to("nowhere")
    assert read(save(tmp_path / "dangling")) == "v1"


@pytest.mark.parametrize(("files", "kind"), [
    ({"config.json": {"type": "dual_encoder"}}, "dual_encoder"), ({"header.json": {}}, "index"),
    ({"fingerprint.json": {}}, "vector-cache"), ({"state.json": {}, "optimizer.pt": {}}, "checkpoint"),
    ({"post_training.json": {}, "config.json": {"model_type": "bert"}}, "encoder"),
])
def test_the_kind_of_old_artefacts_is_recognised(tmp_path, files, kind):
    old = tmp_path / "old"
    old.mkdir()
    for name, content in files.items():
        (old / name).write_text(json.dumps(content))
    write_checksums(old, list(files))
    check_replaceable(old, kind)
    with pytest.raises(ValueError, match=rf"it holds an? {kind}\)"):
        check_replaceable(old, "hdr_hash")


# ---- leftovers --------------------------------------------------------------------------------------
KILLED_WRITER = """
import os, signal, sys
from hashbert.io import atomic_directory
with atomic_directory(sys.argv[1], "test") as tmp:
    (tmp / "weights.bin").write_bytes(b"x" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_temporaries_of_killed_writers_are_removed(tmp_path):
    path = save(tmp_path / "model")
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)])
    assert killed.returncode == -signal.SIGKILL
    orphans = [name for name in hidden(tmp_path) if name.endswith(".tmp")]
    assert len(orphans) == 1 and ".model.lock" in hidden(tmp_path) and read(path) == "v1"
    (tmp_path / ".model.ab_12cd3.tmp").mkdir()  # as the previous hashbert named them (mkdtemp)
    (tmp_path / ".model.old").mkdir()
    save(tmp_path / "other")
    assert {".model.ab_12cd3.tmp", ".model.old", orphans[0]} <= set(hidden(tmp_path))  # another name's
    removed = remove_stale_temporaries(tmp_path, "model")
    assert sorted(p.name for p in removed) == sorted([".model.ab_12cd3.tmp", ".model.old", orphans[0]])
    assert ".model.lock" not in hidden(tmp_path)  # the dead writer's lock file went too
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)])
    save(path, "v2")  # every save first removes what dead writers left
    assert not [name for name in hidden(tmp_path) if name.endswith(".tmp")] and read(path) == "v2"


def test_a_live_writers_temporary_is_kept(tmp_path):
    with atomic_directory(tmp_path / "model", "test") as tmp:
        (tmp / "weights.bin").write_bytes(b"x")
        assert remove_stale_temporaries(tmp_path) == [] and tmp.is_dir()


def test_patterns_clean_every_checkpoint_and_unlinked_versions_go(tmp_path):
    for step in (1, 2):
        save(tmp_path / f"step-{step}", kind="checkpoint")
        (tmp_path / f".step-{step}.0123abcd.tmp").mkdir()
    (tmp_path / "step-1").unlink()  # a version nothing links to any more
    removed = remove_stale_temporaries(tmp_path, "step-*")
    assert len(removed) == 3 and hidden(tmp_path) == [os.readlink(tmp_path / "step-2")]


def test_remove_artefact_removes_link_versions_and_plain_directories(tmp_path):
    save(save(tmp_path / "model"), "v2")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a").write_text("a")
    remove_artefact(tmp_path / "model")
    remove_artefact(tmp_path / "plain")
    remove_artefact(tmp_path / "never-written")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ArtefactError, match="not found"):
        read(tmp_path / "model")


@pytest.mark.parametrize("free, blamed", [(0, True), (10 * io_directories.FULL_DISK_BYTES, False)])
def test_a_write_failing_on_a_full_disk_says_so(tmp_path, monkeypatch, free, blamed):
    save(tmp_path / "a")
    monkeypatch.setattr(io_directories.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, free))
    with pytest.raises(ArtefactError if blamed else RuntimeError, match="disk is full" if blamed else "unexpected"):
        with atomic_directory(tmp_path / "a", "test"):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 161462016 vs 161461908")
    assert read(tmp_path / "a") == "v1"  # nothing replaced
    assert not any(".tmp" in p.name for p in tmp_path.iterdir())


def test_enospc_is_blamed_on_the_disk_whatever_space_is_left(tmp_path):
    with pytest.raises(ArtefactError, match="disk is full"):
        with atomic_directory(tmp_path / "a", "test"):
            raise OSError(28, "No space left on device")
