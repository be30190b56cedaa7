"""Upstream rate limits per model, and request-per-minute limits per key.

Per-model buckets (``tiergate.limits.ModelLimiter``) mirror the organisation's Anthropic limits
from the config. A request that does not fit waits a little (``queue_s``) before it is refused:
a short burst is smoothed instead of bounced. The upstream's own view wins when it is stricter:
a 429 with ``retry-after``, or an ``anthropic-ratelimit-*-remaining: 0`` header, pauses that
model until the upstream says it has room again (other gateways or apps may share the org).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from tiergate.gateway.config import LimitsConfig
from tiergate.gateway.errors import GatewayError
from tiergate.gateway.keys import ApiKey
from tiergate.limits import ModelLimiter, TokenBucket, retry_after_value

Clock = Callable[[], float]
REMAINING_HEADERS = (
    "anthropic-ratelimit-requests",
    "anthropic-ratelimit-input-tokens",
    "anthropic-ratelimit-output-tokens",
)


@dataclass(frozen=True, slots=True)
class Grant:
    model: str
    reserved_output: int


class UpstreamLimits:
    def __init__(
        self,
        config: LimitsConfig,
        *,
        canonical: Callable[[str], str] = str,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        # Buckets are per model, whichever alias a request used (from the price book).
        self._canonical = canonical
        self._limiter = ModelLimiter(
            config.default, {canonical(name): limits for name, limits in config.per_model.items()}
        )
        self._queue_s = config.queue_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._paused_until: dict[str, float] = {}

    async def acquire(self, model: str, input_tokens: int, max_tokens: int) -> Grant:
        model = self._canonical(model)
        deadline = self._clock() + self._queue_s
        while True:
            now = self._clock()
            pause = self._paused_until.get(model, 0.0) - now
            limited_by = "the upstream's rate limit"
            if pause <= 0:
                admission = self._limiter.admit(model, now, input_tokens, max_tokens)
                if admission.allowed:
                    return Grant(model, admission.reserved_output)
                wait, limited_by = admission.retry_after_s, admission.limited_by
            else:
                wait = pause
            if now + wait > deadline:
                raise GatewayError(
                    429,
                    f"{model}: over the configured {limited_by} limit for this model "
                    f"(room again in {wait:.1f} s)",
                    headers=[("retry-after", retry_after_value(wait))],
                )
            await asyncio.sleep(wait)

    def settle(self, grant: Grant, used_output: int) -> None:
        self._limiter.settle(grant.model, self._clock(), grant.reserved_output, used_output)

    def observe(self, model: str, status: int, headers: Mapping[str, str]) -> None:
        """Adapt to the upstream's answer: pause the model while it says there is no room."""
        model = self._canonical(model)
        if status == 429:
            retry_after = _seconds(headers.get("retry-after"))
            if retry_after is not None:
                self._pause(model, retry_after)
            return
        for prefix in REMAINING_HEADERS:
            if headers.get(prefix + "-remaining") == "0":
                reset = _epoch(headers.get(prefix + "-reset"))
                if reset is not None:
                    self._pause(model, reset - self._wall_clock())

    def _pause(self, model: str, seconds: float) -> None:
        if seconds > 0:
            until = self._clock() + seconds
            self._paused_until[model] = max(until, self._paused_until.get(model, 0.0))


class KeyRpm:
    """Requests per minute per key, for keys created with ``--rpm``."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, key: ApiKey) -> None:
        if key.rpm is None:
            return
        now = self._clock()
        bucket = self._buckets.get(key.id)
        if bucket is None or bucket.capacity != key.rpm:
            bucket = self._buckets[key.id] = TokenBucket.per_minute(key.rpm, now)
        if not bucket.try_take(1, now):
            wait = bucket.wait_for(1, now)
            raise GatewayError(
                429,
                f"key {key.name!r} is over its limit of {key.rpm} requests per minute",
                headers=[("retry-after", retry_after_value(wait))],
            )


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
