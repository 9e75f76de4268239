"""Micro-batching: concurrent requests are collected for a few milliseconds and run as one forward pass.

One asyncio queue and one consumer task: the consumer takes the first waiting request, keeps collecting
until ``window_ms`` has passed since it or ``max_batch`` are waiting, groups the batch by kind (e.g. the
newest utterances of live conversations, or selections) and runs each group through ``run_batch`` on a
single model thread; each request's future gets its own result. While a batch runs the next requests
queue up, so a busy server batches more without waiting longer.

Everything that touches the model (``call``: anything not batched, e.g. restoring a conversation) runs on
that same thread, so the model is never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
BatchFn = Callable[[str, list[Any]], Sequence[Any]]


@dataclass
class _Request:
    kind: str
    item: Any
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Collect concurrent requests and run them in batches on one model thread.

    Args:
        run_batch: ``run_batch(kind, items) -> results``, one per item, in order; a result that is an
            ``Exception`` fails that request alone. It runs on the model thread.
        window_ms: how long the first request of a batch waits for company.
        max_batch: a batch closes as soon as this many requests are waiting.
    """

    def __init__(self, run_batch: BatchFn, window_ms: float, max_batch: int):
        if window_ms < 0 or max_batch < 1:
            raise ValueError(f"need window_ms >= 0 and max_batch >= 1, got {window_ms!r} and {max_batch!r}")
        self._run_batch = run_batch
        self._window_s, self._max_batch = window_ms / 1000, max_batch
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hashbert-model")
        self._queue: asyncio.Queue[_Request] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self.batch_sizes: list[int] = []  # the last batches' sizes, for tests and logs (bounded)

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the consumer on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = self._loop.create_task(self._consume(), name="hashbert-micro-batcher")

    async def stop(self) -> None:
        """Stop collecting, fail whatever still waits, and let the model thread finish its batch."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while self._queue is not None and not self._queue.empty():
            request = self._queue.get_nowait()
            if not request.future.done():
                request.future.set_exception(RuntimeError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    # -- submitting ---------------------------------------------------------------------------------------------

    async def submit(self, kind: str, item: Any) -> Any:
        """The result for one item, computed in a batch with whatever else of its kind arrives meanwhile."""
        if self._queue is None:
            raise RuntimeError("the micro-batcher is not started")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(kind, item, future))
        return await future

    def submit_blocking(self, kind: str, item: Any) -> Any:
        """``submit`` from a worker thread (not the event loop's): blocks until the batch has run."""
        if self._loop is None:
            raise RuntimeError("the micro-batcher is not started")
        return asyncio.run_coroutine_threadsafe(self.submit(kind, item), self._loop).result()

    def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` on the model thread (between batches) and wait for its result."""
        return self._executor.submit(func, *args).result()

    # -- the consumer ---------------------------------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._queue is not None and self._loop is not None  # set together by start()
        while True:
            batch = [await self._queue.get()]
            deadline = self._loop.time() + self._window_s
            while len(batch) < self._max_batch:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            self.batch_sizes = [*self.batch_sizes[-99:], len(batch)]
            for kind in dict.fromkeys(request.kind for request in batch):
                await self._run_group([request for request in batch if request.kind == kind])

    async def _run_group(self, requests: list[_Request]) -> None:
        """One forward pass for requests of one kind; every future gets its result or the error."""
        live = [request for request in requests if not request.future.cancelled()]
        if not live:
            return
        try:
            results = await self._loop.run_in_executor(
                self._executor, self._run_batch, live[0].kind, [request.item for request in live]
            )
        except Exception as err:  # one bad batch must not stop the consumer
            logger.exception("a batch of %d %s selections failed", len(live), live[0].kind)
            for request in live:
                if not request.future.done():
                    request.future.set_exception(err)
            return
        for request, result in zip(live, results, strict=True):
            if request.future.done():
                continue
            if isinstance(result, Exception):
                request.future.set_exception(result)
            else:
                request.future.set_result(result)
