"""Read and write the standard response-selection format, with errors that name ``file:line``.

One candidate per line: ``label \\t utterance_1 \\t ... \\t utterance_n \\t response`` in UTF-8,
label ``1`` or ``0``, n >= 1 (Ubuntu, Douban, E-commerce, RRS all use it). Re-rank files group
consecutive lines sharing a context (10 per context, the same number in every group, at least 2);
training files are read for their positives. A speakers sidecar ``<name>.speakers`` beside
``<name>.txt`` holds, per line, the space-separated 0/1 sender of each utterance of that line,
response included. A response pool file holds one response per line.

Lines are split and decoded by ``hashbert.data.lines`` (``\\n``, ``\\r\\n`` or a lone ``\\r`` ends a line;
a bad byte is reported at its line). In ``on_error="skip"`` mode bad lines are recorded in a
``ReadReport`` and reading goes on; structural problems (a missing, empty or directory path,
inconsistent group sizes, a context whose candidates are not adjacent, a speakers file out of step
with its corpus) always raise.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from hashbert.data.lines import (  # CorpusFormatError, OnError and ReadReport are also public here
    CorpusFormatError,
    LineError,
    OnError,
    ReadReport,
    check_on_error,
    decode_line,
    raw_lines,
)
from hashbert.data.prefixes import check_max_context_turns, expand_prefixes, last_prefix
from hashbert.data.records import ContextResponse, Dialogue, LabelledLine, RerankGroup
from hashbert.io import atomic_write

logger = logging.getLogger(__name__)

SPEAKERS_SUFFIX = ".speakers"


def _parse_labelled(text: str, line_no: int) -> LabelledLine:
    """``label \\t utt_1 ... \\t response`` -> ``LabelledLine``; ``LineError`` says what is wrong."""
    fields = text.split("\t")
    if len(fields) < 3:
        expected = "expected at least 3 (label, utterance, response)"
        raise LineError(f"wrong field count: {len(fields)} tab-separated field(s), {expected}")
    if fields[0] not in ("0", "1"):
        raise LineError(f"bad label {fields[0][:40]!r}, expected 1 or 0")
    for index in range(1, len(fields)):
        if not fields[index].strip():
            what = "the response" if index == len(fields) - 1 else f"utterance {index}"
            raise LineError(f"empty text in {what} (field {index + 1} of {len(fields)})")
    return LabelledLine(int(fields[0]), tuple(fields[1:-1]), fields[-1], line_no)


def iter_labelled_lines(
    path: str | Path, on_error: OnError = "raise", report: ReadReport | None = None
) -> Iterator[LabelledLine]:
    """Parse a response-selection file line by line.

    Args:
        path: UTF-8 file, one ``label \\t utt_1 ... \\t response`` candidate per line.
        on_error: ``"raise"`` the first ``CorpusFormatError``, or ``"skip"`` bad lines.
        report: filled with the lines read and the skipped lines' errors.

    Yields:
        One ``LabelledLine`` per valid line, in file order.

    Raises:
        CorpusFormatError: a missing file (line 0) always; a bad line in ``"raise"`` mode.
    """
    check_on_error(on_error)
    report = ReadReport(str(path)) if report is None else report
    for line_no, raw in raw_lines(path):
        report.lines_read += 1
        try:
            line = _parse_labelled(decode_line(raw, line_no), line_no)
        except LineError as err:
            error = CorpusFormatError(path, line_no, err.reason)
            if on_error == "raise":
                raise error from None
            report.errors.append(error)
            logger.debug("skipped %s", error)
            continue
        yield line
    if report.errors:
        logger.warning(report.summary())


def read_rerank_groups(
    path: str | Path,
    group_size: int | None = None,
    on_error: OnError = "raise",
    report: ReadReport | None = None,
    speakers_path: str | Path | None = None,
) -> list[RerankGroup]:
    """Read a test/validation file as groups of consecutive candidates sharing one context.

    Every group must have the same number of candidates, at least 2: a group of one scores 100 on
    every metric and mixed sizes cannot be averaged into one R@k. Two test contexts may be the same
    text (a lone "Hello"): a run of identical contexts whose length is a multiple of the group size
    splits into several groups, and a context may come back later, as long as every such group has a
    positive. Otherwise its candidates were scattered, and the file is refused.

    Args:
        path: response-selection file.
        group_size: candidates per context; ``None`` takes the most common run length.
        on_error: ``"raise"`` or ``"skip"`` malformed lines (a skipped line breaks its group's size).
        report: filled with lines read and skipped.
        speakers_path: optional speakers sidecar; sets each group's context ``speakers``.

    Returns:
        The groups in file order; groups with no positive are kept (the metrics skip them).

    Raises:
        CorpusFormatError: a bad line (raise mode), a missing/empty file or a directory, no valid
            line, or a malformed structure (always, naming the group's first line).
    """
    if group_size is not None and group_size < 2:
        raise ValueError(f"group_size must be None or >= 2, got {group_size!r}")
    report = ReadReport(str(path)) if report is None else report
    speakers = None if speakers_path is None else read_speakers(speakers_path)
    lines = list(iter_labelled_lines(path, on_error, report))
    if not lines:
        skipped = f"{report.n_skipped} of {report.lines_read} lines skipped"
        raise CorpusFormatError(path, 0, f"no valid line to read ({skipped})")
    runs = [list(run) for _, run in itertools.groupby(lines, key=lambda line: line.context)]
    if group_size is None:
        group_size, source = Counter(len(run) for run in runs).most_common(1)[0][0], "the most common group size"
    else:
        source = "group_size"
    _check_runs(path, runs, group_size, source)
    chunks = [run[i : i + group_size] for run in runs for i in range(0, len(run), group_size)]
    groups = [_group(chunk, speakers, speakers_path) for chunk in chunks]
    _check_speakers_count(speakers, speakers_path, report)
    return groups


def _check_runs(path: str | Path, runs: list[list[LabelledLine]], size: int, source: str) -> None:
    """Raise ``CorpusFormatError`` unless every run of same-context lines is whole groups of ``size`` >= 2.

    A context met in several runs (adjacent groups or later in the file) must have a positive in each
    of its groups: a part without one is the sign of scattered candidates, which the metrics would
    silently skip as a context without a positive.
    """
    if size == 1:
        reason = "1 candidate for this context; re-ranking needs at least 2 per context (is this a training file?)"
        raise CorpusFormatError(path, next(run for run in runs if len(run) == 1)[0].line_no, reason)
    runs_of: dict[tuple[str, ...], list[list[LabelledLine]]] = defaultdict(list)
    for run in runs:
        runs_of[run[0].context].append(run)
    scattered = {
        context for context, same in runs_of.items()
        if len(same) > 1 and not all(len(r) % size == 0 and _chunk_without_positive(r, size) is None for r in same)
    }
    for run in runs:
        if run[0].context in scattered:
            first, again = runs_of[run[0].context][:2]
            reason = f"candidates of the context first seen at line {first[0].line_no} are not adjacent"
            raise CorpusFormatError(path, again[0].line_no, reason)
        if len(run) % size:
            plural = "s" if len(run) > 1 else ""
            reason = f"group of {len(run)} candidate{plural} with the same context, expected {size} ({source})"
            raise CorpusFormatError(path, run[0].line_no, reason)
        if len(run) > size and (line_no := _chunk_without_positive(run, size)) is not None:
            reason = (
                f"{len(run)} candidates with the same context split into groups of {size} only when each has a "
                f"positive; the group at line {line_no} has none"
            )
            raise CorpusFormatError(path, run[0].line_no, reason)


def _chunk_without_positive(run: list[LabelledLine], size: int) -> int | None:
    """First line of the first ``size``-chunk of ``run`` with no positive, or None when every chunk has one."""
    for start in range(0, len(run), size):
        if not any(line.label for line in run[start : start + size]):
            return run[start].line_no
    return None


def _group(chunk: list[LabelledLine], speakers: list | None, speakers_path: str | Path | None) -> RerankGroup:
    """One ``RerankGroup`` from consecutive candidate lines, with its context's speakers from the sidecar."""
    rows = None if speakers is None else [_speakers_of(speakers, speakers_path, line) for line in chunk]
    return RerankGroup(
        context=chunk[0].context,
        candidates=tuple(line.response for line in chunk),
        labels=tuple(line.label for line in chunk),
        line_no=chunk[0].line_no,
        speakers=None if rows is None else rows[0][:-1],
    )


def read_training_pairs(
    path: str | Path,
    expansion: Literal["full", "last"] = "full",
    on_error: OnError = "raise",
    report: ReadReport | None = None,
    max_context_turns: int | None = None,
    speakers_path: str | Path | None = None,
) -> list[ContextResponse]:
    """Read the positive (label 1) lines of a file as (context, response) training pairs.

    Args:
        path: response-selection file; label-0 lines are ignored.
        expansion: ``"last"``: one pair per line, as written; ``"full"``: the line's utterances and
            response form a dialogue and every prefix predicts its next turn (``expand_prefixes``).
        on_error: ``"raise"`` or ``"skip"`` malformed lines.
        report: filled with lines read and skipped.
        max_context_turns: keep only the newest this many context turns (both expansions).
        speakers_path: optional speakers sidecar; fills the pairs' speaker fields.

    Returns:
        Distinct (context, response) pairs in first-seen order (the first one's speakers kept).
    """
    if expansion not in ("full", "last"):
        raise ValueError(f"expansion must be 'full' or 'last', got {expansion!r}")
    check_max_context_turns(max_context_turns)
    report = ReadReport(str(path)) if report is None else report
    speakers = None if speakers_path is None else read_speakers(speakers_path)
    pairs: dict[tuple[tuple[str, ...], str], ContextResponse] = {}
    for line in iter_labelled_lines(path, on_error, report):
        row = None if speakers is None else _speakers_of(speakers, speakers_path, line)
        if line.label != 1:
            continue
        dialogue = Dialogue(f"{path}:{line.line_no}", (*line.context, line.response), row)
        if expansion == "full":
            new = expand_prefixes(dialogue, max_context_turns)
        else:
            new = [last_prefix(dialogue, max_context_turns)]
        for pair in new:
            pairs.setdefault((pair.context, pair.response), pair)
    _check_speakers_count(speakers, speakers_path, report)
    return list(pairs.values())


def _check_text(text: object, where: str) -> str:
    """Return ``text`` if it is a non-blank str without tab or newline, else raise ``ValueError``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: empty or non-string text {text!r}")
    if "\t" in text or "\n" in text or "\r" in text:
        raise ValueError(f"{where}: text contains a tab or newline: {text[:80]!r}")
    return text


def write_response_selection(path: str | Path, rows: Iterable[tuple[int, Sequence[str], str]]) -> None:
    """Write ``label \\t utt_1 ... \\t response`` lines atomically (UTF-8, ``\\n`` endings).

    Args:
        path: destination; replaced only once every row has been written.
        rows: ``(label, context, response)`` with label 0/1 and at least one context utterance.

    Raises:
        ValueError: a bad label, an empty context, or a text that is blank or holds a tab/newline.
    """
    with atomic_write(path, "wb") as handle:
        for index, (label, context, response) in enumerate(rows):
            where = f"{path}: row {index}"
            if label not in (0, 1):
                raise ValueError(f"{where}: label must be 0 or 1, got {label!r}")
            if isinstance(context, str) or not context:
                raise ValueError(f"{where}: context must be a non-empty sequence of utterances, got {context!r}")
            fields = [str(int(label)), *(_check_text(text, where) for text in (*context, response))]
            handle.write(("\t".join(fields) + "\n").encode())


def speakers_path_for(path: str | Path) -> Path:
    """The speakers sidecar of a corpus file: ``dir/name.txt`` -> ``dir/name.speakers``."""
    return Path(path).with_suffix(SPEAKERS_SUFFIX)


def existing_speakers_path(path: str | Path) -> Path | None:
    """The speakers sidecar of a corpus file when it exists (chitchat writes one), else None."""
    sidecar = speakers_path_for(path)
    return sidecar if sidecar.is_file() else None


def write_speakers(path: str | Path, rows: Iterable[Sequence[int]]) -> None:
    """Write a speakers sidecar atomically: per corpus line, the space-separated 0/1 of each utterance."""
    with atomic_write(path, "wb") as handle:
        for index, row in enumerate(rows):
            if not row or any(speaker not in (0, 1) for speaker in row):
                raise ValueError(f"{path}: row {index}: speakers must be a non-empty sequence of 0/1, got {row!r}")
            handle.write((" ".join(str(int(speaker)) for speaker in row) + "\n").encode())


def read_speakers(path: str | Path) -> list[tuple[int, ...]]:
    """Read a speakers sidecar: one tuple of 0/1 per line. Raises ``CorpusFormatError`` on any bad line."""
    rows = []
    for line_no, raw in raw_lines(path):
        try:
            tokens = decode_line(raw, line_no).split()
            if any(token not in ("0", "1") for token in tokens):
                raise LineError(f"bad speaker in {tokens[:12]!r}, expected space-separated 0/1")
        except LineError as err:
            raise CorpusFormatError(path, line_no, err.reason) from None
        rows.append(tuple(int(token) for token in tokens))
    return rows


def _speakers_of(speakers: list[tuple[int, ...]], speakers_path: str | Path, line: LabelledLine) -> tuple[int, ...]:
    """The sidecar row of ``line``: one speaker per utterance, response included."""
    if line.line_no > len(speakers):
        raise CorpusFormatError(speakers_path, len(speakers), f"speakers file ends before corpus line {line.line_no}")
    row = speakers[line.line_no - 1]
    if len(row) != len(line.context) + 1:
        reason = f"{len(row)} speakers for {len(line.context) + 1} utterances (response included) of the corpus line"
        raise CorpusFormatError(speakers_path, line.line_no, reason)
    return row


def _check_speakers_count(speakers: list | None, speakers_path: str | Path | None, report: ReadReport) -> None:
    """Raise if a sidecar has a different number of lines from its corpus."""
    if speakers is not None and len(speakers) != report.lines_read:
        reason = f"{len(speakers)} lines of speakers for {report.lines_read} corpus lines ({report.path})"
        raise CorpusFormatError(speakers_path, 0, reason)


def write_response_pool(path: str | Path, texts: Iterable[str]) -> None:
    """Write a response pool atomically, one response per line.

    A first response that starts with U+FEFF gets a byte-order mark before it: the reader drops one
    BOM at the start of the file, and would otherwise take the response's own for it.
    """
    with atomic_write(path, "wb") as handle:
        for index, text in enumerate(texts):
            bom = "\ufeff" if index == 0 and isinstance(text, str) and text.startswith("\ufeff") else ""
            handle.write((bom + _check_text(text, f"{path}: row {index}") + "\n").encode())


def read_response_pool(path: str | Path) -> list[str]:
    """Read a response pool written by ``write_response_pool``; ``CorpusFormatError`` on a bad line."""
    texts = []
    for line_no, raw in raw_lines(path):
        try:
            texts.append(decode_line(raw, line_no))
        except LineError as err:
            raise CorpusFormatError(path, line_no, err.reason) from None
    return texts
