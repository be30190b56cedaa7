"""A raw HTTP/1.1 client over asyncio streams, for what no well-behaved client sends: framing
errors, oversized or non-UTF-8 headers, slow or idle sockets, fuzzed bytes."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import orjson

READ_LIMIT_S = 30.0  # a safety net for a hung server, not a timed assertion


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def anthropic_error(self) -> bool:
        """The API's error shape: ``{"type": "error", "error": {"type", "message"}}``."""
        try:
            body = self.json()
        except orjson.JSONDecodeError:
            return False
        error = body.get("error") if isinstance(body, dict) else None
        return (
            body.get("type") == "error"
            and isinstance(error, dict)
            and isinstance(error.get("type"), str)
            and isinstance(error.get("message"), str)
        )


def http_request(
    method: str, path: str, host: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1\r\nhost: {host}\r\n".encode()]
    lines += [name + b": " + value + b"\r\n" for name, value in headers]
    lines.append(b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
    return b"".join(lines) + body


async def read_answer(reader: asyncio.StreamReader) -> RawAnswer | None:
    """One response, or None when the server closed without one."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_LIMIT_S)
    except asyncio.IncompleteReadError:
        return None
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(part[:-2] for part in parts)
    else:
        body = await reader.read()
    return RawAnswer(status, headers, body)


class RawConnection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, payload: bytes) -> RawAnswer | None:
        """Send ``payload``, read one answer; reconnects when the server had closed."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(payload)
        try:
            answer = await read_answer(self.reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            answer = None
        if answer is None or answer.headers.get("connection") == "close":
            await self.close()
        return answer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
            self.writer = None


async def one_shot(port: int, payload: bytes) -> RawAnswer | None:
    connection = RawConnection(port)
    try:
        return await connection.exchange(payload)
    finally:
        await connection.close()
