"""Raw ASGI plumbing: reading a bounded body, headers, and writing whole responses.

The gateway is raw ASGI rather than a framework because the hot path must add well under a
millisecond per request on one core; every helper here is a few lines over the ASGI messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from tiergate.gateway.errors import GatewayError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"


class ClientGone(Exception):
    """The client disconnected before its answer was complete."""


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` lower-case, as ASGI gives them)."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing with 413 as soon as it is known to exceed ``limit``."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise GatewayError(413, f"request body is larger than the gateway's limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise GatewayError(
                413, f"request body is larger than the gateway's limit of {limit} bytes"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def encode_headers(
    content_type: bytes, request_id: str, extra: Sequence[tuple[str, str]]
) -> list[tuple[bytes, bytes]]:
    encoded = [(b"content-type", content_type), (b"request-id", request_id.encode())]
    encoded += [(name.encode(), value.encode()) for name, value in extra]
    return encoded


async def respond(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    headers: Sequence[tuple[str, str]] = (),
    content_type: bytes = JSON,
) -> None:
    encoded = encode_headers(content_type, request_id, headers)
    encoded.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": encoded})
    await send({"type": "http.response.body", "body": body})
