"""In-process stores, the default: budgets, upstream limits and key RPM for one gateway.

The event loop runs one handler at a time between awaits, and nothing here awaits between
checking and taking, so no lock is needed and parallel requests cannot overspend together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from tiergate.limits import ModelLimiter, RateLimits, TokenBucket
from tiergate.stores.base import (
    SECONDS_PER_DAY,
    ApiKey,
    BudgetExceeded,
    BudgetStore,
    DaySpend,
    Grant,
    KeyRates,
    Refused,
    Reservation,
    UpstreamLimits,
    utc_day,
)

Clock = Callable[[], float]
REMAINING_HEADERS = (
    "anthropic-ratelimit-requests",
    "anthropic-ratelimit-input-tokens",
    "anthropic-ratelimit-output-tokens",
)
REMAINING_NAMES = tuple((prefix + "-remaining", prefix + "-reset") for prefix in REMAINING_HEADERS)


class MemoryBudgets(BudgetStore):
    """Budgets start each UTC day from the ledger's spend for that day (``spent_today``)."""

    def __init__(self, spent_today: Mapping[str, float] | None = None, *, now: float) -> None:
        self._day_number = int(now // SECONDS_PER_DAY)
        self._day = utc_day(now)
        self._spend: dict[str, DaySpend] = {
            key_id: DaySpend(spent) for key_id, spent in (spent_today or {}).items()
        }
        self._claimed: set[str] = set()

    def _today(self, now: float) -> str:
        # Formatting a date costs more than the rest of a reservation: only on a new day.
        day_number = int(now // SECONDS_PER_DAY)
        # Only forwards: a request stamped before midnight but reserving after it (a slow
        # upload) must not take the day back and wipe today's spend for every key.
        if day_number > self._day_number:  # a new day starts every budget from zero
            self._day_number, self._day = day_number, utc_day(now)
            self._spend = {}
        return self._day

    def day_of(self, now: float) -> str:
        if int(now // SECONDS_PER_DAY) == self._day_number:
            return self._day
        return utc_day(now)

    async def reserve(
        self, key: ApiKey, max_cost_usd: float, now: float, *, minimum_usd: float | None = None
    ) -> Reservation | None:
        return self.reserve_now(key, max_cost_usd, now, minimum_usd=minimum_usd)

    def reserve_now(
        self, key: ApiKey, max_cost_usd: float, now: float, *, minimum_usd: float | None = None
    ) -> Reservation | None:
        """:meth:`reserve` without awaiting, for callers outside a coroutine."""
        if key.budget_usd_day is None:
            return None
        day = self._today(now)
        spend = self._spend.setdefault(key.id, DaySpend())
        room = key.budget_usd_day - spend.spent_usd - spend.reserved_usd
        amount = max_cost_usd if minimum_usd is None else min(max_cost_usd, room)
        if amount > room or (minimum_usd is not None and amount < minimum_usd):
            raise BudgetExceeded(key, DaySpend(spend.spent_usd, spend.reserved_usd), amount, now)
        spend.reserved_usd += amount
        return Reservation(key.id, day, amount)

    def settle(self, reservation: Reservation | None, actual_usd: float) -> None:
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        if reservation.day != self._day:
            return  # yesterday's budget is closed
        spend = self._spend.setdefault(reservation.key_id, DaySpend())
        spend.reserved_usd = max(0.0, spend.reserved_usd - reservation.amount_usd)
        spend.spent_usd += actual_usd

    async def spent(self, key_id: str, now: float) -> DaySpend:
        self._today(now)
        found = self._spend.get(key_id, DaySpend())
        return DaySpend(found.spent_usd, found.reserved_usd)

    async def charge(self, key_id: str, day: str, delta_usd: float, now: float) -> None:
        if day != self._today(now):
            return  # that day's budget is closed
        spend = self._spend.setdefault(key_id, DaySpend())
        spend.spent_usd = max(0.0, spend.spent_usd + delta_usd)

    async def claim(self, name: str) -> bool:
        if name in self._claimed:
            return False
        self._claimed.add(name)
        return True


class MemoryUpstreamLimits(UpstreamLimits):
    """Per-model buckets (``tiergate.limits.ModelLimiter``) mirroring the organisation's limits.

    A request that does not fit waits a little (``queue_s``) before it is refused: a short burst
    is smoothed instead of bounced. The upstream's own view wins when it is stricter: a 429 with
    ``retry-after``, or an ``anthropic-ratelimit-*-remaining: 0`` header, pauses that model
    until the upstream says it has room again (other gateways or apps may share the org).
    """

    def __init__(
        self,
        default: RateLimits,
        per_model: Mapping[str, RateLimits],
        *,
        queue_s: float,
        canonical: Callable[[str], str] = str,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        # Buckets are per model, whichever alias a request used (from the price book).
        self._canonical = canonical
        self._limiter = ModelLimiter(
            default, {canonical(name): limits for name, limits in per_model.items()}
        )
        self._queue_s = queue_s
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
                raise Refused(
                    f"{model}: over the configured {limited_by} limit for this model "
                    f"(room again in {wait:.1f} s)",
                    wait,
                )
            await asyncio.sleep(wait)

    def settle(self, grant: Grant, used_output: int) -> None:
        self._limiter.settle(grant.model, self._clock(), grant.reserved_output, used_output)

    def observe(self, model: str, status: int, headers: Mapping[str, str]) -> None:
        pause = pause_from(status, headers, self._wall_clock())
        if pause is not None:
            self.pause(self._canonical(model), pause)

    def pause(self, model: str, seconds: float) -> None:
        if seconds > 0:
            until = self._clock() + seconds
            self._paused_until[model] = max(until, self._paused_until.get(model, 0.0))


def pause_from(status: int, headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds the upstream asks us to leave a model alone, if it asks."""
    if status == 429:
        return _seconds(headers.get("retry-after"))
    longest: float | None = None
    for remaining, reset_name in REMAINING_NAMES:
        if headers.get(remaining) == "0":
            reset = _epoch(headers.get(reset_name))
            if reset is not None:
                longest = max(longest or 0.0, reset - wall_now)
    return longest


class MemoryKeyRates(KeyRates):
    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    async def check(self, key: ApiKey) -> None:
        if key.rpm is None:
            return
        now = self._clock()
        bucket = self._buckets.get(key.id)
        if bucket is None or bucket.capacity != key.rpm:
            bucket = self._buckets[key.id] = TokenBucket.per_minute(key.rpm, now)
        if not bucket.try_take(1, now):
            raise key_rpm_refusal(key, bucket.wait_for(1, now))


def key_rpm_refusal(key: ApiKey, wait_s: float) -> Refused:
    return Refused(f"key {key.name!r} is over its limit of {key.rpm} requests per minute", wait_s)


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
