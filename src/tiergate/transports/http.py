"""The Anthropic API over HTTP with keep-alive, one attempt per call.

A complete answer goes through a lean HTTP/1.1 client (``http1.py``: one write, httptools to
parse), streams through aiohttp; both rather than the SDK or httpx because the gateway's hot
path forwards bytes: measured here, an aiohttp forwarder sustains about three times the SDK's
request rate (docs/gateway.md), and the lean client cuts a complete answer's CPU further.
Retries and fallback are a wrapper (``retry.py``); this transport makes exactly one attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp

from tiergate.transports.base import (
    ApiCall,
    ApiReply,
    NoFirstByte,
    OpenStream,
    Unreachable,
    UsageReport,
)
from tiergate.transports.http1 import Http1Pool

# The version the official SDK (anthropic 2.x) sends; a call may name its own.
DEFAULT_VERSION = "2026-10-21"
ERROR_EVENT = b"event: error"


@dataclass(frozen=True)
class HttpSettings:
    base_url: str
    api_key: str
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 600.0  # between two reads of the answer
    connections: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)  # sent with every call
    # How the key travels: Anthropic's ``x-api-key``, or ``bearer`` (OpenAI-compatible APIs).
    auth: str = "x-api-key"


class HttpTransport:
    """Calls ``base_url`` with ``x-api-key``; the connections open on first use."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._pool: Http1Pool | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.settings.connections, keepalive_timeout=30, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=self.settings.connect_timeout_s,
                    sock_read=self.settings.read_timeout_s,
                ),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    def _headers(self, call: ApiCall) -> dict[str, str]:
        headers = {"anthropic-version": DEFAULT_VERSION, **self.settings.headers, **call.headers}
        if self.settings.auth == "bearer":
            headers["authorization"] = f"Bearer {self.settings.api_key}"
        else:
            headers["x-api-key"] = self.settings.api_key
        if call.body is not None or call.raw is not None:
            headers["content-type"] = "application/json"
        return headers

    async def send(self, call: ApiCall) -> ApiReply:
        """One attempt: the first byte is due within ``first_byte_s`` (else ``NoFirstByte``);
        without one, ``read_timeout_s`` bounds every wait (else ``Unreachable``)."""
        pool = self._pool
        if pool is None:
            pool = self._pool = Http1Pool(
                self.settings.base_url,
                limit=self.settings.connections,
                connect_timeout_s=self.settings.connect_timeout_s,
                read_timeout_s=self.settings.read_timeout_s,
            )
        body = call.content() if call.method != "GET" else b""
        request = pool.encode(call.method, call.path, self._headers(call), body)
        answer = await pool.request(request, call.first_byte_s)
        return ApiReply(answer.status, answer.headers, answer.body, call.model)

    async def open_stream(self, call: ApiCall) -> OpenStream | ApiReply:
        session = self._open()
        response: aiohttp.ClientResponse | None = None
        deadline = asyncio.timeout(call.first_byte_s)
        try:
            async with deadline:
                response = await session.request(
                    call.method,
                    self.settings.base_url + call.path,
                    data=call.content(),
                    headers=self._headers(call),
                )
                if response.status >= 400:
                    body = await response.read()
                    return ApiReply(response.status, response.headers, body, call.model)
                first = await response.content.readany()
            if ERROR_EVENT in first:
                return stream_error_reply(first, call.model)
            opened = HttpStream(response, first, call.model)
            response = None  # the stream owns it now
            return opened
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _unreachable(self.settings.base_url, error, deadline, call) from None
        finally:
            if response is not None:
                response.close()

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpStream:
    def __init__(self, response: aiohttp.ClientResponse, first_chunk: bytes, model: str) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self.first_chunk = first_chunk
        self.model = model
        self.tried: list[str] = [model]
        self.on_usage: UsageReport | None = None
        self._complete = False

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError):
            return  # the caller sees the stream end without message_stop
        self._complete = True

    async def aclose(self) -> None:
        """Read to the end: the connection goes back to the pool; cut short: it is closed,
        which cancels the upstream generation."""
        if self._complete:
            self._response.release()
        else:
            self._response.close()


def _unreachable(
    base_url: str, error: Exception, deadline: asyncio.Timeout, call: ApiCall
) -> Unreachable:
    if deadline.expired():
        return NoFirstByte(f"{base_url}: no first byte within {call.first_byte_s:g} s")
    return Unreachable(f"{base_url}: {type(error).__name__}")


def stream_error_reply(chunk: bytes, model: str) -> ApiReply:
    """An error event before any content: treated like the matching error status."""
    status = 529 if b"overloaded_error" in chunk else 500
    error = b'{"type":"error","error":{"type":"api_error","message":"stream failed"}}'
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: ") and b'"error"' in line:
            error = line[6:]
    return ApiReply(status, {}, error, model, [model])
