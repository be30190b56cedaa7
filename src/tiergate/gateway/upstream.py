"""The upstream client: aiohttp with keep-alive, retries, and fallback to an alternative model.

aiohttp rather than the SDK or httpx because the hot path forwards bytes: measured here, an
aiohttp forwarder sustains about three times the SDK's request rate (see docs/gateway.md).

Retries follow the SDK's rules: 408, 409, 429 and 5xx (and connection errors) are transient;
``x-should-retry`` overrides that; the wait honours ``retry-after-ms`` / ``retry-after``, else an
exponential backoff with jitter. When a model's attempts are used up on transient failures, the
configured fallback model gets its own. A stream counts as failed while nothing has reached the
client: an ``error`` event in its first chunk falls back too. Cancellation (a client gone) stops
everything at once: no retry is made for a client that left.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from tiergate.gateway.config import UpstreamConfig
from tiergate.stores.base import Grant, UpstreamLimits

FORWARDED_HEADERS = (b"anthropic-version", b"anthropic-beta")
FAULT_HEADER = b"x-tiergate-fault"


def transient(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


@dataclass
class Outbound:
    """One request as it goes upstream; the body is re-serialised only for another model."""

    path: str
    model: str
    raw: bytes
    parsed: dict[str, Any]
    headers: dict[str, str]
    input_estimate: int
    max_tokens: int

    def body_for(self, model: str) -> bytes:
        if model == self.model:
            return self.raw
        return orjson.dumps({**self.parsed, "model": model})


@dataclass
class Reply:
    """The upstream's final answer (maybe an error), and the path that led to it."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    model: str
    tried: list[str] = field(default_factory=list)
    grant: Grant | None = None


@dataclass
class OpenStream:
    """A stream that started well: headers in and a first chunk without an error event."""

    response: aiohttp.ClientResponse
    first_chunk: bytes
    model: str
    tried: list[str]
    grant: Grant


class UpstreamUnavailable(Exception):
    """No attempt got an HTTP answer (connection refused, reset, timed out)."""


class Upstream:
    def __init__(self, config: UpstreamConfig, limits: UpstreamLimits) -> None:
        self.config = config
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.config.connections, keepalive_timeout=30, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.config.connect_timeout_s,
                sock_read=self.config.timeout_s,
            ),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def headers_for(self, client_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
        """What goes upstream: the client's API version and betas, never the client's key."""
        headers = {"x-api-key": self.config.api_key, "content-type": "application/json"}
        for name, value in client_headers:
            if name in FORWARDED_HEADERS or (
                name == FAULT_HEADER and self.config.forward_fault_header
            ):
                headers[name.decode()] = value.decode("latin-1")
        headers.setdefault("anthropic-version", "2023-06-01")
        return headers

    def models_for(self, model: str) -> list[str]:
        fallback = self.config.fallbacks.get(model)
        return [model] if fallback is None or fallback == model else [model, fallback]

    async def send(self, outbound: Outbound, *, limited: bool = True) -> Reply:
        """A complete (non-streamed) answer, after retries and fallback.

        ``limited=False`` skips the model's buckets (count_tokens has its own, separate limit).
        """
        session = self._require_session()
        tried: list[str] = []
        last: Reply | None = None
        attempt_number = 0
        for model in self.models_for(outbound.model):
            tried.append(model)
            for retry in range(self.config.max_retries + 1):
                grant = (
                    await self.limits.acquire(model, outbound.input_estimate, outbound.max_tokens)
                    if limited
                    else None
                )
                headers = {**outbound.headers, "x-stainless-retry-count": str(attempt_number)}
                attempt_number += 1
                try:
                    async with session.post(
                        self.config.base_url + outbound.path,
                        data=outbound.body_for(model),
                        headers=headers,
                    ) as response:
                        body = await response.read()
                        status, reply_headers = response.status, response.headers
                except (aiohttp.ClientError, TimeoutError):
                    self._give_back(grant)
                    if retry < self.config.max_retries:
                        await asyncio.sleep(self._backoff(retry))
                    continue
                self.limits.observe(model, status, reply_headers)
                last = Reply(status, reply_headers, body, model, tried, grant)
                if status < 400:
                    return last
                self._give_back(grant)
                if not transient(status):
                    return last
                delay = self._retry_delay(retry, reply_headers)
                if delay is None or retry == self.config.max_retries:
                    break
                await asyncio.sleep(delay)
        if last is None:
            raise UpstreamUnavailable(f"no answer from {self.config.base_url}")
        last.tried = tried
        return last

    async def open_stream(self, outbound: Outbound) -> OpenStream | Reply:
        """A stream to relay, or the final error reply when every attempt failed."""
        session = self._require_session()
        tried: list[str] = []
        last: Reply | None = None
        attempt_number = 0
        for model in self.models_for(outbound.model):
            tried.append(model)
            for retry in range(self.config.max_retries + 1):
                grant = await self.limits.acquire(
                    model, outbound.input_estimate, outbound.max_tokens
                )
                headers = {**outbound.headers, "x-stainless-retry-count": str(attempt_number)}
                attempt_number += 1
                response: aiohttp.ClientResponse | None = None
                try:
                    response = await session.post(
                        self.config.base_url + outbound.path,
                        data=outbound.body_for(model),
                        headers=headers,
                    )
                    self.limits.observe(model, response.status, response.headers)
                    if response.status >= 400:
                        body = await response.read()
                        last = Reply(response.status, response.headers, body, model, tried)
                        response.release()
                        response = None
                    else:
                        first = await response.content.readany()
                        if b"event: error" not in first:
                            opened = OpenStream(response, first, model, tried, grant)
                            response = None  # the caller owns it now
                            return opened
                        last = _stream_error_reply(first, response.headers, model, tried)
                except (aiohttp.ClientError, TimeoutError):
                    pass
                finally:
                    if response is not None:
                        response.close()
                self.limits.settle(grant, 0)
                if last is not None and not transient(last.status):
                    return last
                delay = self._retry_delay(retry, last.headers if last else {})
                if delay is None or retry == self.config.max_retries:
                    break
                await asyncio.sleep(delay)
        if last is None:
            raise UpstreamUnavailable(f"no answer from {self.config.base_url}")
        last.tried = tried
        return last

    def _give_back(self, grant: Grant | None) -> None:
        if grant is not None:
            self.limits.settle(grant, 0)

    def _retry_delay(self, retry: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying the same model, or None to move on."""
        should = headers.get("x-should-retry")
        if should == "false":
            return None
        wait = _header_wait(headers)
        if wait is None:
            return self._backoff(retry)
        return wait if wait <= self.config.max_retry_wait_s else None

    def _backoff(self, retry: int) -> float:
        base = min(self.config.retry_base_s * 2**retry, self.config.max_retry_wait_s)
        return float(base * (1 - 0.25 * random.random()))

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the upstream client is not started")
        return self._session


def _header_wait(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                seconds = float(value) * scale
            except ValueError:
                continue
            if 0 <= seconds <= 60:
                return seconds
    return None


def _stream_error_reply(
    chunk: bytes, headers: CIMultiDictProxy[str], model: str, tried: list[str]
) -> Reply:
    """An error event before any content: treated like the matching error status."""
    status = 529 if b"overloaded_error" in chunk else 500
    error = b'{"type":"error","error":{"type":"api_error","message":"stream failed"}}'
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: ") and b'"error"' in line:
            error = line[6:]
    return Reply(status, {}, error, model, tried)
