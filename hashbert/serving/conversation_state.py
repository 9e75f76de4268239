"""A conversation for the retriever: its (text, speaker) turns and, for HDR models, each turn's cached state.

An HDR model encodes each utterance on its own, so ``Conversation.add`` runs the utterance encoder on the
newest utterance only (an ``HdrCache``; ``add_many`` does so for several conversations in one forward pass)
and returns that turn's state as bytes: a safetensors blob of the turn's slot vectors ``slots`` (k, H)
float32 and ``slot_mask`` (k,) uint8, with the HDR model's fingerprint in its metadata (no pickles). A
conversation rebuilt from stored states (``Conversation.restore``) encodes nothing and selects exactly what
the live one selects. Other models (DR-BERT, Hash-BERT) re-encode the whole
history at each selection, so their states are empty (``b""``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hashbert.serving.retriever import Retriever

logger = logging.getLogger(__name__)

STATE_FORMAT = "1"


def encode_turn_state(turn, fingerprint: str | None) -> bytes:
    """A ``CachedTurn``'s slot vectors and mask -> safetensors bytes (metadata: format, model fingerprint)."""
    import torch
    from safetensors.torch import save

    slots, mask = torch.as_tensor(turn.slots), torch.as_tensor(turn.slot_mask)  # NumPy on ONNX Runtime
    tensors = {"slots": slots.float().cpu().contiguous(), "slot_mask": mask.to(torch.uint8).cpu()}
    return save(tensors, metadata={"format": STATE_FORMAT, "model": fingerprint or ""})


def decode_turn_state(state: bytes, fingerprint: str | None, slots: int, dim: int):
    """Inverse of ``encode_turn_state``: ``(slots (k, H) float32, slot_mask (k,) bool)`` as torch tensors.

    Raises:
        ValueError: not such a blob, another format, other shapes, or a state made by other HDR weights.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(bytes(state))
        size = int.from_bytes(state[:8], "little")  # safetensors: u64 header size, then the JSON header
        metadata = json.loads(bytes(state[8 : 8 + size])).get("__metadata__") or {}
    except (SafetensorError, ValueError, TypeError) as err:
        raise ValueError(f"not a cached turn state ({err})") from err
    if metadata.get("format") != STATE_FORMAT or set(tensors) != {"slots", "slot_mask"}:
        raise ValueError(f"not a cached turn state of format {STATE_FORMAT} (metadata {metadata})")
    saved = metadata.get("model")
    if saved and fingerprint and saved != fingerprint:
        raise ValueError(f"the turn state was made by other HDR weights (fingerprint {saved[:12]})")
    if tensors["slots"].shape != (slots, dim) or tensors["slot_mask"].shape != (slots,):
        raise ValueError(f"turn state shapes {tuple(tensors['slots'].shape)} do not fit this model ({slots}, {dim})")
    return tensors["slots"].float(), tensors["slot_mask"].bool()


class Conversation:
    """One dialogue's turns for ``retriever``; speakers are 0 (user) and 1 (bot).

    Attributes:
        turns: ``(text, speaker, state)`` per turn, oldest first (what ``restore`` takes back).
        cache: the ``HdrCache`` of an HDR model, else None.
    """

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self.turns: list[tuple[str, int, bytes]] = []
        self.cache = None
        if retriever.is_hdr:
            from hashbert.models.hdr.cache import HdrCache

            self.cache = HdrCache(retriever.towers.encoder)

    def __len__(self) -> int:
        return len(self.turns)

    @property
    def context(self) -> tuple[str, ...]:
        """The utterances, oldest first."""
        return tuple(text for text, _, _ in self.turns)

    def add(self, utterance: str, speaker: int) -> bytes:
        """Append a turn; for HDR encode it (only it) and return its cached state, else return ``b""``."""
        return add_many([self], [utterance], [speaker])[0]

    def reset(self) -> None:
        """Forget every turn."""
        self.turns.clear()
        if self.cache is not None:
            self.cache = type(self.cache)(self.cache.model, self.cache.max_turns)

    @classmethod
    def restore(cls, retriever: Retriever, turns: Sequence[tuple[str, int, bytes]]) -> Conversation:
        """Rebuild a conversation from ``(text, speaker, state)`` turns without encoding anything.

        Raises:
            ValueError: an HDR turn (among the newest the model keeps) without a valid state.
        """
        from hashbert.models.hdr.cache import CachedTurn

        conversation = cls(retriever)
        cache = conversation.cache
        keep_from = len(turns) - cache.max_turns if cache is not None else len(turns)
        for i, (text, speaker, state) in enumerate(turns):
            conversation.turns.append((text, int(speaker), bytes(state)))
            if cache is None or i < keep_from:
                continue
            model = cache.model
            try:
                slots, mask = decode_turn_state(state, model.fingerprint, model.config.slots, model.dim)
            except ValueError as err:
                raise ValueError(f"turn {i}: {err}") from err
            cache.turns.append(CachedTurn(text, i, int(speaker), slots.to(model.device), mask.to(model.device)))
        if cache is not None:
            cache.next_index = len(turns)
        return conversation


def check_turn(utterance: str, speaker: int) -> None:
    """Raise ValueError unless ``utterance`` is a non-empty string and ``speaker`` is 0 or 1."""
    if not isinstance(utterance, str) or not utterance.strip():
        raise ValueError(f"an utterance must be a non-empty string, got {utterance!r}")
    if speaker not in (0, 1):
        raise ValueError(f"speaker must be 0 or 1, got {speaker!r}")


def add_many(conversations: Sequence[Conversation], utterances: Sequence[str], speakers: Sequence[int]) -> list[bytes]:
    """``conversations[i].add(utterances[i], speakers[i])`` for every i; HDR encodes the utterances together.

    Every turn is checked before any conversation changes, so a bad one leaves them all as they were.
    """
    if not len(conversations) == len(utterances) == len(speakers):
        raise ValueError(f"{len(conversations)} conversations, {len(utterances)} utterances, {len(speakers)} speakers")
    for utterance, speaker in zip(utterances, speakers, strict=True):
        check_turn(utterance, speaker)
    hdr = [i for i, conversation in enumerate(conversations) if conversation.cache is not None]
    if hdr:
        from hashbert.models.hdr.cache import append_many

        append_many([conversations[i].cache for i in hdr], [utterances[i] for i in hdr], [speakers[i] for i in hdr])
    states = [b""] * len(conversations)
    for i in hdr:
        cache = conversations[i].cache
        states[i] = encode_turn_state(cache.turns[-1], cache.model.fingerprint)
    for conversation, utterance, speaker, state in zip(conversations, utterances, speakers, states, strict=True):
        conversation.turns.append((utterance, speaker, state))
    return states


def context_vectors_many(conversations: Sequence[Conversation]) -> np.ndarray:
    """HDR: (B, H) float32, every conversation's context vector from one aggregator call."""
    if any(conversation.cache is None for conversation in conversations):
        raise ValueError("only HDR conversations have a cached context vector")
    from hashbert.models.hdr.cache import context_vectors_many as of_caches

    return np.stack(of_caches([conversation.cache for conversation in conversations]))
