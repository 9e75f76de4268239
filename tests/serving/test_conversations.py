"""Conversations: an HDR turn encodes one utterance, a conversation restored from its states selects exactly what
the live one selects, batches equal single selections, DR-BERT re-encodes the history, bad states are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hashbert.serving.bundle import build_bundle
from hashbert.serving.conversation_state import add_many
from hashbert.serving.retriever import Conversation, Retriever

DIALOGUE = [
    "hi there, how are you doing today?", "pretty good, just got back from a run", "nice! how far did you go?",
    "about five miles along the river", "that sounds lovely, i should start running", "you should, it clears the head",
]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(_base_dual_encoder):
    """One thread: the root fixture asks for two, which oversubscribes a shared two-core machine badly."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture()
def encoded_rows(served_retriever):
    """Rows per call of the HDR utterance encoder while the test runs."""
    rows: list[int] = []
    backbone = served_retriever.towers.encoder.utterance_encoder.backbone
    handle = backbone.register_forward_hook(lambda module, args, kwargs, out: rows.append(len(kwargs["input_ids"])),
                                            with_kwargs=True)
    yield rows
    handle.remove()


def _talk(retriever: Retriever, turns=DIALOGUE) -> Conversation:
    conversation = retriever.new_conversation()
    for i, text in enumerate(turns):
        conversation.add(text, i % 2)
    return conversation


def _same(a, b) -> None:
    assert [(c.id, c.text, c.score) for c in a.candidates] == [(c.id, c.text, c.score) for c in b.candidates]


def test_hdr_add_encodes_only_the_newest_utterance(served_retriever, encoded_rows):
    conversation = served_retriever.new_conversation()
    for i, text in enumerate(DIALOGUE[:3]):
        state = conversation.add(text, i % 2)
        assert isinstance(state, bytes) and state and encoded_rows == [1] * (i + 1)
    selection = served_retriever.select_conversations([conversation], 5)[0]
    assert len(encoded_rows) == 3 and len(selection.candidates) == 5  # selecting encodes nothing
    assert selection.timings_ms["encode"] >= 0 and selection.timings_ms["aggregate"] > 0


def test_add_many_encodes_several_conversations_at_once_like_one_by_one(served_retriever, encoded_rows):
    one_by_one = [_talk(served_retriever, DIALOGUE[:i]) for i in (1, 2, 3)]
    together = [_talk(served_retriever, DIALOGUE[:i]) for i in (1, 2, 3)]
    encoded_rows.clear()
    states = add_many(together, ["what about you?", "ok", "tell me more about the river"], [1, 0, 1])
    assert encoded_rows == [3] and all(states)
    for conversation, text, speaker in zip(one_by_one, ["what about you?", "ok", "tell me more about the river"],
                                           [1, 0, 1], strict=True):
        conversation.add(text, speaker)
    for single, batched in zip(one_by_one, together, strict=True):
        assert [t[:2] for t in single.turns] == [t[:2] for t in batched.turns]
        a, b = served_retriever.select_conversations([single, batched], 5)
        assert [c.id for c in a.candidates] == [c.id for c in b.candidates]
    before = [list(c.turns) for c in together]
    with pytest.raises(ValueError, match="non-empty"):
        add_many(together[:2], ["fine", "  "], [0, 0])  # one bad turn: nothing changes
    assert [list(c.turns) for c in together] == before


def test_restored_conversation_selects_what_the_live_one_selects(served_retriever, encoded_rows):
    live = _talk(served_retriever)  # 6 turns: more than the model keeps (4)
    encoded_rows.clear()
    restored = Conversation.restore(served_retriever, live.turns)
    assert encoded_rows == [] and restored.turns == live.turns and len(restored.cache) == 4
    _same(*served_retriever.select_conversations([live, restored], 5))
    restored.add("what about you?", 1)
    live.add("what about you?", 1)
    _same(*served_retriever.select_conversations([live, restored], 5))


def test_batched_conversations_equal_single_selections(served_retriever):
    first, second = _talk(served_retriever, DIALOGUE[:2]), _talk(served_retriever, DIALOGUE[2:5])
    batch = served_retriever.select_conversations([first, second], 5)
    for conversation, selection in zip([first, second], batch, strict=True):
        single = served_retriever.select_conversations([conversation], 5)[0]
        assert [c.id for c in single.candidates] == [c.id for c in selection.candidates]
        np.testing.assert_allclose([c.score for c in single.candidates], [c.score for c in selection.candidates],
                                   rtol=1e-5)


def test_hdr_conversation_matches_stateless_selection(served_retriever):
    conversation = _talk(served_retriever, DIALOGUE[:5])
    cached = served_retriever.select_conversations([conversation], 5)[0]
    stateless = served_retriever.select(DIALOGUE[:5], 5)
    assert [c.id for c in cached.candidates] == [c.id for c in stateless.candidates]
    np.testing.assert_allclose([c.score for c in cached.candidates], [c.score for c in stateless.candidates],
                               atol=1e-4)


def test_bad_states_are_refused(served_retriever):
    live = _talk(served_retriever, DIALOGUE[:2])
    with pytest.raises(ValueError, match="turn 0: not a cached turn state"):
        Conversation.restore(served_retriever, [("hi", 0, b"garbage"), live.turns[1]])
    with pytest.raises(ValueError, match="turn 1"):
        Conversation.restore(served_retriever, [live.turns[0], ("hi", 1, b"")])
    with pytest.raises(ValueError, match="add an utterance"):
        served_retriever.select_conversations([served_retriever.new_conversation()], 5)


@pytest.fixture(scope="module")
def pool_file(small_corpus, tmp_path_factory) -> Path:
    lines = (small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines()[:100]
    path = tmp_path_factory.mktemp("pool") / "responses.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_dual_encoder_conversation_reencodes_the_history(_base_dual_encoder, pool_file, tmp_path):
    dual_dir = _base_dual_encoder.save(tmp_path / "dual")
    build_bundle(dual_dir, pool_file, tmp_path / "bundle", progress=False)
    retriever = Retriever.load(tmp_path / "bundle", threads=1)
    conversation = retriever.new_conversation()
    assert not retriever.is_hdr and conversation.add(DIALOGUE[0], 0) == b"" and conversation.add(DIALOGUE[1], 1) == b""
    _same(retriever.select_conversations([conversation], 5)[0], retriever.select(DIALOGUE[:2], 5))
    _same(retriever.select_conversations([Conversation.restore(retriever, conversation.turns)], 5)[0],
          retriever.select(DIALOGUE[:2], 5))


def test_hdr_lsh_bundle_is_self_contained_and_restores(served_model_dir, pool_file, tmp_path):
    from hashbert.models.hdr.hashing import save_hdr_lsh

    lsh_dir = save_hdr_lsh(served_model_dir, 64, tmp_path / "lsh")
    manifest = build_bundle(lsh_dir, pool_file, tmp_path / "bundle", progress=False)
    assert (manifest.model_kind, manifest.n_bits, manifest.scoring) == ("hdr_hash", 64, "hamming_codes_rerank")
    header = json.loads((tmp_path / "bundle" / "model" / "config.json").read_text(encoding="utf-8"))
    assert header["config"]["encoder_path"] == "hdr" and header["config"]["encoder_embedded"]
    retriever = Retriever.load(tmp_path / "bundle", threads=1)
    live = _talk(retriever, DIALOGUE[:3])
    restored = Conversation.restore(retriever, live.turns)
    _same(*retriever.select_conversations([live, restored], 5))
    assert retriever.select_conversations([live], 5)[0].timings_ms["rerank"] > 0
