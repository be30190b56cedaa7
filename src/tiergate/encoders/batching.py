"""Micro-batching: texts from concurrent callers encoded together in one encoder call.

Why: a transformer encodes 64 short texts in far less than 64 times the time of one (one
matrix product per layer instead of 64 small ones), and a gateway under load has many requests
in flight at once. ``MicroBatcher`` wraps any encoder: each caller hands in its texts and
waits; one worker thread takes everything waiting (up to ``max_batch`` texts), waits at most
``max_wait`` seconds for more when the batch is not full, encodes it in one call and hands
each caller its own rows, in its own order. Texts that arrive while a batch is running simply
join the next one, so under load batches fill without any added wait.

It is itself an :class:`~tiergate.encoders.Encoder` (thread-safe ``encode``), plus
``encode_async`` for asyncio callers, so a :class:`~tiergate.classifier.LocalModel` built on it
batches its ``predict`` calls from many threads.

Results: a float32 ONNX or torch encoder masks padding, so a text's vector does not depend on
its batch-mates (identical in the tests). An int8 ONNX encoder quantises activations per batch,
so its vectors move slightly with the batch (``docs/local_tier.md`` gives the measured size).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from tiergate.encoders.base import Encoder, Vectors

DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_WAIT = 0.002  # seconds a non-full batch waits for company


@dataclass
class _Request:
    texts: list[str]
    future: Future[Vectors] = field(default_factory=Future)


@dataclass(frozen=True, slots=True)
class BatchStats:
    batches: int
    texts: int

    @property
    def mean_batch(self) -> float:
        return self.texts / self.batches if self.batches else 0.0


class BatcherClosedError(RuntimeError):
    """``encode`` was called on a batcher that has been closed."""


class MicroBatcher:
    """Gathers concurrent ``encode`` calls into batches for one wrapped encoder."""

    def __init__(
        self,
        encoder: Encoder,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = DEFAULT_MAX_WAIT,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0 seconds")
        self._encoder = encoder
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._pending: deque[_Request] = deque()
        self._condition = threading.Condition()
        self._closed = False
        self._batches = 0
        self._texts = 0
        self._worker = threading.Thread(target=self._run, name="tiergate-encoder", daemon=True)
        self._worker.start()

    # -- the Encoder protocol ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._encoder.name

    @property
    def dimension(self) -> int:
        return self._encoder.dimension

    @property
    def encoder(self) -> Encoder:
        return self._encoder

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Encode ``texts`` in whatever batch the worker forms; blocks the calling thread."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._submit(texts).result()

    async def encode_async(self, texts: Sequence[str]) -> Vectors:
        """As :meth:`encode`, awaiting the result instead of blocking the event loop."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return await asyncio.wrap_future(self._submit(texts))

    # -- lifecycle -----------------------------------------------------------------------

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

    def __enter__(self) -> MicroBatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the worker ----------------------------------------------------------------------

    def _submit(self, texts: Sequence[str]) -> Future[Vectors]:
        request = _Request(list(texts))
        with self._condition:
            if self._closed:
                raise BatcherClosedError("the encoder batcher is closed")
            self._pending.append(request)
            self._condition.notify_all()
        return request.future

    def _take_batch(self) -> list[_Request]:
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
            # A request never splits; one larger than max_batch goes alone (the encoder chunks).
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
                vectors = self._encoder.encode(texts)
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
                request.future.set_result(vectors[start:end])
                start = end
