"""Per-model request, input-token and output-token limits, each a refilling bucket.

Mirrors how Anthropic admits a request: one request from RPM, its input tokens from ITPM
(cache reads excluded by the caller), and ``max_tokens`` reserved from OTPM up front, the unused
part given back when the answer is done (:meth:`ModelLimiter.settle`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from tiergate.limits.bucket import TokenBucket

KINDS = ("requests", "input-tokens", "output-tokens")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-minute limits for one model; ``None`` means unlimited."""

    rpm: int | None = None
    itpm: int | None = None
    otpm: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.itpm is None and self.otpm is None


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """One limit's state, as the ``anthropic-ratelimit-*`` headers report it."""

    kind: str
    limit: int
    remaining: int
    reset_at: float


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a request may run now; if not, how long to wait and which limit said no."""

    allowed: bool
    retry_after_s: float = 0.0
    limited_by: str = ""
    reserved_output: int = 0


ALLOWED = Admission(allowed=True)


@dataclass
class ModelLimiter:
    """Buckets per model, created on first use. ``overrides`` replaces ``default`` per model."""

    default: RateLimits = field(default_factory=RateLimits)
    overrides: Mapping[str, RateLimits] = field(default_factory=dict)
    _buckets: dict[str, dict[str, TokenBucket]] = field(default_factory=dict, repr=False)

    def limits_for(self, model: str) -> RateLimits:
        return self.overrides.get(model, self.default)

    def _buckets_for(self, model: str, now: float) -> dict[str, TokenBucket]:
        buckets = self._buckets.get(model)
        if buckets is None:
            limits = self.limits_for(model)
            per_kind = zip(KINDS, (limits.rpm, limits.itpm, limits.otpm), strict=True)
            buckets = {
                kind: TokenBucket.per_minute(limit, now)
                for kind, limit in per_kind
                if limit is not None
            }
            self._buckets[model] = buckets
        return buckets

    def admit(self, model: str, now: float, input_tokens: int, max_output_tokens: int) -> Admission:
        """Take what the request needs from every bucket, or nothing if any would run short.

        A need larger than a bucket's capacity is capped at the capacity, so a huge request
        waits for a full bucket instead of being refused forever.
        """
        buckets = self._buckets_for(model, now)
        if not buckets:
            return ALLOWED
        # Plain loops, no dicts: this runs on every request of the gateway's hot path.
        wanted: list[tuple[TokenBucket, float]] = []
        worst, worst_wait, reserved = "", 0.0, 0
        for kind, bucket in buckets.items():
            if kind == "requests":
                amount = min(1.0, bucket.capacity)
            elif kind == "input-tokens":
                amount = min(float(input_tokens), bucket.capacity)
            else:
                amount = min(float(max_output_tokens), bucket.capacity)
                reserved = int(amount)
            wait = bucket.wait_for(amount, now)
            if wait > worst_wait:
                worst, worst_wait = kind, wait
            wanted.append((bucket, amount))
        if worst_wait > 0:
            return Admission(allowed=False, retry_after_s=worst_wait, limited_by=worst)
        for bucket, amount in wanted:
            bucket.take(amount, now)
        return Admission(allowed=True, reserved_output=reserved)

    def settle(self, model: str, now: float, reserved_output: int, used_output: int) -> None:
        """Charge the output tokens actually used against what :meth:`admit` reserved."""
        bucket = self._buckets_for(model, now).get("output-tokens")
        if bucket is None:
            return
        if used_output <= reserved_output:
            bucket.give_back(reserved_output - used_output, now)
        else:
            bucket.take(used_output - reserved_output, now)

    def status(self, model: str, now: float) -> list[LimitStatus]:
        """The state of each configured limit, for response headers."""
        return [
            LimitStatus(
                kind=kind,
                limit=int(bucket.capacity),
                remaining=max(0, math.floor(bucket.available(now))),
                reset_at=bucket.full_at(now),
            )
            for kind, bucket in self._buckets_for(model, now).items()
        ]
