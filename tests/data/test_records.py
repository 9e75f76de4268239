"""Record types: tuples in, hashable out, inconsistent lengths and non-0/1 values rejected."""

from __future__ import annotations

import dataclasses

import pytest

from hashbert.data import ContextResponse, Dialogue, LabelledLine, RerankGroup


def test_lists_become_tuples_and_records_are_hashable() -> None:
    dialogue = Dialogue("d", ["a", "b"], [0, 1])
    assert dialogue.turns == ("a", "b") and dialogue.speakers == (0, 1)
    pair = ContextResponse(["a"], "b", [0], 1)
    group = RerankGroup(["a"], ["b", "c"], [1, 0], line_no=1, speakers=[0])
    assert len({dialogue, pair, group, LabelledLine(1, ["a"], "b", 3)}) == 4
    assert ContextResponse(("a",), "b") == ContextResponse(["a"], "b")


def test_records_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Dialogue("d", ("a", "b")).turns = ("c",)  # type: ignore[misc]


@pytest.mark.parametrize(
    "build",
    [
        lambda: Dialogue("d", ("a", "b"), (0,)),
        lambda: Dialogue("d", ("a", "b"), (0, 2)),
        lambda: ContextResponse(("a", "b"), "c", context_speakers=(0,)),
        lambda: ContextResponse(("a",), "c", context_speakers=(0,), response_speaker=3),
        lambda: RerankGroup(("a",), ("b", "c"), (1,), line_no=1),
        lambda: RerankGroup(("a",), ("b", "c"), (1, 5), line_no=1),
        lambda: RerankGroup(("a",), ("b", "c"), (1, 0), line_no=1, speakers=(0, 1)),
        lambda: LabelledLine(2, ("a",), "b", 1),
    ],
)
def test_inconsistent_records_raise_value_error(build) -> None:
    with pytest.raises(ValueError):
        build()


def test_rerank_group_counts_positives() -> None:
    assert RerankGroup(("a",), ("b", "c", "d"), (1, 0, 1), line_no=1).n_positives == 2
    assert RerankGroup(("a",), ("b", "c"), (0, 0), line_no=1).n_positives == 0
