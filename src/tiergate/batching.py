"""Micro-batching: texts from concurrent callers handled together in one call.

Why: a transformer encodes 64 short texts in far less than 64 times the time of one (one matrix
product per layer instead of 64 small ones), and so does a whole local-model prediction
(encoder, linear model, neighbour search); a gateway under load has many requests in flight at
once. :class:`Batched` wraps a function of a list of texts: each caller hands in its texts and
waits; one worker thread takes everything waiting (up to ``max_batch`` texts), waits at most
``max_wait`` seconds for more when the batch is not full, calls the function once and hands each
caller its own slice of the result, in its own order. Texts that arrive while a batch is running
join the next one, so under load batches fill without any added wait.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_WAIT = 0.002  # seconds a non-full batch waits for company


Result = TypeVar("Result")


@dataclass
class _Request(Generic[Result]):
    texts: list[str]
    future: Future[Result] = field(default_factory=Future)


@dataclass(frozen=True, slots=True)
class BatchStats:
    batches: int
    texts: int

    @property
    def mean_batch(self) -> float:
        return self.texts / self.batches if self.batches else 0.0


class BatcherClosedError(RuntimeError):
    """A call on a batcher that has been closed."""


class Batched(Generic[Result]):
    """Gathers concurrent calls of ``function`` (texts -> one result row per text, sliceable)
    into batches run on one worker thread."""

    def __init__(
        self,
        function: Callable[[list[str]], Result],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = DEFAULT_MAX_WAIT,
        name: str = "tiergate-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0 seconds")
        self._function = function
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._pending: deque[_Request[Result]] = deque()
        self._condition = threading.Condition()
        self._closed = False
        self._batches = 0
        self._texts = 0
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    def call(self, texts: Sequence[str]) -> Result:
        """The function's result for ``texts``, from whatever batch they join; blocks."""
        return self.submit(texts).result()

    async def call_async(self, texts: Sequence[str]) -> Result:
        """As :meth:`call`, awaiting the result instead of blocking the event loop."""
        return await asyncio.wrap_future(self.submit(texts))

    @property
    def stats(self) -> BatchStats:
        with self._condition:
            return BatchStats(self._batches, self._texts)

    @property
    def waiting(self) -> int:
        """Texts queued and not yet taken into a batch."""
        with self._condition:
            return self._count()

    def close(self) -> None:
        """Finish what is queued, then stop the worker; later calls raise."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._worker.join()

    def submit(self, texts: Sequence[str]) -> Future[Result]:
        request: _Request[Result] = _Request(list(texts))
        with self._condition:
            if self._closed:
                raise BatcherClosedError("the batcher is closed")
            self._pending.append(request)
            self._condition.notify_all()
        return request.future

    def _take_batch(self) -> list[_Request[Result]]:
        """Block for the first request, then gather more until full or the wait is over."""
        with self._condition:
            while not self._pending and not self._closed:
                self._condition.wait()
            if not self._pending:
                return []
            deadline = time.monotonic() + self._max_wait
            while self._count() < self._max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._condition.wait(left)
            batch = [self._pending.popleft()]
            size = len(batch[0].texts)
            # A request never splits; one larger than max_batch goes alone.
            while self._pending and size + len(self._pending[0].texts) <= self._max_batch:
                request = self._pending.popleft()
                batch.append(request)
                size += len(request.texts)
            return batch

    def _count(self) -> int:
        return sum(len(request.texts) for request in self._pending)

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            texts = [text for request in batch for text in request.texts]
            try:
                results = self._function(texts)
            except BaseException as error:  # every waiting caller must hear of it
                for request in batch:
                    request.future.set_exception(error)
                continue
            with self._condition:
                self._batches += 1
                self._texts += len(texts)
            start = 0
            for request in batch:
                end = start + len(request.texts)
                request.future.set_result(results[start:end])  # type: ignore[index]
                start = end
