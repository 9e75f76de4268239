"""Atomic writes, checksums and locks shared by every artefact hashbert saves (models, checkpoints, indexes, caches).

``files`` (atomic files, checksums), ``locks`` (``flock``) and ``directories`` (versioned artefact
directories); every name is imported from here.

Why: a crash, a kill or a second command half-way through a save must never leave something that looks
valid, and must never destroy what hashbert did not write. POSIX only (``fcntl``, symlinks, ``fsync`` of
directories). The guarantees:

* ``atomic_write(path)``: the file appears whole or not at all; once the block returns its data and its
  name are on disk (the file and then its directory are fsynced).
* ``atomic_directory(path, kind)``: the directory is built in ``.<name>.<hex8>.tmp`` beside ``path``;
  every file and directory of that tree is fsynced, the tree is renamed to a hidden version
  ``.<name>.v-<stamp>`` (stamp: nanoseconds, strictly increasing per name), and ``path`` becomes a
  relative symlink to it, swapped in by one ``rename`` of a new symlink over the old one; then the parent
  is fsynced. A reader therefore always finds ``path`` and sees the old or the new version whole.
  Readers that open several files call ``resolve_artefact(path)`` once (``verify_checksums`` returns
  that resolved version) and read everything from it, so they never mix two versions.
* Superseded versions are deleted by a later write of the same name (or ``remove_stale_temporaries``)
  once they have been superseded for ``SUPERSEDED_GRACE_S`` seconds (``hashbert.io.directories``), so a
  reader that resolved the old version just before a swap can finish reading it; until then the
  replaced version stays on disk. ``remove_artefact`` deletes an artefact with all its versions.
* Writers of one ``path`` are serialised by ``flock`` on ``.<name>.lock`` beside it: concurrent saves
  never fail and the last one wins whole. The lock also tells whether a leftover temporary belongs to
  a live writer: ``remove_stale_temporaries`` (also run by every ``atomic_directory``) removes only
  those of dead writers. Inside another ``atomic_directory``'s tree (an embedded model) a directory is
  written plainly: nothing can read that tree before the outer swap.
* What hashbert did not write is never replaced without ``overwrite=True``: every published directory
  holds ``.hashbert-artefact`` (``{"kind": ...}``); directories of older hashbert versions are recognised
  by their ``checksums.json`` (kind read from ``config.json`` ``type``, ``header.json``, ...).
* Older artefacts are plain directories and load unchanged. The first save over one renames it to a
  version and then installs the symlink: between those two renames (microseconds, once per artefact)
  ``path`` is missing.
* ``cp -r path dst`` copies the symlink itself (dangling elsewhere): copy with ``cp -rL``, ``cp -r path/
  dst``, ``shutil.copytree`` (follows it) or copy the parent directory (the link is relative).
* Modes follow the process umask (and default ACLs) at call time: temporaries are created with
  ``O_EXCL`` mode 0666 / ``mkdir`` 0777 and the kernel applies the umask; it is never read, because
  ``os.umask`` is process-global and setting it to read it races with other threads.
* ``output_lock(directory)`` refuses, at once, a second command writing the same output directory.
"""

from __future__ import annotations

from hashbert.io.directories import (
    MARKER_FILE,
    SUPERSEDED_GRACE_S,
    atomic_directory,
    check_replaceable,
    claimed_output,
    remove_artefact,
    remove_stale_temporaries,
)
from hashbert.io.files import (
    CHECKSUM_FILE,
    ArtefactError,
    artefact_fingerprint,
    atomic_write,
    read_json,
    resolve_artefact,
    sha256_file,
    verify_checksums,
    write_checksums,
    write_json,
)
from hashbert.io.locks import output_lock

__all__ = [
    "CHECKSUM_FILE", "MARKER_FILE", "SUPERSEDED_GRACE_S", "ArtefactError", "artefact_fingerprint", "atomic_directory",
    "atomic_write", "check_replaceable", "claimed_output", "output_lock", "read_json", "remove_artefact",
    "remove_stale_temporaries", "resolve_artefact", "sha256_file", "verify_checksums", "write_checksums", "write_json",
]
