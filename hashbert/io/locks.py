"""``flock`` locks: the kernel drops them when their process dies, so a stale lock file never blocks."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _open_locked(path: Path, blocking: bool) -> int | None:
    """An fd holding ``flock(LOCK_EX)`` on ``path`` (created if needed); None if busy and not ``blocking``."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except BlockingIOError:
            os.close(fd)
            return None
        except FileNotFoundError:  # the holder unlinked it while we waited: lock the new file instead
            same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd
        os.close(fd)


def _release(path: Path, fd: int) -> None:
    """Unlink the lock file while still holding it (waiters see another inode and retry), then unlock."""
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _holder(lock: Path) -> str:
    try:
        info = json.loads(lock.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']} ({info['command']}) since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it has not recorded itself yet)"


@contextmanager
def output_lock(directory: str | Path) -> Iterator[Path]:
    """Hold ``<directory>/.lock`` (``flock``, released by the kernel when the process dies) while writing outputs.

    Raises:
        ValueError: at once, when another live process holds it: ``"<dir> is in use by pid N on HOST
            (<command>) since <time>; wait for it or use another --out"``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / ".lock"
    fd = _open_locked(lock, blocking=False)
    if fd is None:
        raise ValueError(f"{directory} is in use by {_holder(lock)}; wait for it or use another --out")
    try:
        info = {
            "pid": os.getpid(), "host": socket.gethostname(), "command": shlex.join(sys.argv)[:300],
            "since": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield directory
    finally:
        _release(lock, fd)
