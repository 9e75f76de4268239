"""The BM25 test split: same contexts as the random one, on-topic negatives, never the own conversation nor a
near-copy of the positive; the pieces (query, pool, picks) on hand-made texts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashbert.cli import main
from hashbert.data import bm25 as bm25_module
from hashbert.data import load_chitchat, prepare_chitchat, read_rerank_groups, split_dialogues
from hashbert.data.bm25 import (
    Bm25Pool,
    cached_search,
    context_query,
    near_copy_key,
    pick_negatives,
    top_k_by_score_then_id,
)
from hashbert.io import sha256_file

SLICE = 200  # conversations: 10 test and 10 valid dialogues, a few hundred turns each split


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The same slice prepared twice: with bm25 negatives and with random ones only."""
    bm25, plain = tmp_path_factory.mktemp("bm25"), tmp_path_factory.mktemp("random")
    prepare_chitchat(bm25, contexts_per_dialogue=3, max_dialogues=SLICE, negatives="bm25")
    prepare_chitchat(plain, contexts_per_dialogue=3, max_dialogues=SLICE)
    return bm25, plain


def _content_words(text: str) -> set[str]:
    """The words BM25 matches on: bm25s's tokens, English stop-words removed."""
    import bm25s

    return set(bm25s.tokenize([text], stopwords="en", return_ids=False, show_progress=False)[0])


def test_random_files_are_unchanged_and_bm25_files_sit_beside_them(prepared):
    bm25, plain = prepared
    for name in ("train.txt", "valid.txt", "test.txt", "responses.txt", "test.speakers"):
        assert (bm25 / name).read_bytes() == (plain / name).read_bytes(), name
    meta = json.loads((bm25 / "meta.json").read_text())
    assert meta["parameters"]["negatives"] == "bm25" and "negatives" not in json.loads(
        (plain / "meta.json").read_text()
    )["parameters"]
    for split in ("valid", "test"):
        assert meta["splits"][f"{split}_bm25"]["lines"] == meta["splits"][split]["lines"]
        assert meta["splits"][f"{split}_bm25"]["sha256"] == sha256_file(bm25 / f"{split}_bm25.txt")
        assert (bm25 / f"{split}_bm25.speakers").read_bytes() == (bm25 / f"{split}.speakers").read_bytes()


def test_bm25_groups_keep_contexts_and_positives_and_obey_the_negative_rules(prepared):
    bm25, _ = prepared
    test_dialogues = split_dialogues(load_chitchat(max_dialogues=SLICE))[2]
    owner = {turn: {d.id for d in test_dialogues if turn in d.turns} for d in test_dialogues for turn in d.turns}
    hard = read_rerank_groups(bm25 / "test_bm25.txt", speakers_path=bm25 / "test_bm25.speakers")
    easy = read_rerank_groups(bm25 / "test.txt")
    assert len(hard) == len(easy) > 20
    for h, e in zip(hard, easy, strict=True):
        assert (h.context, h.candidates[0], h.labels) == (e.context, e.candidates[0], e.labels)
        own = next(d.id for d in test_dialogues if d.turns[: len(h.context) + 1] == (*h.context, h.candidates[0]))
        negatives = h.candidates[1:]
        keys = [near_copy_key(text) for text in negatives]
        assert len(set(keys)) == 9 and near_copy_key(h.candidates[0]) not in keys
        assert all(text in owner and own not in owner[text] for text in negatives)  # other test conversations


def test_bm25_negatives_share_more_words_with_the_context_than_random_ones(prepared):
    bm25, _ = prepared
    hard = read_rerank_groups(bm25 / "test_bm25.txt")
    easy = read_rerank_groups(bm25 / "test.txt")

    def overlap(groups) -> float:
        shared = [_content_words(context_query(g.context)) & _content_words(g.candidates[1]) for g in groups]
        return float(np.mean([len(words) for words in shared]))

    assert overlap(hard) > 2 * overlap(easy) and overlap(hard) >= 2


def test_context_query_weights_the_last_turn_twice():
    assert context_query(("a", "b", "c")) == "b c c"
    assert context_query(("only",)) == "only only"
    assert context_query(("a", "b", "c"), turns=3, last_weight=1) == "a b c"
    with pytest.raises(ValueError, match="turns"):
        context_query(("a",), turns=0)


def test_near_copy_key_ignores_case_punctuation_and_spacing():
    assert near_copy_key("Yes!!  I do.") == near_copy_key("yes i do") == "yes i do"
    assert near_copy_key("yes, I do") != near_copy_key("yes I don't")


def test_pool_ranks_by_shared_rare_words_and_marks_no_match():
    pool = Bm25Pool(["i love my dog", "cats are nice", "my dog and my cat", "the weather today"])
    ranked = pool.search(["dog dog cat", "zebra"], k=4)
    assert ranked.shape == (2, 4) and set(ranked[0, :2]) == {0, 2} and ranked[0, 3] == -1
    assert (ranked[1] == -1).all()  # no shared word: no BM25 candidate at all


def test_pool_orders_equal_scores_by_pool_id_as_a_full_stable_sort_does():
    # short chit-chat turns tie often ("ok", "lol"): the order of ties decides which turns become negatives, and a
    # split must not depend on the CPU's SIMD partition (the brute-force reference is a full stable sort)
    turns = list(dict.fromkeys(t for d in load_chitchat()[:300] for t in d.turns))
    pool, queries = Bm25Pool(turns), turns[:150] + ["ok", "lol", "yes", "the"]
    got = pool.search(queries, k=10)
    ties = 0
    for query, row in zip(pool._tokenize(queries), got, strict=True):
        scores = pool._index.get_scores(query or ["\x00"])
        reference = np.lexsort((np.arange(len(scores)), -scores))[:10]
        assert np.array_equal(row, np.where(scores[reference] > 0, reference, -1))
        ties += len(set(scores[reference][scores[reference] > 0].tolist())) < (scores[reference] > 0).sum()
    assert ties > 10  # the queries do exercise tied scores


def test_top_k_by_score_then_id_matches_a_full_sort():
    rng = np.random.default_rng(0)
    for _ in range(300):
        scores = rng.integers(0, 4, size=int(rng.integers(1, 40))).astype(np.float32)  # few values: many ties
        k = int(rng.integers(0, 45))
        reference = np.lexsort((np.arange(len(scores)), -scores))[:k]
        assert np.array_equal(top_k_by_score_then_id(scores, k), reference)


def test_cached_search_returns_the_pool_hits_and_reads_them_back_without_indexing(tmp_path, monkeypatch):
    texts, queries = ["i love my dog", "cats are nice", "my dog and my cat", "the weather today"], ["dog cat", "zebra"]
    fresh = Bm25Pool(texts).search(queries, k=3)
    first = cached_search(texts, queries, 3, tmp_path)
    assert first.dtype == np.int64 and np.array_equal(first, fresh)
    assert np.array_equal(cached_search(texts, queries, 3, None), fresh)  # no cache directory: a plain search

    def no_index(*args):
        raise AssertionError("a cached search must not build the BM25 index")

    monkeypatch.setattr(bm25_module, "Bm25Pool", no_index)
    assert np.array_equal(cached_search(texts, queries, 3, tmp_path), fresh)
    with pytest.raises(AssertionError):  # another query list, k or pool is another search
        cached_search(texts, ["weather"], 3, tmp_path)
    with pytest.raises(AssertionError):
        cached_search(texts, queries, 2, tmp_path)
    with pytest.raises(AssertionError):
        cached_search(texts[:3], queries, 3, tmp_path)


def test_pick_negatives_skips_forbidden_texts_and_near_copies():
    texts = ["Sure!", "sure", "no way", "maybe", "ok"]
    picks = pick_negatives([0, 1, 2, 3, 4], texts, lambda j: j != 3, positive="OK", n=5)
    assert picks == ["Sure!", "no way"]  # "sure" copies "Sure!", "maybe" is forbidden, "ok" copies the positive
    assert pick_negatives([2, -1, 0], texts, lambda j: True, positive="x", n=5) == ["no way"]  # -1 ends the hits


def test_cli_prepares_the_bm25_split(tmp_path, capsys):
    assert main(["data", "prepare", "chitchat", "--out", str(tmp_path), "--max-dialogues", "60",
                 "--negatives", "bm25"]) == 0
    assert "test_bm25: contexts=" in capsys.readouterr().out
    assert len(read_rerank_groups(tmp_path / "valid_bm25.txt")) == len(read_rerank_groups(tmp_path / "valid.txt"))
    assert main(["data", "prepare", "chitchat", "--out", str(tmp_path), "--negatives", "tfidf"]) == 2
