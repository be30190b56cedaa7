"""The HTTP server's own limits: header size, header / body / idle timeouts, a connection cap,
and Anthropic-shaped errors for what never reaches the app (framing errors, upgrades).

uvicorn's httptools protocol with a few overrides (``HardenedProtocol``), chosen over a front
server (nginx, granian) so ``tiergate serve`` stays one process and one command. What it adds:

- the request head (request line and headers) is counted *before* the parser sees it and
  refused with 431 past ``max_header_bytes``: the parser joins a header's pieces as they come,
  so one 128 MB header line froze the event loop for 40 s;
- a connection that sends nothing is closed after ``idle_timeout_s`` (uvicorn arms its
  keep-alive timer only after a first response, so idle sockets stayed forever); a head not
  complete after ``header_timeout_s`` or a body not complete after ``body_timeout_s`` gets a
  408 and is closed. A request whose head and body come in one read (the common case) arms no
  timer at all;
- past ``max_connections`` open connections, a new one gets a 529 ``overloaded_error`` and is
  closed at once, before it can hold a file descriptor;
- a framing error is the API's 400 JSON (uvicorn's is plain text), and a protocol upgrade
  (WebSocket, h2c) is refused with a 400 before the app runs.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tiergate.api_errors import error_body, error_type_for
from tiergate.gateway.config import ServerLimits
from tiergate.gateway.one_write import OneWrite

IDLE, HEAD, BODY, APP, DRAIN = range(5)
# After a refusal the rest of the request is read and dropped for this long, then the socket
# closes: closing with unread bytes would send a reset, and the client would lose the answer.
DRAIN_S = 2.0
TERMINATOR = b"\r\n\r\n"


def raw_error(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 error response that closes the connection."""
    body = error_body(error_type_for(status), message, "req_tg_unassigned")
    return b"".join(
        [
            STATUS_LINE.get(status, b"HTTP/1.1 %d \r\n" % status),
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class HardenedProtocol(HttpToolsProtocol):
    limits = ServerLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = IDLE
        self._head_bytes = 0
        self._tail = b""
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def with_limits(cls, limits: ServerLimits) -> type[HardenedProtocol]:
        return type("HardenedProtocol", (cls,), {"limits": limits})

    # connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._one_write = OneWrite(transport, self.loop)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(
                529, "the gateway has too many open connections; retry shortly", drain=False
            )
            return
        self._arm(self.limits.idle_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == DRAIN:
            return
        if self._phase <= HEAD:
            if not self._head_fits(data):
                self._refuse(
                    431,
                    f"request headers are larger than the gateway's limit of "
                    f"{self.limits.max_header_bytes} bytes",
                )
                return
            if self._phase == IDLE:
                self._disarm()  # the idle timer: a request has begun
                self._phase = HEAD
        super().data_received(data)
        if self._phase == HEAD:
            self._arm(self.limits.header_timeout_s, once=True)
        elif self._phase == BODY:
            self._arm(self.limits.body_timeout_s, once=True)

    def _head_fits(self, data: bytes) -> bool:
        window = self._tail + data
        end = window.find(TERMINATOR)
        if end >= 0:
            return self._head_bytes + end - len(self._tail) <= self.limits.max_header_bytes
        self._head_bytes += len(data)
        self._tail = window[-3:]
        return self._head_bytes <= self.limits.max_header_bytes

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = HEAD

    def on_headers_complete(self) -> None:
        self._phase = BODY
        self._disarm()
        if self.parser.should_upgrade():
            self._refuse(400, "protocol upgrades (WebSocket, h2c) are not supported: use HTTP/1.1")
            return
        super().on_headers_complete()
        if self.cycle is not None:  # a response's head and body in one write (one_write.py)
            self.cycle.transport = self._one_write  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self._phase = APP
        self._head_bytes, self._tail = 0, b""  # what comes next is the next request's head
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._phase = IDLE  # uvicorn's keep-alive timer (idle_timeout_s) takes over
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, f"malformed HTTP request: {msg}")

    # timers and refusals

    def _arm(self, seconds: float, *, once: bool = False) -> None:
        if once and self._timer is not None:
            return
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._phase == HEAD:
            self._refuse(
                408, f"request headers not received within {self.limits.header_timeout_s:g} s"
            )
        elif self._phase == BODY and (self.cycle is None or not self.cycle.response_started):
            self._refuse(408, f"request body not received within {self.limits.body_timeout_s:g} s")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: str, *, drain: bool = True) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        self.transport.write(raw_error(status, message))
        if drain and self.transport.can_write_eof():
            self._phase = DRAIN
            self.transport.write_eof()
            self._timer = self.loop.call_later(DRAIN_S, self.transport.close)
        else:
            self._phase = APP
            self.transport.close()


def connection_cap(configured: int, reserved: int, open_files: int | None = None) -> int:
    """The cap in force: the configured one, lowered so that client connections plus the
    ``reserved`` descriptors (upstream pool, ledger, journal, listening socket) stay within
    the process's open-file limit; past it, accept() would fail and nobody would be served."""
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if open_files == resource.RLIM_INFINITY or open_files <= 0:
        return configured
    return max(1, min(configured, open_files - reserved))


def uvicorn_options(limits: ServerLimits, reserved_fds: int = 64) -> dict[str, Any]:
    """The uvicorn settings for a hardened server."""
    cap = connection_cap(limits.max_connections, reserved_fds)
    limits = limits.model_copy(update={"max_connections": cap})
    return {
        "http": HardenedProtocol.with_limits(limits),
        "ws": "none",
        "timeout_keep_alive": limits.idle_timeout_s,
        # Nothing reads the client's address or scheme (no access log): uvicorn's
        # X-Forwarded-* middleware would only add a layer to every request.
        "proxy_headers": False,
    }
