"""Micro-batching: requests that arrive together run as one batch through the model.

The first request of a batch waits at most ``max_wait`` seconds for others; up to
``max_batch`` run together in one call of the work function, on one worker thread (the
model is used by one thread at a time and the event loop stays free). When a batch fails,
its requests run one by one, so one bad input gets its own error and the others their
answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class BatchStats:
    requests: int = 0
    batches: int = 0
    largest: int = 0


class MicroBatcher(Generic[Item, Result]):
    """``await batcher.submit(item)`` -> that item's result from ``work(items)``."""

    def __init__(
        self,
        work: Callable[[Sequence[Item]], Sequence[Result]],
        max_batch: int,
        max_wait: float,
    ) -> None:
        self.work = work
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop_of_worker: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqlab-model")

    async def start(self) -> None:
        """Start the worker in the running event loop (again, if the loop changed)."""
        self._loop_of_worker = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, item: Item) -> Result:
        if self._queue is None or self._loop_of_worker is not asyncio.get_running_loop():
            await self.start()  # first use, or served from a new event loop
        assert self._queue is not None
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            items = [item for item, _ in batch]
            outcomes = await loop.run_in_executor(self._executor, self._run, items)
            self.stats.requests += len(items)
            self.stats.batches += 1
            self.stats.largest = max(self.stats.largest, len(items))
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the client went away
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _run(self, items: list[Item]) -> list[Any]:
        """Results of the batch, or of each item alone when the batch fails."""
        try:
            return list(self.work(items))
        except Exception as err:  # noqa: BLE001 - kept per item: retried one by one
            if len(items) == 1:
                return [err]
            return [self._one(item) for item in items]

    def _one(self, item: Item) -> Any:
        try:
            return self.work([item])[0]
        except Exception as err:  # noqa: BLE001 - handed to the request that caused it
            return err
