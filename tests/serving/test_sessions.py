"""The SQLite session store: round trips, ordered appends under thread and process concurrency, durability
across SIGKILL, TTL and LRU eviction, and the errors for files that are not session databases."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hashbert.serving.sessions import (
    SCHEMA_VERSION,
    Session,
    SessionConflict,
    SessionStore,
    Turn,
    UnknownSession,
)

WORKER = Path(__file__).with_name("session_worker.py")
ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    with SessionStore(tmp_path / "sessions.db") as opened:
        yield opened


def _count_state(session: Session) -> bytes:
    return str(len(session.turns)).encode()


def _start_workers(database: Path, session_id: str, names: list[str], count: int) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(database), session_id, name, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in names
    ]


def _check_per_writer_order(turns: list[Turn], names: list[str], count: int) -> None:
    """Indexes 0..n-1 without gaps, and each writer's turns ``name:0``, ``name:1``, ... in index order."""
    assert [turn.index for turn in turns] == list(range(len(names) * count))
    for name in names:
        mine = [turn.text for turn in turns if turn.text.startswith(f"{name}:")]
        assert mine == [f"{name}:{k}" for k in range(count)]


def test_round_trip_keeps_roles_speakers_and_state_bytes(tmp_path, store):
    every_byte = bytes(range(256)) * 3
    session_id = store.create()
    assert len(session_id) == 32 and store.count() == 1
    first = store.append(session_id, "user", 0, "hello there", every_byte)
    second = store.append(session_id, "bot", 1, "hi! \u00e9\u4e2d\x00end", b"")
    assert (first.index, second.index) == (0, 1)

    with SessionStore(tmp_path / "sessions.db") as reopened:
        session = reopened.get(session_id)
    assert session.id == session_id and session.created <= session.last_used
    assert session.turns == [first, second]
    assert session.turns[0] == Turn(0, "user", 0, "hello there", every_byte)
    assert type(session.turns[1].state) is bytes and session.turns[1].text == "hi! \u00e9\u4e2d\x00end"

    assert store.delete(session_id) is True
    assert store.delete(session_id) is False
    with pytest.raises(UnknownSession):
        store.get(session_id)
    assert store.count() == 0 and store.stats()["turns"] == 0


def test_database_runs_in_wal_mode_with_a_versioned_schema(tmp_path, store):
    store.create()
    with sqlite3.connect(tmp_path / "sessions.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta == {"kind": "hashbert-sessions", "schema_version": str(SCHEMA_VERSION)}


@pytest.mark.parametrize(
    ("role", "speaker", "text", "state"),
    [("system", 0, "x", b""), ("user", True, "x", b""), ("user", 0, b"x", b""), ("user", 0, "x", "not bytes")],
)
def test_append_refuses_bad_turns_and_writes_nothing(store, role, speaker, text, state):
    session_id = store.create()
    with pytest.raises(ValueError):
        store.append(session_id, role, speaker, text, state)
    with pytest.raises(ValueError, match="state must be bytes"):
        store.append(session_id, "user", 0, "x", lambda session: "a str")
    assert store.get(session_id).turns == []


def test_unknown_session_is_a_key_error(store):
    with pytest.raises(UnknownSession):
        store.get("0" * 32)
    with pytest.raises(KeyError):
        store.append("0" * 32, "user", 0, "hello", b"")
    assert store.delete("0" * 32) is False


def test_callable_state_sees_exactly_the_previous_turns(store):
    session_id = store.create()
    seen = []

    def state(session: Session) -> bytes:
        seen.append([(turn.index, turn.text) for turn in session.turns])
        return b"|".join(turn.text.encode() for turn in session.turns)

    for k in range(4):
        store.append(session_id, "user" if k % 2 == 0 else "bot", k % 2, f"t{k}", state)
    assert seen == [[(i, f"t{i}") for i in range(k)] for k in range(4)]
    assert store.get(session_id).turns[3].state == b"t0|t1|t2"


def test_a_failing_callable_state_rolls_the_turn_back(store):
    session_id = store.create()
    store.append(session_id, "user", 0, "kept", b"")

    def fail(session: Session) -> bytes:
        raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError, match="encoder failed"):
        store.append(session_id, "bot", 1, "lost", fail)
    assert store.append(session_id, "bot", 1, "next", b"").index == 1
    assert [turn.text for turn in store.get(session_id).turns] == ["kept", "next"]


def test_a_callable_state_must_not_use_the_store(store):
    session_id = store.create()
    with pytest.raises(RuntimeError, match="already writing"):
        store.append(session_id, "user", 0, "x", lambda session: store.get(session_id).turns and b"")
    assert store.get(session_id).turns == []


def test_threads_appending_to_one_session_lose_nothing_and_keep_order(store):
    n_threads, count = 16, 20
    session_id = store.create()
    start = threading.Barrier(n_threads)
    errors = []

    def writer(name: str) -> None:
        try:
            start.wait()
            for k in range(count):
                store.append(session_id, "user", 0, f"{name}:{k}", _count_state)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    turns = store.get(session_id).turns
    _check_per_writer_order(turns, [f"w{i}" for i in range(n_threads)], count)
    assert all(turn.state == str(turn.index).encode() for turn in turns)


def test_processes_appending_to_one_session_lose_nothing_and_keep_order(tmp_path):
    database, names, count = tmp_path / "sessions.db", [f"p{i}" for i in range(4)], 20
    with SessionStore(database) as store:
        session_id = store.create()
    workers = _start_workers(database, session_id, names, count)
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * len(names)
    assert all(len(output.split()) == count for output in outputs)

    with SessionStore(database) as store:
        turns = store.get(session_id).turns
    _check_per_writer_order(turns, names, count)
    assert all(turn.state == f"{turn.index}|{turn.text}".encode() for turn in turns)


def test_concurrent_byte_appends_share_commits_and_each_is_durable_and_ordered(tmp_path, store):
    n_threads, count = 12, 15
    sessions = [store.create() for _ in range(3)]
    start = threading.Barrier(n_threads)
    errors = []

    def writer(number: int) -> None:
        try:
            start.wait()
            for k in range(count):
                store.append(sessions[number % 3], "user", 0, f"w{number}:{k}", f"{number}/{k}".encode())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert max(store._commits.round_sizes) > 1  # some appends shared one transaction (one fsync)
    with SessionStore(tmp_path / "sessions.db") as other:  # another connection sees every acknowledged turn
        for number, session_id in enumerate(sessions):
            turns = other.get(session_id).turns
            writers = [f"w{i}" for i in range(number, n_threads, 3)]
            _check_per_writer_order(turns, writers, count)
            assert all(turn.state == turn.text.replace("w", "").replace(":", "/").encode() for turn in turns)
            assert other.next_turn(session_id) == len(turns)


def test_a_conflict_in_a_shared_commit_fails_only_its_own_append(store):
    first, second = store.create(), store.create()
    results = store._append_round([
        (first, Turn(-1, "user", 0, "ok", b""), b"a", 0),
        (second, Turn(-1, "user", 0, "stale", b""), b"b", 3),
        ("no-such-session", Turn(-1, "user", 0, "lost", b""), b"c", None),
        (first, Turn(-1, "bot", 1, "next", b""), b"d", 1),
    ])
    assert [turn.index for turn in (results[0], results[3])] == [0, 1] and results[2] is None
    assert isinstance(results[1], SessionConflict)
    assert [turn.text for turn in store.get(first).turns] == ["ok", "next"] and store.get(second).turns == []


def test_next_turn_is_a_read_that_knows_expiry(tmp_path):
    clock = FakeClock()
    with SessionStore(tmp_path / "s.db", ttl_seconds=10, clock=clock) as store:
        session_id = store.create()
        store.append(session_id, "user", 0, "hi", b"")
        clock.now += 9
        assert store.next_turn(session_id) == 1
        clock.now += 2  # next_turn touched nothing: the session expires 10 s after the append
        with pytest.raises(UnknownSession):
            store.next_turn(session_id)
    with pytest.raises(UnknownSession):
        store.next_turn("nope")


def test_session_lock_with_expected_index_serialises_slow_work(store):
    session_id = store.create()
    conflicts = []

    def writer(name: str) -> None:
        for k in range(10):
            with store.session_lock(session_id):
                session = store.get(session_id)
                state = str(len(session.turns)).encode()  # the slow encoding, outside the database lock
                try:
                    store.append(session_id, "user", 0, f"{name}:{k}", state, expected_index=len(session.turns))
                except SessionConflict as exc:
                    conflicts.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert conflicts == []
    turns = store.get(session_id).turns
    _check_per_writer_order(turns, [f"w{i}" for i in range(6)], 10)
    assert all(turn.state == str(turn.index).encode() for turn in turns)
    assert store._session_locks == {}


def test_expected_index_refuses_a_stale_append(store):
    session_id = store.create()
    store.append(session_id, "user", 0, "first", b"")
    with pytest.raises(SessionConflict, match="expected next turn 0, it is 1"):
        store.append(session_id, "bot", 1, "stale", b"", expected_index=0)
    assert store.append(session_id, "bot", 1, "fresh", b"", expected_index=1).index == 1


def test_sigkill_keeps_every_acknowledged_turn(tmp_path):
    database, acknowledged = tmp_path / "sessions.db", []
    with SessionStore(database) as store:
        session_id = store.create()
    (worker,) = _start_workers(database, session_id, ["kill"], 0)
    worker.stdin.write("go\n")
    worker.stdin.flush()
    while len(acknowledged) < 25:
        line = worker.stdout.readline()
        assert line, "the worker exited early"
        acknowledged.append(int(line))
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL

    with SessionStore(database) as store:
        turns = store.get(session_id).turns
    assert acknowledged == list(range(25)) and len(turns) >= len(acknowledged)
    assert [turn.index for turn in turns] == list(range(len(turns)))
    for index in acknowledged:
        assert (turns[index].text, turns[index].state) == (f"kill:{index}", f"{index}|kill:{index}".encode())


def test_sessions_expire_after_the_ttl_unless_used(tmp_path):
    clock = FakeClock()
    with SessionStore(tmp_path / "sessions.db", ttl_seconds=10, clock=clock) as store:
        kept, dropped = store.create(), store.create()
        store.append(dropped, "user", 0, "soon gone", b"x")
        clock.now += 9
        store.get(kept)  # touching it restarts its ttl
        clock.now += 2
        assert store.count() == 1
        with pytest.raises(UnknownSession):
            store.append(dropped, "user", 0, "too late", b"")
        assert store.stats()["turns"] == 0  # deleted when met
        assert store.get(kept).turns == []
        clock.now += 10
        assert store.count() == 0 and store.evict() == 1
        with pytest.raises(UnknownSession):
            store.get(kept)


def test_expiry_with_a_real_clock(tmp_path):
    with SessionStore(tmp_path / "sessions.db", ttl_seconds=0.05) as store:
        session_id = store.create()
        threading.Event().wait(0.1)
        with pytest.raises(UnknownSession):
            store.get(session_id)


def test_create_evicts_the_least_recently_used_beyond_the_cap(tmp_path):
    clock = FakeClock()
    with SessionStore(tmp_path / "sessions.db", max_sessions=3, clock=clock) as store:
        ids = []
        for _ in range(3):
            ids.append(store.create())
            clock.now += 1
        store.append(ids[0], "user", 0, "recent", b"")  # ids[1] is now the least recently used
        clock.now += 1
        newest = store.create()
        assert store.count() == 3
        with pytest.raises(UnknownSession):
            store.get(ids[1])
        assert [len(store.get(i).turns) for i in (ids[0], ids[2], newest)] == [1, 0, 0]


def test_stats_counts_sessions_turns_and_bytes(store):
    for _ in range(2):
        session_id = store.create()
        store.append(session_id, "user", 0, "hello", b"\x01" * 1000)
    stats = store.stats()
    assert stats["sessions"] == 2 and stats["turns"] == 2 and stats["database_bytes"] > 2000


def test_a_file_that_is_not_sqlite_is_refused_with_its_path(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database, just some text long enough to fill a header" * 20)
    with pytest.raises(ValueError, match="not a hashbert session database") as caught:
        SessionStore(path)
    assert str(path) in str(caught.value)


def test_another_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(ValueError, match=f"{path}: not a hashbert session database .*people"):
        SessionStore(path)


def test_a_newer_schema_version_names_both_versions(tmp_path):
    path = tmp_path / "sessions.db"
    SessionStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(ValueError, match=f"version {SCHEMA_VERSION + 1} .*version {SCHEMA_VERSION}"):
        SessionStore(path)


def test_bad_limits_are_refused(tmp_path):
    with pytest.raises(ValueError, match="ttl_seconds"):
        SessionStore(tmp_path / "a.db", ttl_seconds=0)
    with pytest.raises(ValueError, match="max_sessions"):
        SessionStore(tmp_path / "a.db", max_sessions=0)
