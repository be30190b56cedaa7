"""Raw ASGI plumbing: reading a bounded body, headers, and writing whole responses.

The gateway is raw ASGI rather than a framework because the hot path must add well under a
millisecond per request on one core; every helper here is a few lines over the ASGI messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from tiergate.asgi_body import ClientGone, Message, Receive, Scope, header, read_body

Send = Callable[[Message], Awaitable[None]]

__all__ = ["ClientGone", "Message", "Receive", "Scope", "Send", "header", "read_body"]

JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"


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
