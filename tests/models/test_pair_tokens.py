"""The [CLS] context [SEP] response [SEP] layout, its truncation sides and the speaker ids."""

from __future__ import annotations

import pytest

from hashbert.models.encoder import load_tokenizer, resolve_model_dir
from hashbert.models.pair_tokens import PairTokenizer, alternating_speakers, pair_speakers


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model_dir("all-MiniLM-L6-v2"))


def _words(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens(ids)


def test_layout_and_token_types(tokenizer):
    ids, types, speakers = PairTokenizer(tokenizer, 64, 16).sequence(
        ("hello there", "how are you"), "fine thanks", (0, 1), 0
    )
    assert _words(tokenizer, ids) == [
        "[CLS]", "hello", "there", "[SEP]", "how", "are", "you", "[SEP]", "fine", "thanks", "[SEP]"
    ]
    assert types == [0] * 8 + [1] * 3
    assert speakers == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_context_is_cut_from_the_left_and_response_from_the_right(tokenizer):
    context = ("one two three four five", "six seven eight nine ten")
    response = "alpha beta gamma delta epsilon"
    ids, _, _ = PairTokenizer(tokenizer, 12, 3).sequence(context, response, (0, 1), 0)
    words = _words(tokenizer, ids)
    assert len(ids) == 12
    assert words[-4:] == ["alpha", "beta", "gamma", "[SEP]"]  # response keeps its start
    # 12 = [CLS] + 7 context tokens + 4 response tokens: the context keeps its newest 7.
    assert words[:8] == ["[CLS]", "[SEP]", "six", "seven", "eight", "nine", "ten", "[SEP]"]


def test_max_context_turns_keeps_the_newest(tokenizer):
    pair_tokenizer = PairTokenizer(tokenizer, 64, 8, max_context_turns=1)
    ids, _, speakers = pair_tokenizer.sequence(("old", "new"), "reply", (0, 1), 0)
    assert _words(tokenizer, ids) == ["[CLS]", "new", "[SEP]", "reply", "[SEP]"]
    assert speakers == [1, 1, 1, 0, 0]


def test_speakers_alternate_or_come_from_the_record():
    assert alternating_speakers(3) == ((0, 1, 0), 1)
    assert pair_speakers(2, None, None) == ((0, 1), 0)
    assert pair_speakers(3, (1, 0, 0), None) == ((1, 0, 0), 1)  # recorded; the response is the other speaker
    assert pair_speakers(2, (0, 0), 0) == ((0, 0), 0)


def test_batch_pads_and_masks(tokenizer):
    batch = PairTokenizer(tokenizer, 32, 8).batch(
        [("hi",), ("a much longer context here",)], ["yo", "ok"], [(1,), None]
    )
    assert batch["input_ids"].shape == batch["speaker_ids"].shape == (2, 9)
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert batch["speaker_ids"][0, :5].tolist() == [1, 1, 1, 0, 0]  # recorded speaker 1, response the other one
    assert batch["speaker_ids"][1, -2:].tolist() == [1, 1]  # alternation: one context turn, response speaker 1
