"""Several API clients for one live run, each with its own connection pool.

The HTTP client's pool scans all of its connections for every request it places, so one pool
with hundreds of connections spends more CPU on bookkeeping than on the requests (measured:
about half a live run's CPU at 128 in flight). Small pools, taken in turn, keep that cost flat.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anthropic

CALLS_PER_CLIENT = 16

NextClient = Callable[[], anthropic.AsyncAnthropic]


@asynccontextmanager
async def client_ring(
    client: anthropic.AsyncAnthropic, concurrency: int
) -> AsyncIterator[NextClient]:
    """Yields a function giving the next client in turn; the copies are closed at the end."""
    copies = [
        client.copy(http_client=anthropic.DefaultAsyncHttpxClient())
        for _ in range(math.ceil(concurrency / CALLS_PER_CLIENT) - 1)
    ]
    ring = itertools.cycle([client, *copies])
    try:
        yield lambda: next(ring)
    finally:
        for copy in copies:
            await copy.close()
