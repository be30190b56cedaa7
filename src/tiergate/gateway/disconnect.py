"""Stop work for a client that has gone away.

While a request waits on the upstream, a watcher reads the ASGI ``receive`` channel; an
``http.disconnect`` cancels the waiting coroutine, which cancels the upstream call (and with it
any retry, since retries live inside that call). The caller sees :class:`ClientGone`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from tiergate.gateway.asgi import ClientGone, Receive

T = TypeVar("T")


async def guard(work: Awaitable[T], receive: Receive) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise ClientGone."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            task.uncancel()
            raise ClientGone from None
        raise
    finally:
        watcher.cancel()
