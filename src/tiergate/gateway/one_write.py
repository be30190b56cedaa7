"""A response's head and body in one ``write(2)``, not two.

uvicorn writes the status line and headers when the app sends ``http.response.start``, and the
body on ``http.response.body``: two system calls and two TCP segments for every complete answer,
and on loopback the kernel does the receiver's work inside each send. The gateway sends both
messages in the same turn of the event loop (``respond``), so the response cycle is given this
stand-in for its transport: a write is held until the next one, which joins it, or until the
loop's next turn (``call_soon``), whichever comes first. Nothing is reordered or delayed past
the current turn; ``close`` writes what is held first, and what is held for a connection closed
meanwhile is dropped. Anything else goes to the transport.
"""

from __future__ import annotations

import asyncio
from typing import Any


class OneWrite:
    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self.flush)
        else:  # the body after its head: both at once (what follows is held anew)
            self._held = None
            self._transport.write(held + data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():  # a client gone meanwhile
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
