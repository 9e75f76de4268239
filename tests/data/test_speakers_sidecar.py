"""The ``.speakers`` sidecar: one line of space-separated 0/1 per corpus line, kept in step with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashbert.data import (
    CorpusFormatError,
    read_rerank_groups,
    read_speakers,
    read_training_pairs,
    speakers_path_for,
    write_response_selection,
    write_speakers,
)


def test_sidecar_path_is_beside_the_corpus() -> None:
    assert speakers_path_for("data/chitchat/test.txt") == Path("data/chitchat/test.speakers")


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "x.speakers"
    write_speakers(path, [(0, 1), [1, 0, 1]])
    assert path.read_bytes() == b"0 1\n1 0 1\n"
    assert read_speakers(path) == [(0, 1), (1, 0, 1)]


@pytest.mark.parametrize("row", [(), (0, 2), ("0",)])
def test_write_rejects_bad_rows(tmp_path: Path, row: tuple) -> None:
    with pytest.raises(ValueError, match="row 1"):
        write_speakers(tmp_path / "x.speakers", [(0,), row])


@pytest.mark.parametrize(
    ("content", "line_no", "reason"),
    [
        (b"0 1\n0 2\n", 2, "bad speaker in ['0', '2'], expected space-separated 0/1"),
        (b"0 1\n\n", 2, "empty line"),
        (b"0 \xff\n", 1, "invalid UTF-8 at byte 2 of the line (b'0 \\xff')"),
    ],
)
def test_read_reports_file_and_line(tmp_path: Path, content: bytes, line_no: int, reason: str) -> None:
    path = tmp_path / "x.speakers"
    path.write_bytes(content)
    with pytest.raises(CorpusFormatError) as excinfo:
        read_speakers(path)
    assert str(excinfo.value) == f"{path}:{line_no}: {reason}"


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "c.txt"
    write_response_selection(path, [(1, ["a", "b"], "c"), (0, ["a", "b"], "d"), (1, ["e"], "f"), (0, ["e"], "g")])
    return path


def test_training_pairs_and_groups_carry_the_sidecar_speakers(corpus: Path) -> None:
    write_speakers(speakers_path_for(corpus), [(0, 1, 0), (0, 1, 0), (1, 0), (1, 0)])
    pairs = read_training_pairs(corpus, speakers_path=speakers_path_for(corpus))
    assert [(p.context_speakers, p.response_speaker) for p in pairs] == [((0,), 1), ((0, 1), 0), ((1,), 0)]
    groups = read_rerank_groups(corpus, speakers_path=speakers_path_for(corpus))
    assert [g.speakers for g in groups] == [(0, 1), (1,)]


@pytest.mark.parametrize(
    ("rows", "line_no", "reason"),
    [
        ([(0, 1, 0), (0, 1), (1, 0), (1, 0)], 2, "2 speakers for 3 utterances (response included) of the corpus line"),
        ([(0, 1, 0), (0, 1, 0), (1, 0)], 3, "speakers file ends before corpus line 4"),
        ([(0, 1, 0), (0, 1, 0), (1, 0), (1, 0), (0, 1)], 0, "5 lines of speakers for 4 corpus lines ({corpus})"),
    ],
)
def test_a_sidecar_out_of_step_with_its_corpus_is_an_error(
    corpus: Path, rows: list, line_no: int, reason: str
) -> None:
    speakers = speakers_path_for(corpus)
    write_speakers(speakers, rows)
    for read in (read_rerank_groups, read_training_pairs):
        with pytest.raises(CorpusFormatError) as excinfo:
            read(corpus, speakers_path=speakers)
        where = f"{speakers}:{line_no}" if line_no else str(speakers)  # line 0: the whole file
        assert str(excinfo.value) == f"{where}: {reason.format(corpus=corpus)}"


def test_missing_sidecar_is_a_line_zero_error(corpus: Path) -> None:
    with pytest.raises(CorpusFormatError, match=r"c\.speakers: file not found"):
        read_training_pairs(corpus, speakers_path=speakers_path_for(corpus))
