"""The response-selection format: parsing, file:line errors, skip/raise modes, groups, pairs, writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashbert.data import (
    CorpusFormatError,
    LabelledLine,
    ReadReport,
    iter_labelled_lines,
    read_rerank_groups,
    read_response_pool,
    read_training_pairs,
    write_response_pool,
    write_response_selection,
)


def write_bytes(tmp_path: Path, content: bytes, name: str = "corpus.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_parses_lines_with_one_or_more_context_utterances(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "1\thi\thello\n0\thi\tthere\tcafé ☕\n".encode())
    assert list(iter_labelled_lines(path)) == [
        LabelledLine(1, ("hi",), "hello", 1),
        LabelledLine(0, ("hi", "there"), "café ☕", 2),
    ]


def test_crlf_bom_and_missing_final_newline_are_accepted(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, b"\xef\xbb\xbf1\ta\tb\r\n0\ta\tc")
    assert [(line.label, line.response) for line in iter_labelled_lines(path)] == [(1, "b"), (0, "c")]


@pytest.mark.parametrize(
    ("content", "line_no", "reason"),
    [
        (
            b"1\tctx\tresp\n1\tonly\n",
            2,
            "wrong field count: 2 tab-separated field(s), expected at least 3 (label, utterance, response)",
        ),
        (b"1\ta\tb\n0\ta\tc\nyes\ta\tb\n", 3, "bad label 'yes', expected 1 or 0"),
        (b"1\ta\tb\n-1\ta\tc\n", 2, "bad label '-1', expected 1 or 0"),
        (b"1\ta\tb\n1\tcaf\xe9\tb\n", 2, "invalid UTF-8 at byte 5 of the line (b'1\\tcaf\\xe9\\tb')"),
        (b"1\ta\t  \tb\n", 1, "empty text in utterance 2 (field 3 of 4)"),
        (b"1\ta\tb\n1\ta\t\n", 2, "empty text in the response (field 3 of 3)"),
        (b"1\ta\tb\n\n1\ta\tc\n", 2, "empty line"),
        (b"1\ta\tb\n\n", 2, "empty line"),
        (b"1\ta\tb\n   \n", 2, "empty line"),
    ],
)
def test_each_bad_line_is_reported_at_its_file_and_line(
    tmp_path: Path, content: bytes, line_no: int, reason: str
) -> None:
    path = write_bytes(tmp_path, content)
    with pytest.raises(CorpusFormatError) as excinfo:
        list(iter_labelled_lines(path))
    assert str(excinfo.value) == f"{path}:{line_no}: {reason}"
    assert (excinfo.value.path, excinfo.value.line_no, excinfo.value.reason) == (str(path), line_no, reason)


def test_raise_mode_stops_at_the_first_bad_line(fixtures_dir: Path) -> None:
    path = fixtures_dir / "mixed_errors.txt"
    seen = []
    with pytest.raises(CorpusFormatError, match=r"mixed_errors\.txt:3: wrong field count"):
        for line in iter_labelled_lines(path):
            seen.append(line.line_no)
    assert seen == [1, 2]


def test_skip_mode_counts_and_continues(fixtures_dir: Path) -> None:
    path = fixtures_dir / "mixed_errors.txt"
    report = ReadReport(str(path))
    lines = list(iter_labelled_lines(path, on_error="skip", report=report))
    assert [line.line_no for line in lines] == [1, 2, 7]
    assert report.lines_read == 7 and report.n_skipped == 4
    assert [str(err) for err in report.errors] == [
        f"{path}:3: wrong field count: 2 tab-separated field(s), expected at least 3 (label, utterance, response)",
        f"{path}:4: bad label '2', expected 1 or 0",
        f"{path}:5: empty text in utterance 2 (field 3 of 4)",
        f"{path}:6: empty text in the response (field 3 of 3)",
    ]
    assert report.summary() == f"{path}: 4 of 7 lines skipped (first: {report.errors[0]})"


def test_report_summary_without_errors(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, b"1\ta\tb\n")
    report = ReadReport(str(path))
    list(iter_labelled_lines(path, report=report))
    assert report.summary() == f"{path}: 1 lines read, none skipped"


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_missing_file_is_a_line_zero_error(tmp_path: Path, on_error: str) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(CorpusFormatError) as excinfo:
        list(iter_labelled_lines(path, on_error=on_error))  # type: ignore[arg-type]
    assert str(excinfo.value) == f"{path}: file not found"


def test_bad_on_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        list(iter_labelled_lines(write_bytes(tmp_path, b"1\ta\tb\n"), on_error="ignore"))  # type: ignore[arg-type]


def test_corpus_format_error_is_a_value_error_and_pickles() -> None:
    err = CorpusFormatError("c.txt", 4, "bad label 'x', expected 1 or 0")
    assert isinstance(err, ValueError)
    # Pickling (e.g. from a worker process) rebuilds the error from __reduce__; rebuild it the same way
    # here rather than unpickling bytes.
    rebuild, args = err.__reduce__()[:2]
    copy = rebuild(*args)
    assert (str(copy), copy.path, copy.line_no, copy.reason) == (str(err), "c.txt", 4, err.reason)


def test_uneven_group_sizes_name_the_group_and_both_sizes(fixtures_dir: Path) -> None:
    path = fixtures_dir / "uneven_groups.txt"
    for on_error in ("raise", "skip"):
        with pytest.raises(CorpusFormatError) as excinfo:
            read_rerank_groups(path, on_error=on_error)  # type: ignore[arg-type]
        assert str(excinfo.value) == (
            f"{path}:7: group of 2 candidates with the same context, expected 3 (the most common group size)"
        )
    with pytest.raises(CorpusFormatError) as excinfo:
        read_rerank_groups(path, group_size=2)
    assert str(excinfo.value) == f"{path}:1: group of 3 candidates with the same context, expected 2 (group_size)"


def test_skipped_line_inside_a_group_breaks_its_size(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, b"1\tc1\tr\n0\tc1\tn\n1\tc2\tr\nx\tc2\tn\n")
    report = ReadReport(str(path))
    with pytest.raises(CorpusFormatError, match=r":3: group of 1 candidate with the same context, expected 2"):
        read_rerank_groups(path, on_error="skip", report=report)
    assert report.n_skipped == 1


def test_rerank_groups_keep_order_labels_and_first_line(tmp_path: Path) -> None:
    rows = [
        (1, ["a", "b"], "r1"),
        (0, ["a", "b"], "n1"),
        (0, ["c"], "n2"),
        (0, ["c"], "n3"),
        (1, ["d"], "r3"),
        (1, ["d"], "r4"),
    ]
    path = tmp_path / "test.txt"
    write_response_selection(path, rows)
    groups = read_rerank_groups(path)
    assert [(g.context, g.candidates, g.labels, g.line_no) for g in groups] == [
        (("a", "b"), ("r1", "n1"), (1, 0), 1),
        (("c",), ("n2", "n3"), (0, 0), 3),  # no positive: kept, the metrics skip it
        (("d",), ("r3", "r4"), (1, 1), 5),
    ]
    assert all(g.speakers is None for g in groups)


def test_a_repeated_context_run_of_a_multiple_of_the_size_splits(tmp_path: Path) -> None:
    path = tmp_path / "test.txt"
    write_response_selection(
        path,
        [(1, ["x"], "a"), (0, ["x"], "b"), (1, ["hi"], "c"), (0, ["hi"], "d"), (1, ["hi"], "e"), (0, ["hi"], "f")],
    )
    groups = read_rerank_groups(path)
    assert [(g.candidates, g.line_no) for g in groups] == [(("a", "b"), 1), (("c", "d"), 3), (("e", "f"), 5)]


def test_bad_group_size_argument(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="group_size"):
        read_rerank_groups(write_bytes(tmp_path, b"1\ta\tb\n"), group_size=0)


TRAIN = [
    (1, ["t0", "t1"], "t2"),
    (0, ["t0", "t1"], "wrong"),
    (1, ["u0"], "u1"),
    (1, ["t0", "t1"], "t2"),  # duplicate line: its pairs are de-duplicated
    (1, ["t0"], "t1"),  # already produced by the first line's full expansion
]


def test_training_pairs_full_expansion_uses_positives_and_deduplicates(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    write_response_selection(path, TRAIN)
    pairs = read_training_pairs(path, expansion="full")
    assert [(p.context, p.response) for p in pairs] == [(("t0",), "t1"), (("t0", "t1"), "t2"), (("u0",), "u1")]


def test_training_pairs_last_is_as_written(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    write_response_selection(path, TRAIN)
    pairs = read_training_pairs(path, expansion="last")
    assert [(p.context, p.response) for p in pairs] == [(("t0", "t1"), "t2"), (("u0",), "u1"), (("t0",), "t1")]
    trimmed = read_training_pairs(path, expansion="last", max_context_turns=1)
    assert [p.context for p in trimmed] == [("t1",), ("u0",), ("t0",)]


def test_training_pairs_respect_max_context_turns(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    write_response_selection(path, [(1, ["a", "b", "c", "d"], "e")])
    pairs = read_training_pairs(path, max_context_turns=2)
    assert [p.context for p in pairs] == [("a",), ("a", "b"), ("b", "c"), ("c", "d")]


def test_training_pairs_skip_mode(fixtures_dir: Path) -> None:
    path = fixtures_dir / "mixed_errors.txt"
    report = ReadReport(str(path))
    pairs = read_training_pairs(path, expansion="last", on_error="skip", report=report)
    assert [(p.context, p.response) for p in pairs] == [(("hi there",), "hello"), (("good context",), "good response")]
    assert report.n_skipped == 4
    with pytest.raises(ValueError, match="expansion"):
        read_training_pairs(path, expansion="all")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ((1, ["a\tb"], "c"), "tab or newline"),
        ((1, ["a"], "c\nd"), "tab or newline"),
        ((1, ["a"], "c\r"), "tab or newline"),
        ((1, ["a", " "], "c"), "empty"),
        ((1, ["a"], ""), "empty"),
        ((2, ["a"], "c"), "label"),
        ((1, [], "c"), "context"),
        ((1, "abc", "c"), "context"),
    ],
)
def test_writer_rejects_bad_rows_and_leaves_the_old_file(tmp_path: Path, row: tuple, message: str) -> None:
    path = tmp_path / "out.txt"
    path.write_bytes(b"old\n")
    with pytest.raises(ValueError, match=message) as excinfo:
        write_response_selection(path, [(1, ["ok"], "fine"), row])
    assert "row 1" in str(excinfo.value)
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_writer_output_round_trips(tmp_path: Path) -> None:
    rows = [(1, ("ça va ?", "oui"), "et toi"), (0, ("ça va ?", "oui"), "🙂")]
    path = tmp_path / "out.txt"
    write_response_selection(path, rows)
    assert path.read_bytes() == "1\tça va ?\toui\tet toi\n0\tça va ?\toui\t🙂\n".encode()
    assert [(line.label, line.context, line.response) for line in iter_labelled_lines(path)] == rows


def test_response_pool_file_round_trips_and_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "responses.txt"
    write_response_pool(path, ["a b", "c", "☕"])
    assert read_response_pool(path) == ["a b", "c", "☕"]
    path.write_bytes(b"a\n\nb\n")
    with pytest.raises(CorpusFormatError) as excinfo:
        read_response_pool(path)
    assert str(excinfo.value) == f"{path}:2: empty line"
    with pytest.raises(ValueError, match="tab or newline"):
        write_response_pool(path, ["a\nb"])
