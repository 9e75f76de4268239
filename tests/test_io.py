"""Atomic files and checksums: the result appears whole or not at all, durably, as an ordinary file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from hashbert.io import ArtefactError, atomic_write, resolve_artefact, verify_checksums, write_checksums


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


@pytest.fixture()
def fsync_log(monkeypatch):
    """Records ("fsync", inode) and ("rename", destination) in call order."""
    events = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src, dst, **kw):
        real_replace(src, dst, **kw)
        events.append(("rename", str(dst)))

    def rename(src, dst, **kw):
        real_rename(src, dst, **kw)
        events.append(("rename", str(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)
    return events


def test_atomic_write_fsyncs_the_file_then_the_directory_after_the_rename(tmp_path, fsync_log):
    with atomic_write(tmp_path / "out.bin") as handle:
        handle.write(b"data")
    renamed = fsync_log.index(("rename", str(tmp_path / "out.bin")))
    assert ("fsync", (tmp_path / "out.bin").stat().st_ino) in fsync_log[:renamed]
    assert ("fsync", tmp_path.stat().st_ino) in fsync_log[renamed:]


UMASK_SCRIPT = """
import os, stat, sys
from pathlib import Path
late = sys.argv[2] == "late"
if not late:
    os.umask(int(sys.argv[1], 8))
from hashbert.io import atomic_directory, atomic_write, resolve_artefact
if late:
    os.umask(int(sys.argv[1], 8))  # set after import: must still be respected
out = Path(sys.argv[3])
with atomic_directory(out / "model") as tmp:
    (tmp / "weights.bin").write_bytes(b"w")  # as safetensors writes it
    (tmp / "sub").mkdir()
    with atomic_write(tmp / "config.json", "w") as handle:
        handle.write("{}")
with atomic_write(out / "LATEST", "w") as handle:
    handle.write("x")
root = resolve_artefact(out / "model")
for path in (root, root / "weights.bin", root / "sub", root / "config.json", out / "LATEST"):
    print(oct(stat.S_IMODE(path.stat().st_mode)))
"""


@pytest.mark.parametrize(("umask", "when", "directory", "file"), [
    ("022", "early", "0o755", "0o644"), ("077", "early", "0o700", "0o600"), ("027", "late", "0o750", "0o640"),
])
def test_modes_follow_the_umask(tmp_path, umask, when, directory, file):
    result = subprocess.run(
        [sys.executable, "-c", UMASK_SCRIPT, umask, when, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [directory, file, directory, file, file]


# ---- verify_checksums -------------------------------------------------------------------------------
@pytest.fixture()
def artefact(tmp_path):
    directory = tmp_path / "artefact"
    (directory / "sub").mkdir(parents=True)
    (directory / "config.json").write_text("{}")
    (directory / "sub" / "weights.bin").write_bytes(b"\x00" * 100)
    write_checksums(directory, ["config.json", "sub/weights.bin"])
    return directory


def _listing(directory, listing):
    (directory / "checksums.json").write_text(json.dumps(listing))


def test_verify_returns_the_resolved_directory(artefact, tmp_path):
    assert verify_checksums(artefact, required=["config.json", "sub/weights.bin"]) == artefact.resolve()
    (tmp_path / "link").symlink_to("artefact")
    assert verify_checksums(tmp_path / "link") == resolve_artefact(tmp_path / "link") == artefact.resolve()


@pytest.mark.parametrize("listing", [[], {}, ["config.json"], "x", None])
def test_an_empty_or_malformed_listing_does_not_switch_verification_off(artefact, listing):
    _listing(artefact, listing)
    (artefact / "sub" / "weights.bin").write_bytes(b"\x00" * 10)  # truncated
    with pytest.raises(ArtefactError, match=rf"^{artefact / 'checksums.json'}: expected a non-empty"):
        verify_checksums(artefact)


def test_required_names_must_be_listed(artefact):
    with pytest.raises(ArtefactError, match=r"checksums.json: does not list \['model.safetensors'\]"):
        verify_checksums(artefact, required=("config.json", "model.safetensors"))


@pytest.mark.parametrize("value", [5, None, ["a"], "not-hex", "a" * 63])
def test_checksums_must_be_sha256_strings(artefact, value):
    listing = json.loads((artefact / "checksums.json").read_text())
    _listing(artefact, {**listing, "config.json": value})
    with pytest.raises(ArtefactError, match="not a sha256 hex digest"):
        verify_checksums(artefact)


@pytest.mark.parametrize("name", ["../secret", "/etc/hostname", "sub/../../secret", ""])
def test_names_escaping_the_directory_are_refused(artefact, name):
    (artefact.parent / "secret").write_text("s")
    listing = json.loads((artefact / "checksums.json").read_text())
    _listing(artefact, {**listing, name: "0" * 64})
    with pytest.raises(ArtefactError, match="outside the directory"):
        verify_checksums(artefact)


def test_a_symlink_inside_pointing_outside_is_refused(artefact):
    (artefact.parent / "secret").write_text("s")
    (artefact / "escape").symlink_to("../secret")
    write_checksums(artefact, ["config.json", "escape"])
    with pytest.raises(ArtefactError, match="resolves outside"):
        verify_checksums(artefact)


def test_errors_name_the_given_path(artefact, tmp_path):
    (tmp_path / "link").symlink_to("artefact")
    (artefact / "sub" / "weights.bin").write_bytes(b"\x01")
    with pytest.raises(ArtefactError, match=rf"^{tmp_path / 'link' / 'sub' / 'weights.bin'}: checksum mismatch"):
        verify_checksums(tmp_path / "link")
    (artefact / "sub" / "weights.bin").unlink()
    with pytest.raises(ArtefactError, match=rf"^{tmp_path / 'link' / 'sub' / 'weights.bin'}: missing"):
        verify_checksums(tmp_path / "link")
    with pytest.raises(ArtefactError, match=rf"^{tmp_path / 'nothing' / 'checksums.json'}: file not found"):
        verify_checksums(tmp_path / "nothing")
