"""What the routes work with: the loaded retriever, the session store, the micro-batcher, the live
conversations and the metrics, started and stopped with the app (the model loads in the background)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from hashbert.config.serving import ServeConfig
from hashbert.serving import schemas as s
from hashbert.serving.batching import MicroBatcher
from hashbert.serving.conversations import ConversationCache, TurnTaker
from hashbert.serving.metrics import ServeMetrics
from hashbert.serving.sessions import SessionStore, UnknownSession

logger = logging.getLogger(__name__)

STAGES = ("encode", "aggregate", "search", "rerank")


def _cut(selection: Any, k: int) -> Any:
    """The selection with its first ``k`` candidates.

    A batch of selections runs with the largest ``k`` asked; the top-``k`` of a ranking is the first ``k`` of
    any longer top list of it.
    """
    return type(selection)(candidates=list(selection.candidates[:k]), timings_ms=dict(selection.timings_ms))


def _add_checked(items: list[tuple[Any, str, int]]) -> list[Any]:
    """Batched ``Conversation.add``: a bad turn gets its own ``ValueError``; the others are encoded together."""
    from hashbert.serving.conversation_state import add_many, check_turn

    results: list[Any] = [None] * len(items)
    good = []
    for i, (_, text, speaker) in enumerate(items):
        try:
            check_turn(text, speaker)
            good.append(i)
        except ValueError as err:
            results[i] = err
    states = add_many(*zip(*[items[i] for i in good], strict=True)) if good else []
    for i, state in zip(good, states, strict=True):
        results[i] = state
    return results


class Runtime:
    """The service's state for one app; ``ready`` once the retriever is loaded and the batcher runs.

    Args:
        bundle_dir: the bundle served.
        settings: the ``ServeConfig``.
        metrics: the app's ``ServeMetrics``.
        retriever: an already loaded ``Retriever`` of the bundle, or None to load it on ``start``.
    """

    def __init__(self, bundle_dir: Path, settings: ServeConfig, metrics: ServeMetrics, retriever: Any = None):
        self.bundle_dir, self.settings, self.metrics = bundle_dir, settings, metrics
        self.retriever = retriever
        self.store: SessionStore | None = None
        self.batcher: MicroBatcher | None = None
        self.turns: TurnTaker | None = None
        self.cache = ConversationCache(settings.conversation_cache)
        self.ready = False
        self.load_error: str | None = None
        self._loading: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the session store and start the batcher; load the model in the background if not given."""
        settings = self.settings
        self.store = SessionStore(settings.sessions_db, settings.session_ttl, settings.max_sessions)
        self.batcher = MicroBatcher(self._run_batch, settings.batch_window_ms, settings.max_batch)
        self.batcher.start()
        if self.retriever is not None:
            self._became_ready()
        else:
            self._loading = asyncio.get_running_loop().create_task(self._load())

    async def stop(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        if self.batcher is not None:
            await self.batcher.stop()
        if self.store is not None:
            self.store.close()
        self.ready = False

    async def _load(self) -> None:
        from hashbert.serving.retriever import Retriever

        started = time.perf_counter()
        threads = self.settings.threads or None
        if threads:
            import torch

            torch.set_num_threads(threads)
        try:
            self.retriever = await asyncio.to_thread(
                Retriever.load, self.bundle_dir, threads=threads, inference=self.settings.inference
            )
        except Exception as err:  # the process stays up and /readyz says why
            logger.exception("could not load the bundle %s", self.bundle_dir)
            self.load_error = f"{type(err).__name__}: {err}"
            return
        logger.info("loaded %s in %.1f s", self.bundle_dir, time.perf_counter() - started)
        self._became_ready()

    def _became_ready(self) -> None:
        assert self.store is not None and self.batcher is not None  # start() made them
        self.turns = TurnTaker(
            self.retriever, self.store, self.cache, self.batcher.call, self._add_utterance,
            lambda conversation, k: self.batcher.submit_blocking("conversations", (conversation, k)),
        )
        manifest = self.retriever.manifest
        self.metrics.index_responses.set(manifest.pool_size)
        self.metrics.index_bytes.set(manifest.bytes_per_response * manifest.pool_size)
        self.ready = True

    def _run_batch(self, kind: str, items: list[Any]) -> list[Any]:
        """One forward pass for a micro-batch (on the model thread).

        Kinds: ``adds`` (conversation, utterance, speaker) -> the turn's state; ``contexts`` (turns, k) and
        ``conversations`` (conversation, k) -> a selection of k candidates.
        """
        self.metrics.batch_size.observe(len(items))
        if kind == "adds":
            return _add_checked(items)
        largest = max(k for _, k in items)
        things = [thing for thing, _ in items]
        if kind == "contexts":
            selections = self.retriever.select_batch(things, largest)
        else:
            selections = self.retriever.select_conversations(things, largest)
        return [_cut(selection, k) for selection, (_, k) in zip(selections, items, strict=True)]

    def _add_utterance(self, conversation: Any, text: str, speaker: int) -> bytes:
        """Add a turn to a live conversation: HDR encodes it in a batch with other sessions' turns."""
        if conversation.cache is None:  # nothing to encode: the history is encoded at selection
            return conversation.add(text, speaker)
        return self.batcher.submit_blocking("adds", (conversation, text, speaker))

    async def select_contexts(self, turns: list[str], k: int) -> Any:
        """The top-``k`` after ``turns`` (stateless), selected in a batch with concurrent requests."""
        return await self.batcher.submit("contexts", (turns, self.clamp(k)))

    # -- what the routes ask --------------------------------------------------------------------------------------

    def clamp(self, k: int) -> int:
        """``k`` no larger than the pool."""
        return max(1, min(k, self.retriever.manifest.pool_size))

    def info(self) -> s.InfoResponse:
        from hashbert import __version__
        from hashbert.config import config_to_dict

        manifest, settings = self.retriever.manifest, self.settings
        facts = s.IndexFacts(
            model_kind=manifest.model_kind, n_bits=manifest.n_bits or None, pool_size=manifest.pool_size,
            bytes_per_response=manifest.bytes_per_response or None, is_hdr=bool(self.retriever.is_hdr),
        )
        limits = s.Limits(
            session_ttl_seconds=settings.session_ttl, max_sessions=settings.max_sessions,
            batch_window_ms=settings.batch_window_ms, max_batch=settings.max_batch,
        )
        return s.InfoResponse(index=facts, manifest=config_to_dict(manifest), limits=limits, version=__version__)

    def timings(self, selection: Any, route: str, started: float, extra_encode_ms: float = 0.0) -> s.Timings:
        """The selection's per-stage milliseconds (observed in the histograms) plus the request's total."""
        stages = {stage: float(selection.timings_ms.get(stage, 0.0)) for stage in STAGES}
        stages["encode"] += extra_encode_ms
        self.metrics.observe_stages(route, stages)
        return s.Timings(**stages, total=(time.perf_counter() - started) * 1000)

    def search_response(self, selection: Any, started: float, route: str) -> s.SearchResponse:
        return s.SearchResponse(candidates=_candidates(selection), timings_ms=self.timings(selection, route, started))

    def create_session(self) -> str:
        session_id = self.store.create()
        self.metrics.live_sessions.set(self.store.count())
        return session_id

    def session_out(self, session_id: str) -> s.SessionOut:
        session = self.store.get(session_id)
        turns = [s.TurnOut(index=turn.index, role=turn.role, text=turn.text) for turn in session.turns]
        return s.SessionOut(id=session.id, turns=turns)

    def delete_session(self, session_id: str) -> None:
        with self.store.session_lock(session_id):
            self.cache.drop(session_id)
            if not self.store.delete(session_id):
                raise UnknownSession(session_id)
        self.metrics.live_sessions.set(self.store.count())

    def add_turn(self, session_id: str, body: s.TurnRequest, started: float) -> s.TurnResponse:
        speaker = s.ROLE_SPEAKERS[body.role]
        result = self.turns.add_turn(session_id, body.role, speaker, body.text, self.clamp(body.k))
        turn = s.TurnOut(index=result.turn.index, role=result.turn.role, text=result.turn.text)
        route = "/v1/sessions/{session_id}/turns"
        timings = self.timings(result.selection, route, started, result.add_ms)
        return s.TurnResponse(turn=turn, candidates=_candidates(result.selection), timings_ms=timings)

    def render_metrics(self) -> tuple[bytes, str]:
        if self.store is not None:
            self.metrics.live_sessions.set(self.store.count())
        return self.metrics.render()


def _candidates(selection: Any) -> list[s.Candidate]:
    return [s.Candidate(id=int(c.id), text=c.text, score=float(c.score)) for c in selection.candidates]
