"""Group commit: writes that arrive while one transaction is being made durable share the next transaction.

A durable commit costs one fsync (about 15 ms on this project's CI disk), whatever it holds. Threads that
each commit their own turn therefore queue behind each other's fsyncs, and a busy server's turns per second
are capped by the disk. As databases do, the first waiting thread becomes the leader: it takes every write
waiting at that moment, applies them in one transaction, and hands each writer its own result; writes that
arrive meanwhile wait for the next round. Nothing waits for company: a lone write commits at once, so an
idle server's latency is unchanged, and an acknowledged write is always durable (it was in a committed
transaction before its writer was answered).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# run(items) -> one result per item, in order; an Exception result fails that item alone. If ``run`` raises,
# every item of the round fails with that error (its transaction was rolled back).
RunFn = Callable[[list[Any]], list[Any]]


@dataclass
class _Waiter(Generic[T]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None


class GroupCommit:
    """Apply concurrent writes in shared transactions.

    Args:
        run: ``run(items) -> results``: one transaction holding every item (see ``RunFn``).
    """

    def __init__(self, run: RunFn) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._leading = False
        self.round_sizes: list[int] = []  # the last rounds' sizes, for tests and logs (bounded)

    def submit(self, item: Any) -> Any:
        """Apply ``item`` in the next transaction and return its result (or raise its error)."""
        waiter = _Waiter(item)
        with self._lock:
            self._waiting.append(waiter)
            lead = not self._leading
            self._leading = self._leading or lead
        if lead:
            self._lead()
        waiter.done.wait()
        if isinstance(waiter.result, BaseException):
            raise waiter.result
        return waiter.result

    def _lead(self) -> None:
        """Run rounds until nothing waits; then the next writer leads."""
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._leading = False
                    return
            self.round_sizes = [*self.round_sizes[-99:], len(batch)]
            try:
                results = self._run([waiter.item for waiter in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"a group commit of {len(batch)} writes gave {len(results)} results")
            except Exception as err:  # the round's transaction was rolled back: each of its writers hears why
                results = [err] * len(batch)
            for waiter, result in zip(batch, results, strict=True):
                waiter.result = result
                waiter.done.set()
