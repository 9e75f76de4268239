"""Text files read line by line, each line decoded on its own, every problem reported as ``file:line: reason``.

Why a module of its own: every corpus file hashbert reads (response-selection corpora, speakers
sidecars, response pools) shares these rules, and the rules are where malformed input is caught:
``\\n``, ``\\r\\n`` and a lone ``\\r`` each end a line (Python's universal newlines: a CR-only file is
not one giant line), a bad UTF-8 byte is reported at its line, a BOM is dropped from line 1, a blank
line is an error, and a directory, a missing or an empty file is a line-0 error (``"path: reason"``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]


class CorpusFormatError(ValueError):
    """A corpus file is missing or malformed; ``str(err)`` is ``"path:line_no: reason"`` (line 0: ``"path: reason"``).

    Args:
        path: the file.
        line_no: 1-based line, 0 for a problem with the whole file (missing, empty, a directory).
        reason: what is wrong, with the offending value.
    """

    def __init__(self, path: str | Path, line_no: int, reason: str) -> None:
        self.path = str(path)
        self.line_no = line_no
        self.reason = reason
        super().__init__(f"{self.path}:{line_no}: {reason}" if line_no else f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        return (type(self), (self.path, self.line_no, self.reason))


@dataclass
class ReadReport:
    """What a read saw: lines read and the lines skipped (``on_error="skip"``), each as its error."""

    path: str
    lines_read: int = 0
    errors: list[CorpusFormatError] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        """Number of lines skipped."""
        return len(self.errors)

    def summary(self) -> str:
        """One line, e.g. ``"c.txt: 3 of 1000 lines skipped (first: c.txt:17: bad label '2', expected 1 or 0)"``."""
        if not self.errors:
            return f"{self.path}: {self.lines_read} lines read, none skipped"
        return f"{self.path}: {self.n_skipped} of {self.lines_read} lines skipped (first: {self.errors[0]})"


class LineError(Exception):
    """A malformed line; the caller adds the path and line number."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_on_error(on_error: str) -> None:
    """Raise ``ValueError`` unless ``on_error`` is ``"raise"`` or ``"skip"``."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def raw_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_no, bytes)`` for each line of ``path``, without its ending.

    Whole-file problems are line-0 errors: a directory (e.g. a corpus folder given for its test file),
    a missing file, or an empty one (it would otherwise give zero groups and fail far from its cause).
    """
    path = Path(path)
    if path.is_dir():
        raise CorpusFormatError(path, 0, "is a directory, expected a corpus file")
    if not path.is_file():
        raise CorpusFormatError(path, 0, "file not found")
    if path.stat().st_size == 0:
        raise CorpusFormatError(path, 0, "empty file")
    with open(path, "rb") as handle:
        yield from enumerate(_split_line_endings(handle), start=1)


def _split_line_endings(handle: Iterable[bytes]) -> Iterator[bytes]:
    """Lines of a binary file without their endings: ``\\n``, ``\\r\\n`` and a lone ``\\r`` each end a line.

    Why: iterating a binary file splits on ``\\n`` only, so a CR-only file read as one line holding
    every candidate (one group of one candidate: MRR 100). Splitting the ``\\n``-lines on ``\\r`` keeps
    the fast C reader for ordinary files; a ``\\r`` just before ``\\n`` (or at the end of the file) is
    the end of its line, not an empty line after it.
    """
    for raw in handle:
        body = raw[:-1] if raw.endswith(b"\n") else raw
        pieces = body.split(b"\r")
        if body.endswith(b"\r"):
            pieces.pop()
        yield from pieces


def decode_line(raw: bytes, line_no: int) -> str:
    """Decode one line (ending already removed) as UTF-8, dropping a BOM on line 1; reject blank lines."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        snippet = raw[max(0, err.start - 12) : err.end + 12]
        raise LineError(f"invalid UTF-8 at byte {err.start} of the line ({snippet!r})") from None
    if line_no == 1:
        text = text.removeprefix("\ufeff")
    if not text.strip():
        raise LineError("empty line")
    return text
