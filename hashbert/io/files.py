"""Files that appear whole or not at all, and the ``checksums.json`` every artefact carries (see ``hashbert.io``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

logger = logging.getLogger(__name__)

CHECKSUM_FILE = "checksums.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ArtefactError(ValueError):
    """A saved artefact (model, checkpoint, index) is missing, truncated, altered or of an unknown format."""


def _fsync_path(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:  # some file systems cannot fsync a directory; the data files still were
        if not os.path.isdir(path):
            raise
        logger.debug("cannot fsync directory %s (%s)", path, err)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (bottom-up), ``root`` included."""
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            if not os.path.islink(os.path.join(directory, name)):
                _fsync_path(os.path.join(directory, name))
        _fsync_path(directory)


def _new_temporary(path: Path, make) -> Path:
    """``make(.<name>.<hex8>.tmp)`` beside ``path`` with a fresh name (``make`` must fail if it exists)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            make(tmp)
            return tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it, rename it over ``path``, fsync the directory.

    Args:
        path: final destination.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fds: list[int] = []
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    tmp = _new_temporary(path, lambda p: fds.append(os.open(p, flags, 0o666)))  # the umask applies
    try:
        with os.fdopen(fds[0], mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_path(path.parent)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_json(path: str | Path, shown: str | Path | None = None) -> Any:
    """Read a JSON file, turning a missing or corrupt file into an ``ArtefactError`` naming ``shown`` (or ``path``)."""
    path = Path(path)
    shown = path if shown is None else shown
    if not path.is_file():
        raise ArtefactError(f"{shown}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtefactError(f"{shown}: not valid JSON ({err})") from err


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def artefact_fingerprint(directory: str | Path) -> str:
    """SHA-256 of a saved artefact's ``checksums.json``: it changes whenever any of the artefact's files changes,
    without hashing the (large) files again."""
    return sha256_file(Path(directory) / CHECKSUM_FILE)


def write_checksums(directory: str | Path, names: list[str]) -> None:
    """Record the SHA-256 of each named file of ``directory`` in its ``checksums.json``."""
    directory = Path(directory)
    write_json(directory / CHECKSUM_FILE, {name: sha256_file(directory / name) for name in sorted(names)})


# ---- reading ---------------------------------------------------------------------------------------
def resolve_artefact(path: str | Path) -> Path:
    """The directory that holds the artefact at ``path`` now (its current version; ``path`` itself if plain).

    Loaders that read several files resolve once and read them all from the result, so a concurrent
    save cannot hand them files of two versions.
    """
    return Path(os.path.realpath(path))


def _checked_listing(shown: Path, listing: Any, root: Path) -> dict[str, str]:
    """``checksums.json``'s mapping after refusing what could disable or escape verification."""
    where = shown / CHECKSUM_FILE
    if not isinstance(listing, dict) or not listing:
        raise ArtefactError(f"{where}: expected a non-empty {{file name: sha256}} mapping, got {listing!r:.80}")
    for name, digest in listing.items():
        relative = PurePosixPath(name)
        if not name or relative.is_absolute() or ".." in relative.parts or "\\" in name:
            raise ArtefactError(f"{where}: file name {name!r} points outside the directory")
        if not os.path.realpath(root / name).startswith(str(root) + os.sep):
            raise ArtefactError(f"{where}: {name!r} resolves outside the directory")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ArtefactError(f"{where}: the checksum of {name!r} is {digest!r:.80}, not a sha256 hex digest")
    return listing


def verify_checksums(directory: str | Path, required: Iterable[str] = ()) -> Path:
    """Check every file listed in ``checksums.json`` against its recorded SHA-256; return the verified version.

    Args:
        directory: the artefact (a versioned symlink or a plain directory of older hashbert versions).
        required: names that must be listed (a loader's config and weights), so that a listing emptied
            or cut short cannot switch verification off.

    Returns:
        ``resolve_artefact(directory)``: read the files from it, not from ``directory``.

    Raises:
        ArtefactError: ``PATH: reason`` for a missing, malformed or incomplete listing, a missing file or
            a checksum mismatch (a truncated or altered file).
    """
    shown = Path(directory)
    required = (required,) if isinstance(required, str) else required
    root = resolve_artefact(shown)
    listing = _checked_listing(shown, read_json(root / CHECKSUM_FILE, shown / CHECKSUM_FILE), root)
    if missing := sorted(set(required) - set(listing)):
        raise ArtefactError(f"{shown / CHECKSUM_FILE}: does not list {missing}")
    for name, digest in sorted(listing.items()):
        if not (root / name).is_file():
            raise ArtefactError(f"{shown / name}: missing (listed in {CHECKSUM_FILE})")
        if sha256_file(root / name) != digest:
            raise ArtefactError(f"{shown / name}: checksum mismatch, the file is truncated or was altered")
    return root
