"""A SQLite store of multi-turn conversations that outlives the process: one database, many workers.

Tables (``_SCHEMA``, versioned in ``meta``): ``sessions`` (uuid4 hex ids) and ``turns``, indexed 0, 1, 2, ...
per session without gaps; a turn's ``state`` is opaque bytes (an HDR model's cached vectors, or empty).

Durability: WAL mode with ``synchronous=FULL`` fsyncs every transaction before ``COMMIT`` returns, and every
public write commits before it returns: a turn that ``append`` returned (so the service acknowledged it)
survives ``kill -9`` and, as far as SQLite and the disk promise, power loss. Appends of concurrent threads
share transactions (``GroupCommit``): one fsync makes a whole round of them durable.

Locking protocol:

* Every write (``create``, ``get``, which touches ``last_used``, ``append``, ``delete``, ``evict``) is one
  ``BEGIN IMMEDIATE`` transaction: it takes SQLite's write lock first, so an append's read-next-index, insert
  and update happen under one lock held across threads *and* processes; concurrent appends to a session get
  consecutive indexes, none is lost and none interleaves. Writers of other processes wait in SQLite's busy
  handler (``busy_timeout_s``); writers of this process queue on a ``threading.Lock`` instead of polling.
  Readers (``next_turn``, ``count``, ``stats``) never block in WAL mode.
* ``append(..., state=callable)`` calls ``state(session)`` *inside* that transaction with the session as
  committed so far, so the new turn's state is computed from exactly the previous turns. The callable holds
  the database write lock (every writer of every worker waits): keep it short; it must not use the store.
* ``session_lock(session_id)`` is an in-process lock per session, for work too slow for the database lock
  (encoding an utterance)::

      with store.session_lock(sid):
          session = store.get(sid)
          state = encode(session, text)                     # no database lock held
          store.append(sid, "user", 0, text, state, expected_index=len(session.turns))

  It serialises the threads of one process; another worker process may still append between ``get`` and
  ``append``, which ``expected_index`` turns into ``SessionConflict`` (nothing written) rather than a state
  computed from stale turns: retry, or fall back to a callable state.

Sessions unused for ``ttl_seconds`` are expired: treated as unknown everywhere, deleted lazily when met and
by ``evict()``. ``create`` deletes expired sessions and then, beyond ``max_sessions``, the least recently
used ones, in its own transaction. Connections are per thread (and per process: one inherited through
``fork`` is never used).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from hashbert.serving.group_commit import GroupCommit
from hashbert.serving.session_schema import EVICT_LEAST_RECENT, SCHEMA_VERSION, create_or_check_schema

logger = logging.getLogger(__name__)

ROLES = ("user", "bot")
__all__ = ["ROLES", "SCHEMA_VERSION", "Session", "SessionConflict", "SessionStore", "Turn", "UnknownSession"]

class UnknownSession(KeyError):
    """No live session has this id: it never existed, was deleted, evicted or has expired."""


class SessionConflict(RuntimeError):
    """``append(..., expected_index=i)`` found another next index: someone appended in between."""


@dataclass(frozen=True)
class Turn:
    """One utterance of a session; ``state`` is the caller's opaque bytes for it (maybe empty)."""

    index: int
    role: str
    speaker: int
    text: str
    state: bytes

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if isinstance(self.speaker, bool) or not isinstance(self.speaker, int):
            raise ValueError(f"speaker must be an int, got {self.speaker!r}")
        if not isinstance(self.text, str):
            raise ValueError(f"text must be a str, got {type(self.text).__name__}")
        _as_bytes(self.state, "state")


@dataclass(frozen=True)
class Session:
    """A conversation and its turns in order (``turns[i].index == i``)."""

    id: str
    created: float
    last_used: float
    turns: list[Turn]


StateArg = bytes | Callable[[Session], bytes]


class SessionStore:
    """Sessions and turns in one SQLite database, safe for several threads and processes.

    Args:
        path: the database file; created (with its schema) if missing or empty.
        ttl_seconds: a session unused this long is expired (``float("inf")``: never).
        max_sessions: ``create`` evicts least recently used sessions beyond this many.
        clock: seconds now; every process sharing a database must use the same clock.
        busy_timeout_s: how long a write waits for another process's lock (then ``sqlite3.OperationalError``).

    Raises:
        ValueError: ``path`` is not a hashbert session database, or its schema is newer than this code.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        ttl_seconds: float = 3600,
        max_sessions: int = 10000,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = 30.0,
    ) -> None:
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds!r}")
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"max_sessions must be an int >= 1, got {max_sessions!r}")
        self.path = Path(path)
        self.ttl_seconds = ttl_seconds
        self.max_sessions = max_sessions
        self._clock = clock
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._commits = GroupCommit(self._append_round)  # appends of concurrent threads share one fsync
        self._connections: list[tuple[int, sqlite3.Connection]] = []
        self._session_locks: dict[str, list] = {}  # id -> [Lock, number of holders and waiters]
        self._guard = threading.Lock()  # of the two above
        self._initialize()

    def create(self) -> str:
        """A new empty session's id (uuid4 hex); first evicts expired and, at the cap, least recently used."""
        session_id = uuid.uuid4().hex
        with self._write() as conn:
            now = self._clock()
            removed = self._delete_expired(conn, now)
            removed += conn.execute(EVICT_LEAST_RECENT, (self.max_sessions,)).rowcount
            conn.execute(
                "INSERT INTO sessions (id, created, last_used, next_turn) VALUES (?, ?, ?, 0)",
                (session_id, now, now),
            )
        if removed:
            logger.debug("evicted %d session(s) while creating %s", removed, session_id)
        return session_id

    def get(self, session_id: str) -> Session:
        """The session with all its turns, touching ``last_used``; ``UnknownSession`` if unknown or expired."""
        with self._write() as conn:
            session = self._load(conn, session_id, self._clock())
        if session is None:
            raise UnknownSession(session_id)
        return session

    def append(
        self,
        session_id: str,
        role: str,
        speaker: int,
        text: str,
        state: StateArg = b"",
        *,
        expected_index: int | None = None,
    ) -> Turn:
        """Append one turn at the session's next index, atomically; it is committed when this returns it.

        Args:
            session_id: a live session.
            role: ``"user"`` or ``"bot"``.
            speaker: the speaker's number (an int; the HDR models use 0 and 1).
            text: the utterance.
            state: bytes stored with the turn, or ``state(session) -> bytes`` called inside the write
                transaction with the session as it is before this turn. The callable holds the database
                write lock while it runs (every writer of every process waits) and must not use the store.
            expected_index: if given, the index this turn must get (else ``SessionConflict``, nothing written).

        Raises:
            UnknownSession: no such session, or it has expired.
            SessionConflict: ``expected_index`` is not the session's next index.
            ValueError: a bad role, speaker, text or state (or a callable's result that is not bytes).
        """
        draft = Turn(-1, role, speaker, text, b"")
        if callable(state):
            turn = self._append_locked(session_id, draft, state, expected_index)
        else:
            turn = self._commits.submit((session_id, draft, _as_bytes(state, "state"), expected_index))
        if turn is None:
            raise UnknownSession(session_id)
        return turn

    def next_turn(self, session_id: str) -> int:
        """The index the session's next turn gets (a read: no transaction, nothing touched).

        Raises:
            UnknownSession: no such session, or it has expired.
        """
        row = self._connection().execute(
            "SELECT last_used, next_turn FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if row is None or row[0] <= self._cutoff(self._clock()):
            raise UnknownSession(session_id)
        return row[1]

    def delete(self, session_id: str) -> bool:
        """Delete a session and its turns; True if it was live (an expired one is deleted but gives False)."""
        with self._write() as conn:
            row = conn.execute("SELECT last_used FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            return row[0] > self._cutoff(self._clock())

    def evict(self) -> int:
        """Delete every expired session with its turns; returns how many were deleted."""
        with self._write() as conn:
            removed = self._delete_expired(conn, self._clock())
        if removed:
            logger.debug("evicted %d expired session(s)", removed)
        return removed

    def count(self) -> int:
        """The number of live (not expired) sessions."""
        cutoff = self._cutoff(self._clock())
        return self._connection().execute("SELECT COUNT(*) FROM sessions WHERE last_used > ?", (cutoff,)).fetchone()[0]

    def stats(self) -> dict[str, int]:
        """Gauges: ``sessions`` (live), ``turns`` (stored) and ``database_bytes`` (database + WAL on disk)."""
        (turns,) = self._connection().execute("SELECT COUNT(*) FROM turns").fetchone()
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        size = sum(file.stat().st_size for file in files if file.exists())
        return {"sessions": self.count(), "turns": turns, "database_bytes": size}

    @contextmanager
    def session_lock(self, session_id: str) -> Iterator[None]:
        """Hold an in-process lock for one session (threads of this process only; see the module docstring)."""
        with self._guard:
            entry = self._session_locks.setdefault(session_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._session_locks[session_id]

    def close(self) -> None:
        """Close every connection this process opened; the store reopens one on next use."""
        with self._guard:
            mine = [conn for pid, conn in self._connections if pid == os.getpid()]
            self._connections = [(pid, conn) for pid, conn in self._connections if pid != os.getpid()]
        for conn in mine:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _append_locked(self, session_id: str, draft: Turn, state: StateArg, expected: int | None) -> Turn | None:
        """``append``'s transaction of its own (a callable state runs inside it)."""
        with self._write() as conn:
            return self._insert(conn, self._clock(), session_id, draft, state, expected)

    def _append_round(self, appends: list[tuple[str, Turn, bytes, int | None]]) -> list[Turn | None | Exception]:
        """One transaction for a group commit's appends; a conflict fails its own append only."""
        results: list[Turn | None | Exception] = []
        with self._write() as conn:
            now = self._clock()
            for session_id, draft, state, expected in appends:
                try:
                    results.append(self._insert(conn, now, session_id, draft, state, expected))
                except (SessionConflict, ValueError) as err:  # raised before this append wrote anything
                    results.append(err)
        return results

    def _insert(
        self, conn: sqlite3.Connection, now: float, session_id: str, draft: Turn, state: StateArg, expected: int | None
    ) -> Turn | None:
        """``draft`` stored at the session's next index with its state; None for an unknown session."""
        session = self._load(conn, session_id, now) if callable(state) else None
        index = len(session.turns) if session else self._live_next_index(conn, session_id, now)
        if index is None:
            return None
        if expected is not None and expected != index:
            raise SessionConflict(f"session {session_id}: expected next turn {expected}, it is {index}")
        turn = replace(draft, index=index, state=_as_bytes(state(session) if session else state, "state"))
        conn.execute(
            "INSERT INTO turns (session_id, turn_index, role, speaker, text, state, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, index, turn.role, turn.speaker, turn.text, turn.state, now),
        )
        conn.execute("UPDATE sessions SET next_turn = ?, last_used = ? WHERE id = ?", (index + 1, now, session_id))
        return turn

    def _live_next_index(self, conn: sqlite3.Connection, session_id: str, now: float) -> int | None:
        """The next turn index of a live session (touching it), or None; an expired one is deleted."""
        row = conn.execute("SELECT last_used, next_turn FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            return None
        if row[0] <= self._cutoff(now):
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            return None
        conn.execute("UPDATE sessions SET last_used = ? WHERE id = ?", (now, session_id))
        return row[1]

    def _load(self, conn: sqlite3.Connection, session_id: str, now: float) -> Session | None:
        """The live session with its turns (touching it), or None; an expired one is deleted."""
        if self._live_next_index(conn, session_id, now) is None:
            return None
        (created,) = conn.execute("SELECT created FROM sessions WHERE id = ?", (session_id,)).fetchone()
        rows = conn.execute(
            "SELECT turn_index, role, speaker, text, state FROM turns WHERE session_id = ? ORDER BY turn_index",
            (session_id,),
        ).fetchall()
        return Session(session_id, created, now, [Turn(i, r, s, t, bytes(b)) for i, r, s, t, b in rows])

    def _cutoff(self, now: float) -> float:
        """Sessions last used at or before this time are expired."""
        return now - self.ttl_seconds

    def _delete_expired(self, conn: sqlite3.Connection, now: float) -> int:
        return conn.execute("DELETE FROM sessions WHERE last_used <= ?", (self._cutoff(now),)).rowcount

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed when the block ends, rolled back if it raises."""
        if getattr(self._local, "writing", False):
            raise RuntimeError("the session store is already writing on this thread (a callable state used it)")
        conn = self._connection()
        with self._write_lock:
            self._local.writing = True
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._local.writing = False

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (never one inherited from a parent process)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = self._open()
            self._local.conn, self._local.pid, self._local.writing = conn, os.getpid(), False
            with self._guard:
                self._connections.append((os.getpid(), conn))
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _initialize(self) -> None:
        """Switch to WAL and create or check the schema; a file that is no session database raises ValueError."""
        try:
            conn = self._connection()
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode.lower() != "wal":
                raise ValueError(f"{self.path}: a session database needs a file that supports WAL, got {mode}")
            with self._write() as conn:
                create_or_check_schema(conn, self.path)
        except sqlite3.OperationalError:
            raise  # locked, unreadable, missing directory: not a statement about the file's contents
        except (sqlite3.DatabaseError, ValueError) as exc:
            self.close()
            if isinstance(exc, ValueError):
                raise
            raise ValueError(f"{self.path}: not a hashbert session database ({exc})") from exc


def _as_bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)
