"""A response's head and body reach the socket in one write; nothing waits past the loop's
turn, nothing is reordered, and close writes what is held first."""

from __future__ import annotations

import asyncio
from typing import Any

from tiergate.gateway.one_write import OneWrite


class Recorded:
    """A transport that records writes and closes, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def write(self, data: bytes) -> None:
        self.events.append(data)

    def close(self) -> None:
        self.events.append("closed")

    def is_closing(self) -> bool:
        return "closed" in self.events


async def test_head_and_body_go_in_one_write_and_a_lone_write_by_the_next_turn() -> None:
    transport = Recorded()
    writer = OneWrite(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    writer.write(b"HEAD")
    writer.write(b"BODY")
    assert transport.events == [b"HEADBODY"]
    writer.write(b"chunk 1")  # a stream's next chunk, alone in its turn
    assert transport.events == [b"HEADBODY"]
    await asyncio.sleep(0)
    assert transport.events == [b"HEADBODY", b"chunk 1"]
    writer.write(b"last")
    writer.close()  # what is held goes first
    assert transport.events == [b"HEADBODY", b"chunk 1", b"last", "closed"]
    await asyncio.sleep(0)
    assert transport.events == [b"HEADBODY", b"chunk 1", b"last", "closed"]  # nothing twice
    assert writer.is_closing()  # the rest is the transport's
