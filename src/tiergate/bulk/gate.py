"""Keeps each Claude model busy up to its rate limits, and no further.

Each call waits for room in the model's request, input-token and
output-token buckets (``tiergate.limits``, the same buckets the emulator and the API enforce), then
for a concurrency slot.
Sending at the limit instead of into it avoids 429s and the retry storms that follow them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tiergate.limits import ModelLimiter, RateLimits


@dataclass
class GateTicket:
    model: str
    reserved_output: int
    used_output: int = 0


class UpstreamGate:
    def __init__(
        self,
        limits: RateLimits,
        concurrency: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limiter = ModelLimiter(default=limits)
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._sleep = sleep
        self.calls = 0

    @asynccontextmanager
    async def admit(
        self, model: str, input_tokens: int, max_output_tokens: int
    ) -> AsyncIterator[GateTicket]:
        """Hold a slot and the model's budget for one call; set ``used_output`` when done."""
        # Budget first, slot second: a model waiting on its own limits must not hold slots
        # that another model could use meanwhile.
        while True:
            admission = self._limiter.admit(model, self._clock(), input_tokens, max_output_tokens)
            if admission.allowed:
                break
            await self._sleep(admission.retry_after_s)
        ticket = GateTicket(model, admission.reserved_output)
        async with self._slots:
            self.calls += 1
            try:
                yield ticket
            finally:
                self._limiter.settle(
                    model, self._clock(), ticket.reserved_output, ticket.used_output
                )
