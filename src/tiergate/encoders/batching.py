"""An encoder whose calls from concurrent callers are encoded together (``tiergate.batching``).

It is itself an :class:`~tiergate.encoders.Encoder` (thread-safe ``encode``), plus
``encode_async`` for asyncio callers, so a :class:`~tiergate.classifier.LocalModel` built on it
batches its encoder calls from many threads. (A serving process batches whole predictions
instead: ``tiergate.routing.runtime.BatchedViewer``.)

Results: a float32 ONNX or torch encoder masks padding, so a text's vector does not depend on
its batch-mates (identical in the tests). An int8 ONNX encoder quantises activations per batch,
so its vectors move slightly with the batch (``docs/local_tier.md`` gives the measured size).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from tiergate.batching import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_WAIT,
    Batched,
    BatcherClosedError,
    BatchStats,
)
from tiergate.encoders.base import Encoder, Vectors

__all__ = ["BatchStats", "BatcherClosedError", "MicroBatcher"]


class MicroBatcher:
    """Gathers concurrent ``encode`` calls into batches for one wrapped encoder."""

    def __init__(
        self,
        encoder: Encoder,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = DEFAULT_MAX_WAIT,
    ) -> None:
        self._encoder = encoder
        self._batched: Batched[Vectors] = Batched(
            lambda texts: encoder.encode(texts),
            max_batch=max_batch,
            max_wait=max_wait,
            name="tiergate-encoder",
        )

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
        return self._batched.call(texts)

    async def encode_async(self, texts: Sequence[str]) -> Vectors:
        """As :meth:`encode`, awaiting the result instead of blocking the event loop."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return await asyncio.wrap_future(self._batched.submit(texts))

    @property
    def stats(self) -> BatchStats:
        return self._batched.stats

    @property
    def waiting(self) -> int:
        return self._batched.waiting

    def close(self) -> None:
        self._batched.close()

    def __enter__(self) -> MicroBatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
