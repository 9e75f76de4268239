"""HdrCache: one dialogue's history for HDR-BERT, updated one utterance at a time.

``append(utterance)`` runs the utterance encoder on the newest utterance only and stores its slot
vectors (``append_many`` does so for several dialogues' newest utterances in one forward pass);
``context_vectors()`` runs the (cheap) aggregator over what is cached. The cache keeps the
newest ``max_turns`` turns (the oldest is dropped), the same truncation training and ``encode_*`` use
(``hdr.model.newest_turns``), so its output equals encoding the same history from scratch within float
tolerance. A chatbot session outlives a process: ``save``/``load`` write and read a directory of
``state.json`` (texts, speakers, turn indices, the model's config and fingerprint) +
``vectors.safetensors`` + ``checksums.json``, atomically; nothing is pickled.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from hashbert.config import HdrConfig, config_from_dict, config_to_dict
from hashbert.io import ArtefactError, atomic_directory, read_json, verify_checksums, write_checksums, write_json

if TYPE_CHECKING:
    from hashbert.models.hdr.model import HdrModel

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
STATE, VECTORS = "state.json", "vectors.safetensors"


@dataclass(frozen=True)
class CachedTurn:
    """One cached utterance.

    Attributes:
        text: the utterance.
        index: its turn number in the dialogue (0 = first utterance ever appended, dropped ones included).
        speaker: 0/1 sender where known, else None.
        slots: (k, H) float32 slot vectors; slot_mask: (k,) bool (torch tensors, or NumPy arrays when the
            model runs on ONNX Runtime).
    """

    text: str
    index: int
    speaker: int | None
    slots: torch.Tensor | np.ndarray
    slot_mask: torch.Tensor | np.ndarray


class HdrCache:
    """The cached history of one dialogue.

    Args:
        model: the HDR model (used in eval mode).
        max_turns: turns kept (default and maximum: the model's ``max_context_turns``).
    """

    def __init__(self, model: HdrModel, max_turns: int | None = None) -> None:
        limit = model.config.max_turns
        max_turns = limit if max_turns is None else max_turns
        if not 1 <= max_turns <= limit:
            raise ValueError(f"max_turns must be in [1, {limit}] (the model's history bound), got {max_turns}")
        self.model, self.max_turns = model, max_turns
        self.turns: deque[CachedTurn] = deque(maxlen=max_turns)
        self.next_index = 0

    def __len__(self) -> int:
        return len(self.turns)

    def copy(self) -> HdrCache:
        """An independent cache with the same history (cached vectors are shared; they are never changed in place)."""
        other = HdrCache(self.model, self.max_turns)
        other.turns.extend(self.turns)
        other.next_index = self.next_index
        return other

    @property
    def texts(self) -> tuple[str, ...]:
        """The cached utterances, oldest first."""
        return tuple(t.text for t in self.turns)

    def append(self, utterance: str, speaker: int | None = None) -> None:
        """Encode ``utterance`` (and nothing else) and add it as the newest turn, dropping the oldest if full."""
        append_many([self], [utterance], [speaker])

    def context_vectors(self) -> np.ndarray:
        """The context vector (H,) float32, or for colbert its real vectors (n, H); needs at least one turn."""
        return context_vectors_many([self])[0]

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> Path:
        """Write the cache to ``directory`` atomically (``state.json`` + ``vectors.safetensors`` + checksums)."""
        from safetensors.torch import save_file

        state = {
            "format": FORMAT_VERSION, "max_turns": self.max_turns, "next_index": self.next_index,
            "model_config": config_to_dict(self.model.config), "model_fingerprint": self.model.fingerprint,
            "turns": [{"text": t.text, "index": t.index, "speaker": t.speaker} for t in self.turns],
        }
        tensors = {}
        if self.turns:
            tensors["slots"] = torch.stack([torch.as_tensor(t.slots) for t in self.turns]).cpu().contiguous()
            masks = [torch.as_tensor(t.slot_mask) for t in self.turns]
            tensors["slot_mask"] = torch.stack(masks).to(torch.uint8).cpu().contiguous()
        directory = Path(directory)
        with atomic_directory(directory, kind="hdr-cache") as tmp:
            write_json(tmp / STATE, state)
            save_file(tensors, str(tmp / VECTORS))
            write_checksums(tmp, [STATE, VECTORS])
        return directory

    @classmethod
    def load(cls, directory: str | Path, model: HdrModel) -> HdrCache:
        """Restore a cache saved by ``save`` for use with ``model`` (the same config and, when known, weights).

        Raises:
            ArtefactError: damaged files, another format, or a cache made by a different model.
        """
        from safetensors.torch import load_file

        directory = verify_checksums(directory, required=(STATE, VECTORS))  # the saved version, read once
        state = read_json(directory / STATE)
        if state.get("format") != FORMAT_VERSION:
            raise ArtefactError(f"{directory}: cache format {state.get('format')!r}, expected {FORMAT_VERSION}")
        if _saved_config(directory, state.get("model_config")) != model.config:
            raise ArtefactError(f"{directory}: the cache was made by an HDR model with another configuration")
        saved, ours = state.get("model_fingerprint"), model.fingerprint
        if saved and ours and saved != ours:
            raise ArtefactError(f"{directory}: the cache was made by other HDR weights (fingerprint {saved[:12]})")
        tensors = load_file(str(directory / VECTORS), device=str(model.device))
        cache = cls(model, state["max_turns"])
        for i, turn in enumerate(state["turns"]):
            slots, mask = tensors["slots"][i], tensors["slot_mask"][i].bool()
            cache.turns.append(CachedTurn(turn["text"], turn["index"], turn["speaker"], slots, mask))
        cache.next_index = state["next_index"]
        return cache


@torch.inference_mode()
def append_many(caches: Sequence[HdrCache], utterances: Sequence[str], speakers: Sequence[int | None]) -> None:
    """``caches[i].append(utterances[i], speakers[i])`` for every i, encoded in one forward pass.

    Concurrent conversations of a server each add one utterance per turn; encoding them together costs
    little more than encoding one. The caches must share one model. Padding to the longest utterance
    changes nothing but float rounding (the attention mask hides it), so each cache gets what its own
    ``append`` would give within float tolerance.
    """
    if not len(caches) == len(utterances) == len(speakers):
        raise ValueError(f"{len(caches)} caches, {len(utterances)} utterances and {len(speakers)} speakers")
    if not caches:
        return
    model = _shared_model(caches, "append_many")
    for speaker in speakers:
        if speaker not in (None, 0, 1):
            raise ValueError(f"speaker must be 0, 1 or None, got {speaker!r}")
    slots, mask = model.encode_utterances(list(utterances))  # (U, k, H) float32, (U, k): torch or NumPy
    for i, (cache, utterance, speaker) in enumerate(zip(caches, utterances, speakers, strict=True)):
        cache.turns.append(CachedTurn(utterance, cache.next_index, speaker, slots[i], mask[i]))
        cache.next_index += 1


def _shared_model(caches: Sequence[HdrCache], what: str) -> HdrModel:
    """The one model every cache of a batch uses (a batch runs one model's forward pass)."""
    model = caches[0].model
    if any(cache.model is not model for cache in caches):
        raise ValueError(f"{what} needs caches of one model")
    return model


def context_vectors_many(caches: Sequence[HdrCache]) -> list[np.ndarray]:
    """``cache.context_vectors()`` of every cache, in one aggregator call (the caches share one model).

    The model's runtime (torch, or ONNX Runtime on NumPy arrays) stacks every cache's turns into one table;
    a shorter dialogue's missing turns are masked, so each result equals its cache's own within float tolerance.
    """
    if any(not cache.turns for cache in caches):
        raise ValueError("the cache is empty: append an utterance first")
    if not caches:
        return []
    model = _shared_model(caches, "context_vectors_many")
    dialogues = [([t.slots for t in cache.turns], [t.slot_mask for t in cache.turns]) for cache in caches]
    vectors, masks = model.aggregate_dialogues(dialogues)  # (B, k_out, H), (B, k_out)
    real = [row[mask] for row, mask in zip(vectors, masks, strict=True)]  # (n_b, H): the real vectors
    return real if model.multi_vector else [row[0] for row in real]


def _saved_config(directory: Path, saved: object) -> HdrConfig:
    """The HDR config a cache recorded, read as a config (so one saved before a field moved still compares)."""
    try:
        return config_from_dict(HdrConfig, saved)
    except ValueError as err:
        raise ArtefactError(f"{directory}: the cache records an unreadable model config ({err})") from err
