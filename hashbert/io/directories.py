"""Artefact directories: versions behind a symlink swapped by one rename, per-name writer locks, leftovers.

See ``hashbert.io`` for the layout and the guarantees.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path

from hashbert.io.files import CHECKSUM_FILE, ArtefactError, _fsync_path, _fsync_tree, _new_temporary
from hashbert.io.locks import _open_locked, _release, output_lock

logger = logging.getLogger(__name__)

MARKER_FILE = ".hashbert-artefact"
FULL_DISK_BYTES = 64 * 2**20  # below this, a failed artefact write is blamed on the full disk
SUPERSEDED_GRACE_S = 60.0  # how long a replaced version stays readable for readers that resolved it
# Artefacts written before MARKER_FILE existed: a file that names the kind (else config.json "type").
_OLD_KIND_FILES = (
    ("header.json", "index"), ("fingerprint.json", "vector-cache"), ("post_training.json", "encoder"),
    ("lm_config.json", "causal-lm"), ("optimizer.pt", "checkpoint"), ("vectors.safetensors", "hdr-cache"),
)
_filling: set[str] = set()  # real paths of the temporary trees this process is filling
_filling_lock = threading.Lock()


def _recorded_kind(path: Path) -> tuple[bool, str | None]:
    """(written by hashbert, its kind or None when unknown) for what is at ``path``."""
    if path.is_symlink() and not path.exists():
        return True, None  # a dangling link: replacing it loses nothing
    if not path.is_dir():
        return False, None
    if (path / MARKER_FILE).is_file():
        return True, _json_text(path / MARKER_FILE, "kind")
    if not (path / CHECKSUM_FILE).is_file():
        return not any(path.iterdir()), None  # an empty directory may be replaced
    for name, kind in _OLD_KIND_FILES:
        if (path / name).is_file():
            return True, kind
    return True, _json_text(path / "config.json", "type")


def _json_text(path: Path, key: str) -> str | None:
    """``key`` of the JSON object in ``path`` if it is a string, else None."""
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _a(kind: str) -> str:
    return f"a{'n' if kind[:1] in tuple('aeiou') else ''} {kind}"


def _describe(path: Path, kind: str | None) -> str:
    if kind is not None:
        return _a(kind)
    if not path.is_dir():
        return "a file" if path.is_file() else "something that is not a directory"
    names = sorted(p.name for p in path.iterdir())
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    return f"{len(names)} entr{'y' if len(names) == 1 else 'ies'}: {shown}"


def check_replaceable(path: str | Path, kind: str | None = None, overwrite: bool = False) -> None:
    """Raise ``ValueError`` unless ``atomic_directory(path, kind)`` may replace what is at ``path``.

    Replaceable: nothing, an empty directory, a dangling symlink, or an artefact hashbert wrote of the same
    ``kind`` (any hashbert artefact when ``kind`` or its recorded kind is unknown); anything with
    ``overwrite``. Commands call it before long work so that the refusal comes first, not after training.
    """
    path = Path(path)
    if overwrite or not os.path.lexists(path):
        return
    written, found = _recorded_kind(path)
    if written and (kind is None or found is None or found == kind):
        return
    holds = _describe(path, found if written else None)
    raise ValueError(
        f"{path} exists and was not written by hashbert as {_a(kind or 'artefact')} (it holds {holds});"
        " pass --overwrite to replace it, or choose another path"
    )


# ---- versions and leftovers --------------------------------------------------------------------------
def _version_name(name: str, stamp: int) -> str:
    return f".{name}.v-{stamp:020d}"


def _versions(parent: Path, name: str) -> list[tuple[int, Path]]:
    """(stamp, path) of every ``.<name>.v-<stamp>`` directory in ``parent``, oldest first."""
    pattern = re.compile(rf"\.{re.escape(name)}\.v-(\d+)")
    found = [(int(m[1]), parent / m[0]) for p in _listing(parent) if (m := pattern.fullmatch(p))]
    return sorted(found)


def _listing(parent: Path) -> list[str]:
    try:
        return os.listdir(parent)
    except FileNotFoundError:
        return []


def _current_stamp(path: Path) -> int | None:
    """The stamp of the version ``path`` links to, or None when it is not such a link."""
    if not path.is_symlink():
        return None
    match = re.fullmatch(rf"\.{re.escape(path.name)}\.v-(\d+)", os.readlink(path))
    return int(match[1]) if match else None


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _remove_leftovers(parent: Path, name: str, grace_s: float) -> list[Path]:
    """With ``name``'s lock held: remove its temporaries and the versions no reader may still be reading."""
    leftover = re.compile(rf"\.{re.escape(name)}\.(?:[a-z0-9_]{{8}}\.tmp|link\.tmp|old)")
    removed = [parent / n for n in _listing(parent) if leftover.fullmatch(n) and not (parent / n).is_file()]
    versions, current = _versions(parent, name), _current_stamp(parent / name)
    now = time.time_ns()
    for i, (stamp, version) in enumerate(versions):
        if stamp == current:
            continue
        if current is None or stamp > current:  # unreachable: its writer died before linking it, or unlinked
            removed.append(version)
        elif now - (versions[i + 1][0] if i + 1 < len(versions) else current) > grace_s * 1e9:  # since replaced
            removed.append(version)
    for path in removed:
        _remove(path)
    if removed:
        logger.info("removed leftovers of %s: %s", parent / name, [p.name for p in removed])
    return removed


def _leftover_names(parent: Path, pattern: str) -> set[str]:
    leftover = re.compile(r"\.(.+)\.(?:[a-z0-9_]{8}\.tmp|link\.tmp|old|v-\d+|lock)")  # a dead writer's lock file too
    names = {m[1] for n in _listing(parent) if (m := leftover.fullmatch(n))}
    return {name for name in names if fnmatchcase(name, pattern)}


def remove_stale_temporaries(
    parent: str | Path, name: str = "*", grace_s: float = SUPERSEDED_GRACE_S
) -> list[Path]:
    """Remove what dead writers left beside ``parent/name``: temporaries and unreachable old versions.

    A writer holds ``.<name>.lock`` while it writes, so the leftovers of a name whose lock is held are
    kept (a live writer's temporary is never removed). Superseded versions go once superseded for
    ``grace_s`` seconds; versions never linked go at once.

    Args:
        parent: the directory that holds the artefacts.
        name: an artefact name or an ``fnmatch`` pattern (``"step-*"`` for every checkpoint).
        grace_s: 0 when no reader can be reading an old version.

    Returns:
        The removed paths.
    """
    parent, removed = Path(parent), []
    for artefact in sorted(_leftover_names(parent, name)):
        lock = parent / f".{artefact}.lock"
        fd = _open_locked(lock, blocking=False)
        if fd is None:
            continue  # a live writer
        try:
            removed += _remove_leftovers(parent, artefact, grace_s)
        finally:
            _release(lock, fd)
    return removed


def remove_artefact(path: str | Path) -> None:
    """Delete the artefact at ``path`` (its link, every version, leftovers), after any writer of it finishes."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    lock = path.parent / f".{path.name}.lock"
    fd = _open_locked(lock, blocking=True)
    try:
        if os.path.lexists(path):
            _remove(path)
        _remove_leftovers(path.parent, path.name, grace_s=0.0)
    finally:
        _release(lock, fd)


# ---- directories -------------------------------------------------------------------------------------
def _inside_temporary(path: Path) -> bool:
    real = Path(os.path.realpath(path.parent))
    with _filling_lock:
        return any(str(p) in _filling for p in (real, *real.parents))


@contextmanager
def _filling_tree(tmp: Path) -> Iterator[None]:
    with _filling_lock:
        _filling.add(os.path.realpath(tmp))
    try:
        yield
    finally:
        with _filling_lock:
            _filling.discard(os.path.realpath(tmp))


def _write_marker(tmp: Path, kind: str | None) -> None:
    (tmp / MARKER_FILE).write_text(json.dumps({"kind": kind, "format": 1}) + "\n", encoding="utf-8")


def _publish(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` to a new version and point ``path`` at it with one rename; fsync the parent."""
    parent, name = path.parent, path.name
    stamp = max(time.time_ns(), max((s for s, _ in _versions(parent, name)), default=0) + 1)
    old = parent / _version_name(name, stamp) if path.is_dir() and not path.is_symlink() else None  # older hashbert
    new = parent / _version_name(name, stamp if old is None else stamp + 1)
    os.rename(tmp, new)
    link = parent / f".{name}.link.tmp"
    link.unlink(missing_ok=True)
    os.symlink(new.name, link)
    if old is None:
        os.replace(link, path)
    else:
        os.rename(path, old)  # once per plain directory: `path` is missing until the next rename
        try:
            os.replace(link, path)
        except BaseException:
            os.rename(old, path)
            raise
    _fsync_path(parent)


@contextmanager
def _plain_directory(path: Path, kind: str | None) -> Iterator[Path]:
    """Inside another atomic_directory's tree: build beside ``path`` and rename (the outer save fsyncs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(path, lambda p: p.mkdir(0o777))
    try:
        yield tmp
        _write_marker(tmp, kind)
        if os.path.lexists(path):
            _remove(path)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_directory(path: str | Path, kind: str | None = None, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success it replaces ``path`` whole, durably.

    Why: an artefact holds several files that must change together; readers see either the old complete
    version or the new complete one, never a mixture (see the module docstring for the layout).

    Args:
        path: the artefact; afterwards a symlink to its current version.
        kind: what it is (a model type, ``"checkpoint"``, ``"index"``, ...), recorded in it and checked
            against what is already at ``path``.
        overwrite: replace whatever is at ``path``, even what hashbert did not write.

    Raises:
        ValueError: ``path`` holds something else (see ``check_replaceable``); nothing is written.
    """
    path = Path(path)
    if _inside_temporary(path):
        with _plain_directory(path, kind) as tmp:
            yield tmp
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    fd = _open_locked(lock, blocking=False)
    if fd is None:
        logger.info("another process is writing %s; waiting for it to finish", path)
        fd = _open_locked(lock, blocking=True)
    try:
        _remove_leftovers(path.parent, path.name, SUPERSEDED_GRACE_S)
        check_replaceable(path, kind, overwrite)
        tmp = _new_temporary(path, lambda p: p.mkdir(0o777))  # the umask applies
        try:
            with _filling_tree(tmp):
                yield tmp
            _write_marker(tmp, kind)
            _fsync_tree(tmp)
            _publish(tmp, path)
        except BaseException as err:
            full = _disk_full(tmp, err)
            shutil.rmtree(tmp, ignore_errors=True)
            if full:
                raise ArtefactError(f"could not write {path}: {full}; nothing was replaced") from err
            raise
        _remove_leftovers(path.parent, path.name, SUPERSEDED_GRACE_S)
    finally:
        _release(lock, fd)


def _disk_full(tmp: Path, err: BaseException) -> str | None:
    """Why a write into ``tmp`` failed when the cause is a full disk, else None.

    Why: torch's writer reports a full disk as ``RuntimeError: ... unexpected pos``, not ``ENOSPC``; the
    user should read "the disk is full", not a traceback.
    """
    enospc = isinstance(err, OSError) and err.errno == errno.ENOSPC
    if not enospc and not isinstance(err, RuntimeError):
        return None
    free = shutil.disk_usage(tmp if tmp.exists() else tmp.parent).free
    if not enospc and free > FULL_DISK_BYTES:  # a RuntimeError with room left is not about the disk
        return None
    return f"the disk is full ({free / 2**20:.0f} MiB free on {tmp.parent}); free space and run it again"


@contextmanager
def claimed_output(directory: str | Path, artefacts: Iterable[tuple[str, str | None]], overwrite: bool = False):
    """Hold ``output_lock(directory)`` and make sure each ``(name, kind)`` artefact may be written under it.

    Why before the work: a command that trains for an hour must refuse at once, not at save time, to
    replace what hashbert did not write (or an artefact of another kind); with ``overwrite`` such a path
    is deleted first, as asked.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with output_lock(directory):
        for name, kind in artefacts:
            try:
                check_replaceable(directory / name, kind)
            except ValueError:
                if not overwrite:
                    raise
                remove_artefact(directory / name)
        yield directory
