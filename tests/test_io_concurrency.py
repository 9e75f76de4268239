"""Processes racing on one artefact: readers never see a broken one, writers never fail, outputs are locked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hashbert.io import output_lock, remove_stale_temporaries, verify_checksums

WRITER = """
import json, sys, time
from pathlib import Path
from hashbert.io import atomic_directory, write_checksums
path, label, seconds, limit = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
start, saves = time.monotonic(), 0
while time.monotonic() - start < seconds and saves < limit:
    with atomic_directory(path, "test") as tmp:
        payload = f"{label}-{saves}"
        (tmp / "weights.bin").write_bytes(payload.encode() * (1000 + 97 * (saves % 50)))  # sizes vary
        (tmp / "config.json").write_text(json.dumps({"payload": payload}))
        write_checksums(tmp, ["weights.bin", "config.json"])
    saves += 1
print(saves)
"""

READER = """
import json, sys, time
from pathlib import Path
from hashbert.io import verify_checksums
path, seconds = Path(sys.argv[1]), float(sys.argv[2])
start, reads, failures = time.monotonic(), 0, []
while time.monotonic() - start < seconds:
    try:
        root = verify_checksums(path, required=["weights.bin", "config.json"])
        payload = json.loads((root / "config.json").read_text())["payload"]
        weights = (root / "weights.bin").read_bytes()
        if weights != payload.encode() * (len(weights) // len(payload)) or len(weights) % len(payload):
            failures.append(f"{payload}: weights of another version")
    except Exception as err:
        failures.append(repr(err))
    reads += 1
print(json.dumps({"reads": reads, "failures": failures[:5], "n_failures": len(failures)}))
"""


def _start(script, *args):
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True)


def _finish(process):
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    return json.loads(out)


def _first_save(path):
    assert _finish(_start(WRITER, path, "first", 10, 1)) == 1


def test_readers_racing_a_writer_never_fail(tmp_path):
    path = tmp_path / "model"
    _first_save(path)
    writer = _start(WRITER, path, "w", 3, 10**6)
    readers = [_start(READER, path, 3) for _ in range(2)]
    results = [_finish(reader) for reader in readers]
    saves = _finish(writer)
    assert saves > 5 and all(r["reads"] > 5 for r in results)
    assert [r["failures"] for r in results] == [[], []], results


def test_concurrent_writers_serialise_and_the_last_version_is_whole(tmp_path):
    path = tmp_path / "model"
    writers = [_start(WRITER, path, label, 10, 15) for label in ("a", "b")]
    assert [_finish(w) for w in writers] == [15, 15]
    root = verify_checksums(path, required=["weights.bin", "config.json"])
    payload = json.loads((root / "config.json").read_text())["payload"]
    assert payload in ("a-14", "b-14") and (root / "weights.bin").read_bytes().startswith(payload.encode())
    remove_stale_temporaries(tmp_path, "model", grace_s=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model", os.readlink(path)])


HOLDER = """
import sys, time
from hashbert.io import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_command_on_the_same_output_fails_at_once(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-c", HOLDER, str(out), "--out", "run"]
    holder = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(ValueError, match=rf"^{out} is in use by pid {holder.pid} on .* \(.*--out run\) since "):
            with output_lock(out):
                pass
        assert time.monotonic() - started < 5
        with output_lock(tmp_path / "other"):  # another --out is free
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / ".lock").is_file()  # a dead holder leaves its file, but not its lock
    with output_lock(out):
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    assert not (out / ".lock").exists()
