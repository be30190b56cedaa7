"""Stop work for a client that has gone away.

While a request waits on the upstream, a watcher reads the ASGI ``receive`` channel; an
``http.disconnect`` cancels the waiting coroutine, which cancels the upstream call (and with it
any retry, since retries live inside that call). The caller sees :class:`ClientGone`.

The watcher (a task) starts only once the wait has lasted :data:`WATCH_AFTER_S`: most complete
answers come sooner, and a task made and cancelled for each of them cost several microseconds
of the gateway's CPU per request. A client that left earlier is still seen: ``receive`` reports
a disconnect that has already happened at once. The upstream call is stopped at most that much
later than the disconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from tiergate.gateway.asgi import ClientGone, Receive

T = TypeVar("T")

WATCH_AFTER_S = 0.02


async def guard(work: Awaitable[T], receive: Receive) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise ClientGone."""
    task = asyncio.current_task()
    assert task is not None
    loop = task.get_loop()
    gone = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    def start() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(WATCH_AFTER_S, start)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            task.uncancel()
            raise ClientGone from None
        raise
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
