"""'Full' prefix expansion and the distinct-response pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashbert.data import ContextResponse, Dialogue, expand_prefixes, last_prefix, response_pool

DIALOGUE = Dialogue("d", ("t0", "t1", "t2", "t3", "t4"), (0, 1, 0, 1, 0))


def test_full_expansion_gives_every_prefix() -> None:
    pairs = expand_prefixes(DIALOGUE)
    assert [(p.context, p.response) for p in pairs] == [
        (("t0",), "t1"),
        (("t0", "t1"), "t2"),
        (("t0", "t1", "t2"), "t3"),
        (("t0", "t1", "t2", "t3"), "t4"),
    ]
    assert pairs[2].context_speakers == (0, 1, 0) and pairs[2].response_speaker == 1


def test_max_context_turns_keeps_the_newest_turns() -> None:
    pairs = expand_prefixes(DIALOGUE, max_context_turns=2)
    assert [p.context for p in pairs] == [("t0",), ("t0", "t1"), ("t1", "t2"), ("t2", "t3")]
    assert [p.context_speakers for p in pairs] == [(0,), (0, 1), (1, 0), (0, 1)]
    assert all(len(p.context) <= 2 for p in pairs)


def test_real_dialogues_expand_to_n_minus_one_pairs(chitchat_slice: list[Dialogue]) -> None:
    for dialogue in chitchat_slice:
        pairs = expand_prefixes(dialogue, max_context_turns=3)
        assert len(pairs) == len(dialogue.turns) - 1
        assert all(1 <= len(p.context) <= 3 for p in pairs)
        assert [p.response for p in pairs] == list(dialogue.turns[1:])
        assert pairs[-1] == last_prefix(dialogue, max_context_turns=3)


def test_expansion_without_speakers_leaves_them_none() -> None:
    (pair,) = expand_prefixes(Dialogue("d", ("a", "b")))
    assert pair == ContextResponse(("a",), "b", None, None)
    assert expand_prefixes(Dialogue("d", ("a",))) == []


@pytest.mark.parametrize("bad", [0, -1, True])
def test_bad_max_context_turns_raises(bad: int) -> None:
    with pytest.raises(ValueError, match="max_context_turns"):
        expand_prefixes(DIALOGUE, max_context_turns=bad)


def test_last_prefix_needs_two_turns() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        last_prefix(Dialogue("d", ("a",)))


def test_response_pool_is_distinct_in_first_seen_order() -> None:
    pairs = [ContextResponse(("a",), "x"), ContextResponse(("b",), "y"), ContextResponse(("c",), "x")]
    assert response_pool(pairs) == ["x", "y"]
    assert response_pool(["z", "x", "z", "y"]) == ["z", "x", "y"]
    assert response_pool(p for p in pairs) == ["x", "y"]


@pytest.mark.parametrize("bad", ["a string", Path("train.txt"), [1, 2]])
def test_response_pool_rejects_strings_paths_and_other_items(bad: object) -> None:
    with pytest.raises(ValueError, match="response_pool"):
        response_pool(bad)  # type: ignore[arg-type]
