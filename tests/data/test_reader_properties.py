"""Property: any bytes, any line endings, never crash the corpus readers.

Every input either raises ``CorpusFormatError`` whose text is ``file:line: reason`` (``file: reason``
for the whole file), or gives records that round-trip through the writers unchanged.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hashbert.data import (
    CorpusFormatError,
    iter_labelled_lines,
    read_rerank_groups,
    read_response_pool,
    write_response_pool,
    write_response_selection,
)

# Pieces that make near-valid files likely (labels, tabs, every line ending, a BOM, bad UTF-8,
# whitespace-only text) mixed with arbitrary bytes, so both the parser and the structure checks run.
PIECES = [b"1", b"0", b"\t", b"\n", b"\r\n", b"\r", b"a", b"b", b" ", b"\xef\xbb\xbf", b"\xff", b"\xc3\xa9", b"2"]
CORPUS_BYTES = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(PIECES), max_size=80).map(b"".join),
    st.lists(  # whole lines: label, one or two turns from a small set (so contexts repeat), a response
        st.tuples(
            st.sampled_from([b"0", b"1"]),
            st.lists(st.sampled_from([b"a", b"b", b"c c"]), min_size=1, max_size=2),
            st.sampled_from([b"r", b"s", b"t", b""]),
            st.sampled_from([b"\n", b"\r\n", b"\r"]),
        ).map(lambda t: b"\t".join([t[0], *t[1], t[2]]) + t[3]),
        max_size=30,
    ).map(b"".join),
)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _written(content: bytes) -> Path:
    """``content`` in a fresh file (Hypothesis runs many examples per test, so no tmp_path fixture)."""
    path = Path(tempfile.mkdtemp(prefix="reader-prop-")) / "corpus.txt"
    path.write_bytes(content)
    return path


def _assert_located(err: CorpusFormatError, path: Path) -> None:
    """The error names the file, then its line (none for a whole-file problem), then a non-empty reason."""
    where = f"{path}:{err.line_no}" if err.line_no else str(path)
    assert str(err) == f"{where}: {err.reason}" and err.reason.strip()
    assert err.line_no >= 0 and re.fullmatch(r".+", err.reason)


@PROPERTY
@given(CORPUS_BYTES)
@example(b"1\ta\tb\r0\ta\tc\r")  # CR-only endings: once read as one line
def test_labelled_lines_raise_located_errors_or_round_trip(content: bytes) -> None:
    path = _written(content)
    try:
        lines = list(iter_labelled_lines(path))
    except CorpusFormatError as err:
        _assert_located(err, path)
        return
    again = path.with_name("again.txt")
    write_response_selection(again, [(line.label, line.context, line.response) for line in lines])
    assert list(iter_labelled_lines(again)) == lines  # line numbers included: every line gave a record


@PROPERTY
@given(CORPUS_BYTES)
@example(b"1\ta\tb\r0\ta\tc\r1\tz\tb\r0\tz\tc\r")  # CR-only endings: once one group of one candidate
def test_rerank_groups_raise_located_errors_or_round_trip(content: bytes) -> None:
    path = _written(content)
    try:
        groups = read_rerank_groups(path)
    except CorpusFormatError as err:
        _assert_located(err, path)
        return
    assert len({len(g.candidates) for g in groups}) == 1 and len(groups[0].candidates) >= 2
    again = path.with_name("again.txt")
    rows = [(label, g.context, c) for g in groups for label, c in zip(g.labels, g.candidates, strict=True)]
    write_response_selection(again, rows)
    assert read_rerank_groups(again) == groups


@PROPERTY
@given(CORPUS_BYTES)
@example(b"\xef\xbb\xbf\xef\xbb\xbf\x00")  # a first response starting with U+FEFF: once lost its own BOM
def test_response_pool_raises_located_errors_or_round_trips(content: bytes) -> None:
    path = _written(content)
    try:
        texts = read_response_pool(path)
    except CorpusFormatError as err:
        _assert_located(err, path)
        return
    assert all(text.strip() and "\n" not in text and "\r" not in text for text in texts)
    # The pool reader also reads ``hashbert encode --side context`` input, whose turns are tab-separated;
    # the pool writer (responses only) refuses tabs, so only tab-free pools can round-trip through it.
    if not any("\t" in text for text in texts):
        again = path.with_name("again.txt")
        write_response_pool(again, texts)
        assert read_response_pool(again) == texts
