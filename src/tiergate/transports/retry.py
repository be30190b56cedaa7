"""Retries and fallback, written once for complete answers and streams alike.

Retries follow the SDK's rules: 408, 409, 429 and 5xx (and no answer at all) are transient;
``x-should-retry`` overrides that; the wait honours ``retry-after-ms`` / ``retry-after`` up to
``max_wait_s``, else an exponential backoff with jitter. When a model's attempts are used up on
transient failures, its fallback model gets its own; one that sent no first byte in time
(:class:`NoFirstByte`) goes straight to its fallback. A stream counts as failed while nothing has
reached the client (an ``error`` event in its first chunk falls back too). Cancellation (a
client gone) stops everything at once: no retry is made for a client that left.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from tiergate.transports.base import (
    ApiCall,
    ApiReply,
    NoFirstByte,
    OpenStream,
    Transport,
    Unreachable,
)

RETRY_COUNT_HEADER = "x-stainless-retry-count"
Result = TypeVar("Result", ApiReply, "OpenStream | ApiReply")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_s: float = 0.5
    max_wait_s: float = 8.0  # a gateway holding a request for a minute helps nobody
    fallbacks: Mapping[str, str] = field(default_factory=dict)

    def models_for(self, model: str) -> list[str]:
        fallback = self.fallbacks.get(model)
        return [model] if fallback is None or fallback == model else [model, fallback]

    def backoff(self, retry: int) -> float:
        base = min(self.base_s * 2**retry, self.max_wait_s)
        return float(base * (1 - 0.25 * random.random()))

    def delay(self, retry: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying the same model, or None to move on."""
        if headers.get("x-should-retry") == "false":
            return None
        wait = header_wait(headers)
        if wait is None:
            return self.backoff(retry)
        return wait if wait <= self.max_wait_s else None


def transient(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


class Retrying:
    """Wraps a transport with retries and per-model fallback."""

    def __init__(self, inner: Transport, policy: RetryPolicy) -> None:
        self.inner = inner
        self.policy = policy

    async def send(self, call: ApiCall) -> ApiReply:
        return await self._attempts(call, self.inner.send)

    async def open_stream(self, call: ApiCall) -> OpenStream | ApiReply:
        return await self._attempts(call, self.inner.open_stream)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _attempts(
        self, call: ApiCall, attempt: Callable[[ApiCall], Awaitable[Result]]
    ) -> Result:
        tried: list[str] = []
        last: ApiReply | None = None
        count = 0
        models = self.policy.models_for(call.model) if call.model else [""]
        for model in models:
            tried.append(model)
            target = call.for_model(model) if model else call
            for retry in range(self.policy.max_retries + 1):
                # The first attempt goes as it is: only retries say which try they are.
                numbered = target if count == 0 else _numbered(target, count)
                count += 1
                try:
                    result = await attempt(numbered)
                except NoFirstByte:
                    break  # a model that hangs is likely to hang again: on to the fallback
                except Unreachable:
                    if retry < self.policy.max_retries:
                        await asyncio.sleep(self.policy.backoff(retry))
                    continue
                if not isinstance(result, ApiReply) or result.ok:
                    result.tried = list(tried)
                    return result
                last = result
                if not transient(result.status):
                    last.tried = list(tried)
                    return result
                wait = self.policy.delay(retry, result.headers)
                if wait is None or retry == self.policy.max_retries:
                    break
                await asyncio.sleep(wait)
        if last is None:
            raise Unreachable(f"no answer after {count} attempts")
        last.tried = list(tried)
        return last


def _numbered(call: ApiCall, count: int) -> ApiCall:
    return ApiCall(
        call.path,
        call.body,
        call.method,
        {**call.headers, RETRY_COUNT_HEADER: str(count)},
        call.raw,
        call.key,
        call.input_tokens,
        call.max_tokens,
        call.limited,
        call.first_byte_s,
    )


def header_wait(headers: Mapping[str, str]) -> float | None:
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


def anthropic_transport(
    base_url: str,
    api_key: str,
    *,
    max_retries: int = 2,
    fallbacks: Mapping[str, str] | None = None,
) -> Retrying:
    """The Anthropic API at ``base_url``: one HTTP attempt per try, retried as the SDK would."""
    from tiergate.transports.http import HttpSettings, HttpTransport

    return Retrying(
        HttpTransport(HttpSettings(base_url.rstrip("/"), api_key)),
        RetryPolicy(max_retries=max_retries, fallbacks=dict(fallbacks or {})),
    )
