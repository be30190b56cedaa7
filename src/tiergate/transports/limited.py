"""Rate limits as a transport wrapping a transport: every attempt takes room in its model's
buckets first, and gives back what it did not use.

Under :class:`~tiergate.transports.retry.Retrying`, each attempt (a retry, the fallback model)
asks for its own room, so a retry storm is held to the organisation's limits like any other
traffic. A complete answer settles its output tokens at once (from its ``usage``); a stream
leaves that to its reader through ``on_usage`` (the output is known only at the end), and one
never settled keeps its whole ``max_tokens`` counted, which errs on the safe side.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Protocol

from tiergate.transports.base import ApiCall, ApiReply, OpenStream, Transport


class Buckets(Protocol):
    """What a limiter offers (``tiergate.stores.base.UpstreamLimits`` is one)."""

    async def acquire(self, model: str, input_tokens: int, max_tokens: int) -> Any: ...

    def settle(self, grant: Any, used_output: int) -> None: ...

    def observe(self, model: str, status: int, headers: Mapping[str, str]) -> None: ...


class Limited:
    def __init__(self, inner: Transport, buckets: Buckets) -> None:
        self.inner = inner
        self.buckets = buckets

    async def send(self, call: ApiCall) -> ApiReply:
        if not call.limited:
            return await self.inner.send(call)
        grant = await self.buckets.acquire(call.model, call.input_tokens, call.max_tokens)
        try:
            reply = await self.inner.send(call)
        except BaseException:
            self.buckets.settle(grant, 0)
            raise
        self.buckets.observe(call.model, reply.status, reply.headers)
        self.buckets.settle(grant, output_tokens(reply) if reply.ok else 0)
        return reply

    async def open_stream(self, call: ApiCall) -> OpenStream | ApiReply:
        grant = await self.buckets.acquire(call.model, call.input_tokens, call.max_tokens)
        try:
            opened = await self.inner.open_stream(call)
        except BaseException:
            self.buckets.settle(grant, 0)
            raise
        self.buckets.observe(call.model, opened.status, opened.headers)
        if isinstance(opened, ApiReply):
            self.buckets.settle(grant, 0)
        else:
            opened.on_usage = functools.partial(self.buckets.settle, grant)
        return opened

    async def aclose(self) -> None:
        await self.inner.aclose()


def output_tokens(reply: ApiReply) -> int:
    try:
        usage = reply.json().get("usage") or {}
        return int(usage.get("output_tokens") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0
