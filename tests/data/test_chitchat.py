"""The embedded Chit-Chat corpus: loading, splitting, re-rank groups and the prepared files.

Real data only, in small slices cut at run time (the corpus is installed by ``chitchat-dataset``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hashbert.data import (
    Dialogue,
    expand_prefixes,
    load_chitchat,
    make_rerank_groups,
    prepare_chitchat,
    read_rerank_groups,
    read_response_pool,
    read_speakers,
    read_training_pairs,
    speakers_path_for,
    split_dialogues,
)

FILES = [
    "meta.json",
    "responses.txt",
    "test.speakers",
    "test.txt",
    "train.speakers",
    "train.txt",
    "valid.speakers",
    "valid.txt",
]


def is_prefix(sequence: tuple[str, ...], dialogue: Dialogue) -> bool:
    return dialogue.turns[: len(sequence)] == sequence


# --- loading ---------------------------------------------------------------------------------


def test_slice_is_sorted_normalised_and_alternating(chitchat_slice: list[Dialogue]) -> None:
    assert len(chitchat_slice) == 60
    assert [d.id for d in chitchat_slice] == sorted(d.id for d in chitchat_slice)
    for dialogue in chitchat_slice:
        assert len(dialogue.turns) >= 2
        assert dialogue.speakers == tuple(i % 2 for i in range(len(dialogue.turns)))
        for turn in dialogue.turns:
            assert turn and turn == turn.strip() and "  " not in turn
            assert not {"\t", "\n", "\r"} & set(turn)


def test_slices_are_deterministic_prefixes(chitchat_slice: list[Dialogue]) -> None:
    assert load_chitchat(max_dialogues=7) == chitchat_slice[:7]


def test_whole_corpus_size() -> None:
    # chitchat-dataset 0.9.0 (pinned): 7,168 conversations, of which 3,150 have a single sender
    # and one conversation has only empty messages beside one turn; the other 4,017 give 135,574 turns.
    dialogues = load_chitchat()
    assert len(dialogues) == 4017
    assert abs(sum(len(d.turns) for d in dialogues) - 138_000) <= 3_000
    # on the whole corpus a test split always has enough negatives of its own (no fallback)
    test = split_dialogues(dialogues, seed=0)[2]
    assert len(make_rerank_groups(test, seed=0)) > 500


def write_conversations(tmp_path: Path, conversations: dict) -> Path:
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(conversations), encoding="utf-8")
    return path


def message(sender: str, text: str) -> dict:
    return {"text": text, "timestamp": "2018-01-01T00:00:00Z", "sender": sender}


def test_joins_one_senders_consecutive_messages_and_drops_empty_ones(tmp_path: Path) -> None:
    path = write_conversations(
        tmp_path,
        {
            "b": {
                "messages": [
                    [message("x", "Hi\tthere"), message("x", "  you\n")],
                    [message("y", "hey")],
                    [message("y", "\r\nso")],
                ]
            },
            "a": {
                "messages": [
                    [message("p", "one")],
                    [message("q", " ")],
                    [message("p", "two")],
                    [message("q", "three")],
                ]
            },
            "c": {"messages": [[message("z", "talking"), message("z", "to myself")]]},
        },
    )
    assert load_chitchat(path) == [
        Dialogue("a", ("one two", "three"), (0, 1)),
        Dialogue("b", ("Hi there you", "hey so"), (0, 1)),
    ]
    assert load_chitchat(path, max_dialogues=1) == [Dialogue("a", ("one two", "three"), (0, 1))]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"a": {"messages": [[message("p", "1")], [message("q", "2")], [message("r", "3")]]}}, "3 senders"),
        ({"a": {"messages": [[{"text": "no sender"}]]}}, "malformed"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_source_files_raise_value_error(tmp_path: Path, content: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_chitchat(write_conversations(tmp_path, content))  # type: ignore[arg-type]


def test_missing_source_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file not found"):
        load_chitchat(tmp_path / "none.json")
    with pytest.raises(ValueError, match="max_dialogues"):
        load_chitchat(max_dialogues=0)


# --- splitting -------------------------------------------------------------------------------


def test_split_is_disjoint_complete_and_seeded(chitchat_slice: list[Dialogue]) -> None:
    train, valid, test = split_dialogues(chitchat_slice, seed=0)
    ids = [{d.id for d in part} for part in (train, valid, test)]
    assert [len(part) for part in ids] == [54, 3, 3]
    assert ids[0] | ids[1] | ids[2] == {d.id for d in chitchat_slice}
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert split_dialogues(chitchat_slice, seed=0) == (train, valid, test)
    assert split_dialogues(chitchat_slice, seed=1)[2] != test
    assert [d.id for d in train] == sorted(ids[0])  # input order kept


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.9, 0.1, 0.1), (1.1, -0.05, -0.05)])
def test_bad_fractions(chitchat_slice: list[Dialogue], fractions: tuple) -> None:
    with pytest.raises(ValueError, match="fractions"):
        split_dialogues(chitchat_slice, fractions=fractions)


def test_duplicate_ids_cannot_be_split(chitchat_slice: list[Dialogue]) -> None:
    with pytest.raises(ValueError, match="unique"):
        split_dialogues([chitchat_slice[0], chitchat_slice[0]])


# --- re-rank groups --------------------------------------------------------------------------


def check_groups(
    groups: list, dialogues: list[Dialogue], max_context_turns: int | None = None, fallback: frozenset = frozenset()
) -> int:
    """Assert the protocol's invariants; return how many groups needed ``fallback`` negatives."""
    borrowed = 0
    for index, group in enumerate(groups):
        assert len(group.candidates) == 10 and group.labels == (1,) + (0,) * 9
        assert group.line_no == 10 * index + 1
        positive, negatives = group.candidates[0], group.candidates[1:]
        assert len(set(negatives)) == 9 and positive not in negatives
        owners = [d for d in dialogues if _holds(d, group.context, positive)]
        assert owners, "context and positive must be consecutive turns of a dialogue of the list"
        if max_context_turns is None:  # the context is the whole history before the positive
            assert any(is_prefix((*group.context, positive), d) for d in owners)
        others = [{turn for d in dialogues if d is not owner for turn in d.turns} for owner in owners]
        own_split = any(set(negatives) <= turns for turns in others)
        assert own_split or set(negatives) <= set().union(*others) | fallback
        borrowed += not own_split
        if max_context_turns is not None:
            assert len(group.context) <= max_context_turns
    return borrowed


def _holds(dialogue: Dialogue, context: tuple[str, ...], positive: str) -> bool:
    n = len(context)
    return any(
        dialogue.turns[i - n : i] == context and dialogue.turns[i] == positive for i in range(n, len(dialogue.turns))
    )


def test_rerank_groups_have_one_positive_and_foreign_negatives(chitchat_slice: list[Dialogue]) -> None:
    dialogues = chitchat_slice[:20]
    groups = make_rerank_groups(dialogues, seed=3)
    assert check_groups(groups, dialogues) == 0
    assert len(groups) == sum(min(3, len(d.turns) - 1) for d in dialogues)
    assert make_rerank_groups(dialogues, seed=3) == groups
    assert make_rerank_groups(dialogues, seed=4) != groups


def test_rerank_groups_truncate_contexts(chitchat_slice: list[Dialogue]) -> None:
    dialogues = chitchat_slice[:20]
    groups = make_rerank_groups(dialogues, seed=0, contexts_per_dialogue=5, max_context_turns=2)
    check_groups(groups, dialogues, max_context_turns=2)
    assert all(g.speakers is not None and len(g.speakers) == len(g.context) for g in groups)


def test_too_few_negatives_is_a_value_error_unless_a_fallback_is_given() -> None:
    dialogues = [Dialogue("a", ("1", "2", "3")), Dialogue("b", ("4", "5"))]
    with pytest.raises(ValueError, match="'a': only 2 distinct negative texts, need 9"):
        make_rerank_groups(dialogues, seed=0)
    assert len(make_rerank_groups(dialogues, seed=0, n_candidates=3)) == 3
    fallback = [str(i) for i in range(100, 120)] + ["2", "4"]
    groups = make_rerank_groups(dialogues, seed=0, fallback_negatives=fallback)
    assert check_groups(groups, dialogues, fallback=frozenset(fallback)) == 3
    for group in groups:  # the split's own turns are used up before the fallback
        owner = dialogues[0] if group.candidates[0] in dialogues[0].turns else dialogues[1]
        other = dialogues[1] if owner is dialogues[0] else dialogues[0]
        assert set(other.turns) <= set(group.candidates[1:])


# --- prepared files --------------------------------------------------------------------------


def test_prepared_files_round_trip(prepared_dir: Path, chitchat_slice: list[Dialogue]) -> None:
    assert sorted(p.name for p in prepared_dir.iterdir()) == FILES
    meta = json.loads((prepared_dir / "meta.json").read_text())
    train, valid, test = split_dialogues(chitchat_slice, seed=0)

    pairs = read_training_pairs(prepared_dir / "train.txt", speakers_path=prepared_dir / "train.speakers")
    expected = {(p.context, p.response) for d in train for p in expand_prefixes(d)}
    assert {(p.context, p.response) for p in pairs} == expected and len(pairs) == len(expected)
    for pair in pairs:  # speakers from the sidecar: alternating from the dialogue's first turn
        assert pair.context_speakers == tuple(i % 2 for i in range(len(pair.context)))
        assert pair.response_speaker == len(pair.context) % 2
    assert meta["splits"]["train"] == {
        "dialogues": len(train),
        "turns": sum(len(d.turns) for d in train),
        "contexts": sum(len(d.turns) - 1 for d in train),
        "lines": len(train),
    }
    for name, dialogues in (("valid", valid), ("test", test)):
        path = prepared_dir / f"{name}.txt"
        groups = read_rerank_groups(path, speakers_path=speakers_path_for(path))
        borrowed = check_groups(groups, dialogues, fallback=frozenset(t for d in train for t in d.turns))
        assert meta["splits"][name]["contexts_with_train_negatives"] == borrowed
        assert meta["splits"][name]["contexts"] == len(groups)
        assert meta["splits"][name]["lines"] == 10 * len(groups)
        # no conversation overlap: every context comes from this split and (beyond a short
        # exchange two conversations might share, like "Hi" / "Hello") from no training dialogue
        for group in groups:
            whole = (*group.context, group.candidates[0])
            assert any(is_prefix(whole, d) for d in dialogues)
            assert len(whole) < 3 or not any(is_prefix(whole, d) for d in train)
    pool = read_response_pool(prepared_dir / "responses.txt")
    assert pool == list(dict.fromkeys(t for d in train for t in d.turns))
    assert meta["responses"] == len(pool) and meta["source"]["conversations"] == 7168


def test_speakers_sidecars_are_aligned(prepared_dir: Path, chitchat_slice: list[Dialogue]) -> None:
    train = split_dialogues(chitchat_slice, seed=0)[0]
    assert read_speakers(prepared_dir / "train.speakers") == [d.speakers for d in train]
    for name in ("valid", "test"):
        rows = read_speakers(prepared_dir / f"{name}.speakers")
        lines = (prepared_dir / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        assert len(rows) == len(lines)
        for start in range(0, len(rows), 10):
            group_rows = rows[start : start + 10]
            assert len(set(group_rows)) == 1  # every candidate gets the same (true) response speaker
            assert len(group_rows[0]) == lines[start].count("\t")
            assert group_rows[0] == tuple(i % 2 for i in range(len(group_rows[0])))


def test_same_seed_same_bytes_other_seed_other_split(prepared_dir: Path, tmp_path: Path) -> None:
    # a separate process with another string-hash seed: the bytes must not depend on set/dict hashing
    out = str(tmp_path / "again")
    code = f"from hashbert.data import prepare_chitchat; prepare_chitchat({out!r}, 0, max_dialogues=60)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (prepared_dir / name).read_bytes(), name
    prepare_chitchat(tmp_path / "other", seed=1, max_dialogues=60)
    for name in ("train.txt", "valid.txt", "test.txt"):
        assert (tmp_path / "other" / name).read_bytes() != (prepared_dir / name).read_bytes(), name


def test_returned_stats_are_the_meta_file(tmp_path: Path) -> None:
    stats = prepare_chitchat(tmp_path, seed=2, contexts_per_dialogue=1, max_dialogues=60)
    assert stats == json.loads((tmp_path / "meta.json").read_text())
    assert stats["parameters"] == {
        "seed": 2,
        "contexts_per_dialogue": 1,
        "max_dialogues": 60,
        "n_candidates": 10,
        "fractions": [0.9, 0.05, 0.05],
    }
    assert stats["splits"]["test"]["contexts"] == 3 and len(stats["source"]["sha256"]) == 64


def test_a_slice_too_small_to_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_dialogues=10 leaves fewer than 2 valid or test"):
        prepare_chitchat(tmp_path, max_dialogues=10)


def test_data_package_imports_without_torch() -> None:
    code = "import sys, hashbert.data; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
