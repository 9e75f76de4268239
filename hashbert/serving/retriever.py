"""Retriever: the top-k responses of a bundle for contexts or conversations, with the time of each stage.

Search uses the index pieces as the full-rank evaluation does: a float model searches its ``FloatIndex`` by
inner product; a hashing model takes the Hamming top-l of its ``BinaryFlatIndex`` (l = ``rerank_candidates``)
and re-ranks those l with ``TwoStageSearcher``, against ``vectors.npy`` when the bundle has it (float context .
float response) or else against the codes (float context hash . ±1 code). ``rerank_candidates=0`` keeps the
Hamming order (scores are negated distances, equal distances ordered by id).

Stages (``Selection.timings_ms``, milliseconds; a batch's selections share their batch's times):
``encode`` text -> vectors (and their codes); ``aggregate`` the HDR aggregator over cached turns (stateless HDR
selection runs it inside ``encode``); ``search`` the index (Hamming or inner product); ``rerank`` the re-rank
of the l candidates. A stage that does not apply is 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashbert.codes import binarize, pack_codes
from hashbert.config.inference import InferenceConfig
from hashbert.config.serving import BundleManifest
from hashbert.index.two_stage import TwoStageSearcher
from hashbert.serving.bundle import LoadedBundle, load_bundle
from hashbert.serving.conversation_state import Conversation, context_vectors_many
from hashbert.serving.towers import Towers

logger = logging.getLogger(__name__)

STAGES = ("encode", "aggregate", "search", "rerank")

__all__ = ["STAGES", "Candidate", "Conversation", "Retriever", "Selection"]


@dataclass(frozen=True)
class Candidate:
    """One selected response: its id (the line of the responses file), text and score (higher = better)."""

    id: int
    text: str
    score: float


@dataclass(frozen=True)
class Selection:
    """The top-k candidates, best first, and the milliseconds of each stage (keys ``STAGES``)."""

    candidates: list[Candidate]
    timings_ms: dict[str, float]


class _TimedIndex:
    """A binary index whose ``search`` records its own duration (per thread), so that the Hamming stage of
    ``TwoStageSearcher.search`` can be told apart from its re-rank."""

    def __init__(self, index) -> None:
        self._index, self._local = index, threading.local()

    def __getattr__(self, name: str):
        return getattr(self._index, name)

    def __len__(self) -> int:
        return len(self._index)

    def search(self, queries: np.ndarray, k: int):
        start = time.perf_counter()
        try:
            return self._index.search(queries, k)
        finally:
            self._local.ms = _ms(start)

    @property
    def last_ms(self) -> float:
        return getattr(self._local, "ms", 0.0)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


class Retriever:
    """Top-k selection over a loaded bundle.

    Args:
        bundle: from ``load_bundle`` (or use ``Retriever.load``).
        rerank_candidates: l, the Hamming candidates a hashing model re-ranks (0: no re-rank).
    """

    def __init__(self, bundle: LoadedBundle, rerank_candidates: int = 1000) -> None:
        if not isinstance(rerank_candidates, int) or rerank_candidates < 0:
            raise ValueError(f"rerank_candidates must be a non-negative integer, got {rerank_candidates!r}")
        self.bundle, self.rerank_candidates = bundle, rerank_candidates
        self.index = bundle.index
        self._timed = _TimedIndex(bundle.index) if self.manifest.n_bits else None
        self._searcher = None
        if self._timed is not None and rerank_candidates:
            candidates = min(rerank_candidates, len(bundle.index))
            self._searcher = TwoStageSearcher(self._timed, rerank_vectors=bundle.vectors, candidates=candidates)

    @classmethod
    def load(
        cls, bundle_dir: str | Path, threads: int | None = None, rerank_candidates: int = 1000,
        inference: InferenceConfig | None = None,
    ) -> Retriever:
        """Verify and load the bundle in ``bundle_dir`` (``threads``: faiss search threads, default all cores;
        ``inference``: torch or ONNX Runtime for the towers, default onnx when the bundle's model has an export)."""
        return cls(load_bundle(bundle_dir, threads, inference), rerank_candidates)

    @property
    def manifest(self) -> BundleManifest:
        return self.bundle.manifest

    @property
    def towers(self) -> Towers:
        return self.bundle.towers

    @property
    def is_hdr(self) -> bool:
        """Whether conversations cache each turn's state (HDR models)."""
        return self.towers.is_hdr

    def new_conversation(self) -> Conversation:
        """An empty conversation for this retriever."""
        return Conversation(self)

    # ------------------------------------------------------------------ selection

    def select(self, turns: Sequence[str], k: int) -> Selection:
        """The top-``k`` responses after ``turns`` (the whole context, oldest first; nothing is cached)."""
        return self.select_batch([turns], k)[0]

    def select_batch(self, contexts: Sequence[Sequence[str]], k: int) -> list[Selection]:
        """``select`` for several contexts, encoded in one forward pass."""
        contexts = [_checked_turns(turns) for turns in contexts]
        if not contexts:
            return []
        start = time.perf_counter()
        vectors = self.towers.context_vectors(contexts)
        return self._search(vectors, k, {"encode": _ms(start), "aggregate": 0.0})

    def select_conversations(self, conversations: Sequence[Conversation], k: int) -> list[Selection]:
        """The top-``k`` responses after each conversation's turns.

        HDR: one aggregator call over every conversation's cached turns (nothing is encoded); other models
        encode the conversations' histories in one batch (the DR-BERT baseline).
        """
        if not conversations:
            return []
        if any(len(c) == 0 for c in conversations):
            raise ValueError("a conversation has no turns yet: add an utterance first")
        if not self.is_hdr:
            return self.select_batch([c.context for c in conversations], k)
        start = time.perf_counter()
        vectors = context_vectors_many(conversations)  # (B, H), one aggregator call
        return self._search(vectors, k, {"encode": 0.0, "aggregate": _ms(start)})

    def _search(self, vectors: np.ndarray, k: int, timings: dict[str, float]) -> list[Selection]:
        """(B, H) dense context vectors -> selections; ``timings`` holds the stages so far."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if self._searcher is not None and k > self.rerank_candidates:
            raise ValueError(f"k={k} is more than the {self.rerank_candidates} candidates re-ranked")
        k = min(k, len(self.index))
        if not self.manifest.n_bits:
            start = time.perf_counter()
            scores, ids = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
            return self._selections(scores, ids, {**timings, "search": _ms(start), "rerank": 0.0})
        start = time.perf_counter()
        hash_vectors = self.towers.context_hash_vectors(vectors)  # (B, n_bits)
        codes = pack_codes(binarize(hash_vectors))
        timings = {**timings, "encode": timings["encode"] + _ms(start)}
        start = time.perf_counter()
        if self._searcher is None:
            distances, ids = self._timed.search(codes, k)
            scores = -distances.astype(np.float32)  # higher = better, like every other score
            return self._selections(scores, ids, {**timings, "search": _ms(start), "rerank": 0.0})
        floats = vectors if self.bundle.vectors is not None else hash_vectors
        scores, ids = self._searcher.search(codes, floats, k)
        total, hamming = _ms(start), self._timed.last_ms
        return self._selections(scores, ids, {**timings, "search": hamming, "rerank": max(0.0, total - hamming)})

    def _selections(self, scores: np.ndarray, ids: np.ndarray, timings: dict[str, float]) -> list[Selection]:
        texts = self.index.texts_of(ids)
        return [
            Selection(
                [Candidate(int(i), t, float(s)) for s, i, t in zip(row_s, row_i, row_t, strict=True) if i >= 0],
                {stage: round(float(timings[stage]), 3) for stage in STAGES},
            )
            for row_s, row_i, row_t in zip(scores, ids, texts, strict=True)
        ]


def _checked_turns(turns: Sequence[str]) -> tuple[str, ...]:
    if isinstance(turns, str) or not turns or not all(isinstance(t, str) for t in turns):
        raise ValueError(f"a context must be a non-empty list of utterances, got {turns!r:.80}")
    return tuple(turns)
