"""A lean HTTP/1.1 client for complete answers: one write per request, httptools to parse.

A complete (non-streamed) answer is the gateway's hot path, and aiohttp's client cost about a
third of the gateway's CPU per request there (bench/gateway.py, py-spy): headers as multidicts,
a payload registry, a response object with its streams, a timer re-armed on every read. None of
it is needed to send a body already in bytes and read back a status, a few headers and a body.
This client keeps idle keep-alive connections per origin (at most ``connections`` open, the
rest wait), writes the request head and body in one write, and parses the answer with httptools
(C; uvicorn's parser, already installed). Streams stay on aiohttp (``http.py``).

Failures keep :class:`~tiergate.transports.http.HttpTransport`'s contract: no connection, a
reset, or a broken answer raise :class:`Unreachable`; no answer head within the call's
``first_byte_s`` raises :class:`NoFirstByte`; without one, ``read_timeout_s`` bounds every
wait for data. A call cancelled (a client gone) closes its connection, which stops the upstream
generation; a connection is reused only after a complete answer the server let stay open.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import Mapping
from urllib.parse import urlsplit

import httptools

from tiergate.transports.base import NoFirstByte, Unreachable

# Idle connections older than this are closed rather than reused (aiohttp's default was 15 s;
# the gateway set 30 s): a server that forgets a connection first would reset the next call.
KEEPALIVE_S = 30.0
DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class Answer:
    """A complete answer: status, headers (names lower-case, first value wins), body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one exchange on it at a time."""

    def __init__(self, pool: Http1Pool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._gap_s = 0.0  # the longest wait for the next data
        self._first_byte_s: float | None = None
        self.released = False  # its slot in the pool given back
        self._reset()

    def _reset(self) -> None:
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._head_done = False
        self._complete = False
        self._reusable = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._complete:  # a server talking out of turn
            self._reusable = False
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(Unreachable(f"{self._pool.origin}: a malformed answer ({error})"))
            return
        if self._complete or self._waiter is None:
            return
        self._arm(self._gap_s)  # the rest of the answer is due within the same timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        self._pool.forget(self)
        if self._waiter is not None and not self._waiter.done():
            if self._head_done and self._ends_with_connection():
                self.on_message_complete()  # a body delimited by the connection's end
                return
            why = type(exc).__name__ if exc is not None else "ServerDisconnectedError"
            self._waiter.set_exception(Unreachable(f"{self._pool.origin}: {why}"))

    def _ends_with_connection(self) -> bool:
        return "content-length" not in self._headers and "transfer-encoding" not in self._headers

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._complete:  # bytes past the answer, in the same read: never reused
            self._reusable = False
            return
        self._headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        if self._complete:
            self._reusable = False
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._complete:  # a second answer to one request: the connection is not trusted
            self._reusable = False
            return
        if self._parser.get_status_code() < 200:  # 1xx (early hints): the answer is still due
            self._reset()
            return
        self._complete = True
        # Asked here: once the parser has moved past the message, it always says no.
        self._reusable = self._parser.should_keep_alive()
        self._disarm()
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        body = b"".join(self._body)
        encoding = self._headers.get("content-encoding")
        if encoding in DECODERS:
            try:
                body = zlib.decompress(body, DECODERS[encoding])
            except zlib.error as error:
                waiter.set_exception(Unreachable(f"{self._pool.origin}: bad {encoding}: {error}"))
                return
        waiter.set_result(Answer(self._parser.get_status_code(), self._headers, body))

    # one exchange

    async def exchange(self, request: bytes, first_byte_s: float | None) -> Answer:
        assert self.transport is not None
        self._reset()
        waiter: asyncio.Future[Answer] = self._pool.loop.create_future()
        self._waiter = waiter
        self._first_byte_s = first_byte_s
        self._gap_s = self._pool.read_timeout_s if first_byte_s is None else first_byte_s
        self._arm(self._gap_s)
        self.transport.write(request)
        try:
            return await waiter
        finally:
            self._waiter = None
            self._disarm()

    def keep_alive(self) -> bool:
        return self._reusable and not self.closed

    # timers and failures

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self._pool.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        origin = self._pool.origin
        if not self._head_done and self._first_byte_s is not None:
            error: Unreachable = NoFirstByte(
                f"{origin}: no first byte within {self._first_byte_s:g} s"
            )
        else:
            error = Unreachable(f"{origin}: SocketTimeoutError (no data within the read timeout)")
        self._fail(error)

    def _fail(self, error: Unreachable) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        self._disarm()
        if self.transport is not None:
            self.transport.close()


class Http1Pool:
    """Keep-alive connections to one origin (``scheme://host:port``), ``limit`` at most."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        self._prefix = parts.path.rstrip("/")
        self._host_header = parts.netloc
        self._limit = limit
        self._connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._heads: dict[tuple[str, str], bytes] = {}
        self._closing = False
        self.loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()

    def encode(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
        """The whole request in bytes; its first lines are made once per method and path."""
        first = self._heads.get((method, path))
        if first is None:
            line = f"{method} {self._prefix}{path} HTTP/1.1\r\nhost: {self._host_header}\r\n"
            _check_text(line, 2)
            first = self._heads[(method, path)] = line.encode("latin-1")
        lines = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        _check_text(lines, len(headers))
        length = b"content-length: %d\r\n\r\n" % len(body)
        return b"".join((first, lines.encode("latin-1"), length, body))

    async def request(self, request: bytes, first_byte_s: float | None) -> Answer:
        connection = await self._checkout()
        try:
            answer = await connection.exchange(request, first_byte_s)
        except BaseException:
            connection.close()  # cancelled or failed midway: never reused
            self._release(connection)
            raise
        if connection.keep_alive() and not self._closing:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
            self._wake()
        else:
            connection.close()
            self._release(connection)
        return answer

    async def _checkout(self) -> _Connection:
        while True:
            now = time.monotonic()
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed and now - connection.idle_since < KEEPALIVE_S:
                    return connection
                connection.close()
                self._release(connection)
            if self._open < self._limit:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            waiter = self.loop.create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
                elif not waiter.cancelled():
                    self._wake()  # pass the turn on
                raise

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await self.loop.create_connection(
                    lambda: _Connection(self),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except (OSError, TimeoutError) as error:
            raise Unreachable(f"{self.origin}: {type(error).__name__}") from None
        return connection

    def forget(self, connection: _Connection) -> None:
        """A connection the server closed: out of the idle list, its slot freed."""
        if connection in self._idle:
            self._idle.remove(connection)
            self._release(connection)

    def _release(self, connection: _Connection) -> None:
        if connection.released:
            return
        connection.released = True
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closing = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _check_text(text: str, lines: int) -> None:
    """Header names and values may not carry line breaks (a header injected upstream)."""
    if text.count("\n") != lines or text.count("\r") != lines:
        raise ValueError("a request header name or value contains a line break")
