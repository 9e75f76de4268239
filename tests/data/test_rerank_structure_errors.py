"""Malformed re-rank test files are refused with ``file:line: reason``, never scored.

Each case here used to read without an error and print metrics: a CR-only file as one context with
one candidate (MRR 100), groups of one candidate (every metric 100), a context split in two
non-adjacent parts (one part silently skipped for lack of a positive), mixed group sizes, and empty
files or directories given as corpora.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hashbert.data import (
    CorpusFormatError,
    iter_labelled_lines,
    read_rerank_groups,
    read_response_pool,
    read_speakers,
    read_training_pairs,
    write_response_selection,
)


def group_rows(context: str, size: int, positive: int | None = 0) -> list[tuple[int, list[str], str]]:
    """``size`` candidate rows of one context; candidate ``positive`` is labelled 1 (None: no positive)."""
    return [(int(i == positive), [context], f"{context} reply {i}") for i in range(size)]


def write_rows(path: Path, rows: list, ending: bytes = b"\n") -> Path:
    write_response_selection(path, rows)
    if ending != b"\n":
        path.write_bytes(path.read_bytes().replace(b"\n", ending))
    return path


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_each_line_ending_reads_the_same_groups(tmp_path: Path, ending: bytes) -> None:
    rows = group_rows("a", 10) + group_rows("b", 10, positive=3)
    path = write_rows(tmp_path / "test.txt", rows, ending)
    groups = read_rerank_groups(path)
    assert [(g.context, len(g.candidates), g.labels.index(1), g.line_no) for g in groups] == [
        (("a",), 10, 0, 1),
        (("b",), 10, 3, 11),
    ]
    # The records round-trip through the writer (which writes \n endings).
    again = tmp_path / "again.txt"
    rows = [(label, g.context, c) for g in groups for label, c in zip(g.labels, g.candidates, strict=True)]
    write_response_selection(again, rows)
    assert read_rerank_groups(again) == groups


def test_cr_only_line_numbers_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"1\ta\tb\r0\ta\tc\rx\ta\td\r")
    with pytest.raises(CorpusFormatError) as excinfo:
        list(iter_labelled_lines(path))
    assert str(excinfo.value) == f"{path}:3: bad label 'x', expected 1 or 0"


def test_mixed_endings_count_lines_like_universal_newlines(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"1\ta\tb\r\n0\ta\tc\r1\ta\td\n0\ta\te")
    assert [(line.line_no, line.response) for line in iter_labelled_lines(path)] == [
        (1, "b"), (2, "c"), (3, "d"), (4, "e"),
    ]


def test_groups_of_one_candidate_are_refused(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "test.txt", group_rows("a", 1) + group_rows("b", 1) + group_rows("c", 1))
    with pytest.raises(CorpusFormatError) as excinfo:
        read_rerank_groups(path)
    assert str(excinfo.value) == (
        f"{path}:1: 1 candidate for this context; re-ranking needs at least 2 per context (is this a training file?)"
    )


def test_one_lone_candidate_among_full_groups_is_refused(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "test.txt", group_rows("a", 10) + group_rows("b", 1) + group_rows("c", 10))
    expected = rf"^{path}:11: group of 1 candidate with the same context, expected 10"
    with pytest.raises(CorpusFormatError, match=expected):
        read_rerank_groups(path)


def test_non_adjacent_candidates_of_one_context_are_refused(tmp_path: Path) -> None:
    rows = group_rows("a", 5) + group_rows("b", 10) + group_rows("a", 5, positive=None) + group_rows("c", 10)
    path = write_rows(tmp_path / "test.txt", rows)
    with pytest.raises(CorpusFormatError) as excinfo:
        read_rerank_groups(path)
    assert str(excinfo.value) == f"{path}:16: candidates of the context first seen at line 1 are not adjacent"


def test_scattered_halves_of_equal_size_are_refused(tmp_path: Path) -> None:
    # Every run has 5 lines, so sizes alone look fine; the second halves have no positive.
    rows = group_rows("a", 5) + group_rows("b", 5) + group_rows("a", 5, None) + group_rows("b", 5, None)
    path = write_rows(tmp_path / "test.txt", rows)
    with pytest.raises(CorpusFormatError, match=rf"^{path}:11: candidates of the context first seen at line 1"):
        read_rerank_groups(path)


def test_two_test_contexts_with_the_same_text_are_kept(tmp_path: Path) -> None:
    # Real Chit-Chat test files hold several separate "Hello" contexts, each a whole group with its positive.
    rows = group_rows("Hello", 10) + group_rows("b", 10) + group_rows("Hello", 10, positive=4)
    groups = read_rerank_groups(write_rows(tmp_path / "test.txt", rows))
    assert [(g.context, g.line_no, g.labels.index(1)) for g in groups] == [
        (("Hello",), 1, 0), (("b",), 11, 0), (("Hello",), 21, 4),
    ]


def test_an_adjacent_run_splits_only_into_groups_with_a_positive(tmp_path: Path) -> None:
    # 20 lines of one context in a file of 10-candidate groups: one group of 10 was duplicated, or
    # two groups were merged; the second half has no positive, so it is not two test contexts.
    path = write_rows(tmp_path / "test.txt", group_rows("a", 10) + group_rows("b", 20) + group_rows("c", 10))
    with pytest.raises(CorpusFormatError) as excinfo:
        read_rerank_groups(path)
    assert str(excinfo.value) == (
        f"{path}:11: 20 candidates with the same context split into groups of 10 only when each has a positive; "
        "the group at line 21 has none"
    )


@pytest.mark.parametrize("odd", [9, 5, 2])
def test_mixed_group_sizes_are_refused_at_the_odd_group(tmp_path: Path, odd: int) -> None:
    rows = group_rows("a", 10) + group_rows("b", odd) + group_rows("c", 10) + group_rows("d", 10)
    path = write_rows(tmp_path / "test.txt", rows)
    with pytest.raises(CorpusFormatError) as excinfo:
        read_rerank_groups(path)
    assert str(excinfo.value) == (
        f"{path}:11: group of {odd} candidates with the same context, expected 10 (the most common group size)"
    )


def test_a_broken_first_group_is_blamed_not_the_good_ones(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "test.txt", group_rows("a", 9) + group_rows("b", 10) + group_rows("c", 10))
    with pytest.raises(CorpusFormatError, match=rf"^{path}:1: group of 9 candidates .* expected 10"):
        read_rerank_groups(path)


@pytest.mark.parametrize("size", [2, 5, 9])
def test_uniform_groups_of_another_size_are_read(tmp_path: Path, size: int) -> None:
    path = write_rows(tmp_path / "test.txt", group_rows("a", size) + group_rows("b", size))
    assert [len(g.candidates) for g in read_rerank_groups(path)] == [size, size]


READERS = [
    pytest.param(iter_labelled_lines, id="labelled"),
    pytest.param(read_rerank_groups, id="rerank"),
    pytest.param(read_training_pairs, id="training"),
    pytest.param(read_response_pool, id="pool"),
    pytest.param(read_speakers, id="speakers"),
]


@pytest.mark.parametrize("reader", READERS)
def test_a_directory_is_not_a_corpus(tmp_path: Path, reader) -> None:
    with pytest.raises(CorpusFormatError) as excinfo:
        list(reader(tmp_path))
    assert str(excinfo.value) == f"{tmp_path}: is a directory, expected a corpus file"


@pytest.mark.parametrize("reader", READERS)
def test_an_empty_file_is_not_a_corpus(tmp_path: Path, reader) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(CorpusFormatError) as excinfo:
        list(reader(path))
    assert str(excinfo.value) == f"{path}: empty file"


def test_a_file_whose_every_line_was_skipped_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"x\ta\tb\ny\ta\tc\n")
    with pytest.raises(CorpusFormatError) as excinfo:
        read_rerank_groups(path, on_error="skip")
    assert str(excinfo.value) == f"{path}: no valid line to read (2 of 2 lines skipped)"


def test_whole_file_errors_have_no_line_number(tmp_path: Path) -> None:
    assert str(CorpusFormatError(tmp_path / "x.txt", 0, "file not found")) == f"{tmp_path / 'x.txt'}: file not found"
    assert str(CorpusFormatError("x.txt", 3, "empty line")) == "x.txt:3: empty line"


def test_group_size_below_two_is_refused(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "test.txt", group_rows("a", 2))
    with pytest.raises(ValueError, match="group_size must be None or >= 2, got 1"):
        read_rerank_groups(path, group_size=1)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (group_rows("a", 1) + group_rows("b", 1), "{path}:1: 1 candidate for this context"),
        (group_rows("a", 5) + group_rows("b", 10) + group_rows("a", 5, None) + group_rows("c", 10),
         "{path}:16: candidates of the context first seen at line 1 are not adjacent"),
        (group_rows("a", 10) + group_rows("b", 9) + group_rows("c", 10), "{path}:11: group of 9 candidates"),
        ([], "{path}: empty file"),
        (None, "{path}: is a directory, expected a corpus file"),
    ],
    ids=["groups-of-one", "not-adjacent", "mixed-sizes", "empty", "directory"],
)
def test_the_cli_prints_the_error_and_exits_2(tmp_path: Path, capsys, rows, expected: str) -> None:
    from hashbert.cli import main

    path = tmp_path if rows is None else write_rows(tmp_path / "test.txt", rows)
    assert main(["evaluate", "rerank", "--test", str(path), "--zero-shot"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: " + expected.format(path=path))
