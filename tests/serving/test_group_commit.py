"""GroupCommit: concurrent writes share rounds, each writer gets its own result or error, a failed round fails
all of its writers, and a lone write runs at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hashbert.serving.group_commit import GroupCommit


class SlowLog:
    """A 'transaction' that takes 20 ms (like an fsync) and records what each round held."""

    def __init__(self) -> None:
        self.rounds: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[object]:
        time.sleep(0.02)
        self.rounds.append(list(items))
        return [ValueError(f"odd {item}") if item % 2 else item * 10 for item in items]


def test_writers_that_arrive_during_a_round_share_the_next_one():
    log = SlowLog()
    commits = GroupCommit(log)

    def write(item: int) -> object:
        try:
            return commits.submit(item)
        except ValueError as err:
            return str(err)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(write, range(64)))
    assert results == [f"odd {i}" if i % 2 else i * 10 for i in range(64)]  # each writer got its own result
    assert sorted(item for round_ in log.rounds for item in round_) == list(range(64))  # each item once
    assert len(log.rounds) < 64 and max(commits.round_sizes) > 1


def test_a_lone_write_commits_at_once():
    log = SlowLog()
    commits = GroupCommit(log)
    started = time.perf_counter()
    assert commits.submit(4) == 40
    assert time.perf_counter() - started < 1.0 and log.rounds == [[4]]


def test_a_failed_round_fails_every_writer_and_the_next_round_still_runs():
    calls = []
    gate = threading.Event()

    def run(items: list[str]) -> list[str]:
        calls.append(list(items))
        if items == ["first"]:
            gate.wait(5)  # hold the first round while the others queue up behind it
            return ["ok"]
        if "boom" in items:
            raise OSError("disk full")
        return items

    commits = GroupCommit(run)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(commits.submit, "first")
        while not calls:
            time.sleep(0.001)
        queued = [pool.submit(commits.submit, item) for item in ("boom", "other")]
        while len(commits._waiting) < 2:
            time.sleep(0.001)
        gate.set()
        assert first.result(5) == "ok"
        for future in queued:
            with pytest.raises(OSError, match="disk full"):
                future.result(5)
    assert calls == [["first"], ["boom", "other"]]
    assert commits.submit("later") == "later"


def test_a_run_that_miscounts_its_results_fails_its_writers():
    commits = GroupCommit(lambda items: [])
    with pytest.raises(RuntimeError, match="1 writes gave 0 results"):
        commits.submit("x")
