"""Session turns: commit one utterance with its cached state, in order, then select the next reply.

A live conversation (``Retriever.new_conversation()``) holds every utterance's cached state, so a new
turn encodes only the newest utterance. Conversations are rebuilt from the stored states
(``Conversation.restore``: nothing is re-encoded) and the last ones used stay in memory, keyed by
(session id, turn count): the next turn of a session finds its conversation without even restoring it,
and a stale one (another worker appended meanwhile) is never found, since its count no longer matches.

Ordering: a turn holds the store's ``session_lock`` from reading the session to selecting the candidates,
so two requests to one session in this process are applied one after the other, never interleaved; the
append names the index it expects, so a turn appended by another worker process in between is detected
(``SessionConflict``, nothing written) and the turn is redone from the stored session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hashbert.serving.sessions import Session, SessionConflict, SessionStore, Turn

logger = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 8


class ConversationCache:
    """A small LRU of live conversations keyed by (session id, turn count); thread-safe.

    ``take`` removes what it returns, so a conversation is used by one request at a time and a request that
    fails half-way (its conversation already holds the new utterance) leaves nothing stale behind.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._items: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def take(self, session_id: str, n_turns: int) -> Any | None:
        with self._lock:
            conversation = self._items.pop((session_id, n_turns), None)
            if conversation is None:
                self.misses += 1
            else:
                self.hits += 1
            return conversation

    def put(self, session_id: str, n_turns: int, conversation: Any) -> None:
        if self.max_size == 0:
            return
        with self._lock:
            for key in [key for key in self._items if key[0] == session_id]:
                del self._items[key]  # an older count of the same session is never wanted again
            self._items[(session_id, n_turns)] = conversation
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def drop(self, session_id: str) -> None:
        with self._lock:
            for key in [key for key in self._items if key[0] == session_id]:
                del self._items[key]

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class TurnResult:
    turn: Turn
    selection: Any  # the retriever's Selection for the reply after this turn
    add_ms: float  # encoding the new utterance (and waiting for the model thread)


class TurnTaker:
    """Adds turns to stored sessions and selects the next reply.

    Args:
        retriever: the loaded ``Retriever``.
        store: the ``SessionStore``.
        cache: the ``ConversationCache`` of this process.
        on_model_thread: ``call(func, *args)`` that runs model work on the model thread.
        add: ``add(conversation, utterance, speaker) -> state`` (micro-batched), called from this thread.
        select: ``select(conversation, k) -> Selection`` (micro-batched), called from this thread.
    """

    def __init__(
        self, retriever: Any, store: SessionStore, cache: ConversationCache,
        on_model_thread: Callable[..., Any], add: Callable[[Any, str, int], bytes], select: Callable[[Any, int], Any],
    ) -> None:
        self.retriever, self.store, self.cache = retriever, store, cache
        self._call, self._add, self._select = on_model_thread, add, select

    def add_turn(self, session_id: str, role: str, speaker: int, text: str, k: int) -> TurnResult:
        """Commit the turn (its state encoded from exactly the turns before it), then select k candidates.

        Raises:
            UnknownSession: the session does not exist or has expired.
        """
        with self.store.session_lock(session_id):
            for _ in range(MAX_CONFLICT_RETRIES):
                conversation, n_turns = self.live_conversation(session_id)
                start = time.perf_counter()
                state = self._add(conversation, text, speaker)
                add_ms = (time.perf_counter() - start) * 1000
                try:
                    turn = self.store.append(session_id, role, speaker, text, state, expected_index=n_turns)
                    break
                except SessionConflict:
                    logger.debug("session %s: another worker appended first; redoing the turn", session_id)
            else:
                start = time.perf_counter()
                turn, conversation = self._append_under_database_lock(session_id, role, speaker, text)
                add_ms = (time.perf_counter() - start) * 1000
            selection = self._select(conversation, k)
            self.cache.put(session_id, turn.index + 1, conversation)
        return TurnResult(turn, selection, add_ms)

    def live_conversation(self, session_id: str) -> tuple[Any, int]:
        """The live conversation after every stored turn of the session, and their number.

        The cache is asked with the stored turn count (one read, no states loaded); only a miss loads the
        session's turns and states and restores the conversation from them.
        """
        n_turns = self.store.next_turn(session_id)
        conversation = self.cache.take(session_id, n_turns)
        if conversation is not None:
            return conversation, n_turns
        session = self.store.get(session_id)
        return self.restored(session), len(session.turns)

    def restored(self, session: Session) -> Any:
        """The conversation of ``session``'s turns, rebuilt from their stored states (nothing encoded)."""
        from hashbert.serving.retriever import Conversation

        turns = [(turn.text, turn.speaker, turn.state) for turn in session.turns]
        return self._call(Conversation.restore, self.retriever, turns)

    def _append_under_database_lock(self, session_id: str, role: str, speaker: int, text: str) -> tuple[Turn, Any]:
        """The last resort under heavy cross-worker contention: encode inside the store's write transaction."""
        built: list[Any] = []

        def state(session: Session) -> bytes:
            cached = self.cache.take(session.id, len(session.turns))
            built[:] = [cached if cached is not None else self.restored(session)]
            return self._add(built[0], text, speaker)

        turn = self.store.append(session_id, role, speaker, text, state)
        return turn, built[0]
