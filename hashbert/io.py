"""Atomic writes and checksums shared by every artefact hashbert saves (models, indexes, caches).

Why: a crash half-way through a save must never leave a file that looks valid. Every writer goes
through ``atomic_write`` (temp file in the same directory, fsync, rename) and every artefact
directory carries a ``checksums.json`` that ``verify_checksums`` checks on load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

CHECKSUM_FILE = "checksums.json"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class ArtefactError(ValueError):
    """A saved artefact (model, checkpoint, index) is missing, truncated, altered or of an unknown format."""


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    Args:
        path: final destination.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; the result should be an ordinary file
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file, turning a missing or corrupt file into an ``ArtefactError``."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtefactError(f"{path}: not valid JSON ({err})") from err


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(directory: str | Path, names: list[str]) -> None:
    """Record the SHA-256 of each named file of ``directory`` in its ``checksums.json``."""
    directory = Path(directory)
    write_json(directory / CHECKSUM_FILE, {name: sha256_file(directory / name) for name in sorted(names)})


def verify_checksums(directory: str | Path) -> None:
    """Raise ``ArtefactError`` unless every file listed in ``checksums.json`` exists with its recorded hash."""
    directory = Path(directory)
    expected = read_json(directory / CHECKSUM_FILE)
    for name, digest in expected.items():
        path = directory / name
        if not path.is_file():
            raise ArtefactError(f"{path}: missing (listed in {CHECKSUM_FILE})")
        if sha256_file(path) != digest:
            raise ArtefactError(f"{path}: checksum mismatch, the file is truncated or was altered")


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success it replaces ``path`` whole.

    Why: a model directory holds several files that must change together; readers see either the
    old complete directory or the new complete one, never a mixture.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
