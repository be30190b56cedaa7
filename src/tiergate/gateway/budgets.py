"""Daily spending budgets per key that hold under concurrency.

Before a request goes upstream, its maximum cost (every prompt byte a token, all of
``max_tokens`` used, at the dearest model it may reach) is reserved against the key's budget;
when the answer is in, the reservation is replaced by the real cost. Spent plus reserved never
exceeds the budget, so parallel requests cannot overspend it together. The event loop runs one
handler at a time between awaits, and reserve/settle never await, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from tiergate.gateway.errors import GatewayError
from tiergate.gateway.keys import ApiKey

SECONDS_PER_DAY = 86400


def utc_day(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_seconds))


@dataclass(slots=True)
class Reservation:
    key_id: str
    day: str
    amount_usd: float
    settled: bool = False


@dataclass(slots=True)
class DaySpend:
    spent_usd: float = 0.0
    reserved_usd: float = 0.0


class Budgets:
    def __init__(self, spent_today: Mapping[str, float] | None = None, *, now: float) -> None:
        self._day_number = int(now // SECONDS_PER_DAY)
        self._day = utc_day(now)
        self._spend: dict[str, DaySpend] = {
            key_id: DaySpend(spent) for key_id, spent in (spent_today or {}).items()
        }

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
        """The UTC day of ``now`` (today's, cached), for ledger rows."""
        if int(now // SECONDS_PER_DAY) == self._day_number:
            return self._day
        return utc_day(now)

    def reserve(self, key: ApiKey, max_cost_usd: float, now: float) -> Reservation | None:
        """Hold ``max_cost_usd`` of the key's budget, or refuse with 429 naming the budget."""
        if key.budget_usd_day is None:
            return None
        day = self._today(now)
        spend = self._spend.setdefault(key.id, DaySpend())
        if spend.spent_usd + spend.reserved_usd + max_cost_usd > key.budget_usd_day:
            raise GatewayError(
                429,
                f"key {key.name!r} is over its daily budget of ${key.budget_usd_day:.4f} "
                f"(budget_usd_day; spent ${spend.spent_usd:.4f}, "
                f"${spend.reserved_usd:.4f} held by requests in flight, "
                f"this request may cost up to ${max_cost_usd:.4f})",
            )
        spend.reserved_usd += max_cost_usd
        return Reservation(key.id, day, max_cost_usd)

    def settle(self, reservation: Reservation | None, actual_usd: float) -> None:
        """Swap the reservation for the real cost (zero when nothing was charged)."""
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        if reservation.day != self._day:
            return  # yesterday's budget is closed
        spend = self._spend.setdefault(reservation.key_id, DaySpend())
        spend.reserved_usd = max(0.0, spend.reserved_usd - reservation.amount_usd)
        spend.spent_usd += actual_usd

    def spent(self, key_id: str, now: float) -> DaySpend:
        self._today(now)
        found = self._spend.get(key_id, DaySpend())
        return DaySpend(found.spent_usd, found.reserved_usd)
