"""Server-sent events, written in one place: the emulator's streams, the gateway's streamed
classification answers and its OpenAI-compatible chunks all encode here."""

from __future__ import annotations

from typing import Any

import orjson


def event(name: str, data: Any) -> bytes:
    """``event: NAME`` / ``data: JSON`` / blank line: the Anthropic API's framing."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def data_only(data: Any) -> bytes:
    """``data: JSON`` / blank line: the OpenAI API's framing (no event names)."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


DONE = b"data: [DONE]\n\n"


class EventReader:
    """Whole events out of a byte stream cut anywhere: ``feed`` returns (name, data) pairs."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        parts = (self._tail + chunk).split(b"\n\n")
        self._tail = parts.pop()
        events = []
        for part in parts:
            name, data = "", b""
            for line in part.split(b"\n"):
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data += line[5:].strip()
            if data:
                try:
                    events.append((name, orjson.loads(data)))
                except orjson.JSONDecodeError:
                    continue
        return events
