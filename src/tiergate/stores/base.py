"""The stores' interfaces: budgets, rate limits and keys, as the gateway sees them.

The gateway holds these and never a concrete store. In-process stores are the default; Redis
ones (``state: redis://...``) when several gateways share budgets, limits and keys. The ledger
(``tiergate.stores.ledger``) is one SQL implementation for SQLite and PostgreSQL alike.

Refusals are Anthropic-shaped 429s (:class:`Refused`) so whoever calls a store can let them
propagate to the client unchanged.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tiergate.api_errors import AnthropicError
from tiergate.limits import RateLimits, retry_after_value

SECONDS_PER_DAY = 86400


def utc_day(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_seconds))


def seconds_to_midnight(epoch_seconds: float) -> float:
    """Seconds until the next UTC day, when every daily budget starts again."""
    return SECONDS_PER_DAY - epoch_seconds % SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    hash: str
    created_at: float
    budget_usd_day: float | None = None
    rpm: int | None = None
    admin: bool = False
    revoked: bool = False


class Refused(AnthropicError):
    """A limit said no: 429 with ``retry-after``; ``final`` adds ``x-should-retry: false``."""

    def __init__(self, message: str, retry_after_s: float, *, final: bool = False) -> None:
        headers = [("retry-after", retry_after_value(retry_after_s))]
        if final:
            headers.append(("x-should-retry", "false"))
        super().__init__(429, message, headers=headers)
        self.retry_after_s = retry_after_s


class BudgetExceeded(Refused):
    """Over a daily budget. Final: retrying in seconds cannot help before the day resets, so
    the SDK (3 tries) and agents (10 tries over minutes) are told not to."""

    def __init__(self, key: ApiKey, spend: DaySpend, wanted_usd: float, now: float) -> None:
        budget = key.budget_usd_day or 0.0
        super().__init__(
            f"key {key.name!r} is over its daily budget of ${budget:.4f} "
            f"(budget_usd_day; spent ${spend.spent_usd:.4f}, "
            f"${spend.reserved_usd:.4f} held by requests in flight, "
            f"this request may cost up to ${wanted_usd:.4f}; the budget resets at 00:00 UTC)",
            seconds_to_midnight(now),
            final=True,
        )


@dataclass(slots=True)
class Reservation:
    key_id: str
    day: str
    amount_usd: float
    settled: bool = False
    nano: int = 0  # the amount in nano-dollars, for stores that count in them


@dataclass(slots=True)
class DaySpend:
    spent_usd: float = 0.0
    reserved_usd: float = 0.0


class BudgetStore(ABC):
    """Daily spending budgets per key: atomic reserve, then settle with the real cost."""

    @abstractmethod
    async def reserve(
        self, key: ApiKey, max_cost_usd: float, now: float, *, minimum_usd: float | None = None
    ) -> Reservation | None:
        """Hold ``max_cost_usd`` of the key's budget (None: the key has no budget).

        With ``minimum_usd``, hold as much as the budget affords between the two instead of
        refusing (the caller then clamps the request to ``reservation.amount_usd``). Raises
        :class:`BudgetExceeded` when not even the minimum fits.
        """

    @abstractmethod
    def settle(self, reservation: Reservation | None, actual_usd: float) -> None:
        """Swap the reservation for the real cost (zero when nothing was charged)."""

    @abstractmethod
    async def spent(self, key_id: str, now: float) -> DaySpend:
        """Today's settled spend and what requests in flight hold."""

    async def hold(self, key: ApiKey, usd: float, now: float) -> Reservation | None:
        """Reserve ``usd`` and count it as spent at once: a hold that outlives the request
        (a batch's worst case, until its results are read), released with :meth:`charge`.
        Raises :class:`BudgetExceeded` when it does not fit."""
        reservation = await self.reserve(key, usd, now)
        self.settle(reservation, usd)
        return reservation

    @abstractmethod
    async def charge(self, key_id: str, day: str, delta_usd: float, now: float) -> None:
        """Add ``delta_usd`` to the key's settled spend on ``day`` whatever the budget says:
        money already spent, or (negative) the unused part of a hold given back. A day that
        is over (not ``now``'s) is closed: its budget no longer admits anything."""

    @abstractmethod
    async def claim(self, name: str) -> bool:
        """True for the first caller of ``name`` among every gateway sharing the store (so a
        batch's results are metered, and its hold released, once)."""

    def day_of(self, now: float) -> str:
        """The UTC day of ``now``, for ledger rows."""
        return utc_day(now)

    async def start(self) -> None:
        """Begin background work (a store that needs none does nothing)."""
        return

    async def close(self) -> None:
        """Hand back what this process holds and stop."""
        return


@dataclass(frozen=True, slots=True)
class Grant:
    model: str
    reserved_output: int


class UpstreamLimits(ABC):
    """The organisation's per-model RPM / ITPM / OTPM, as the upstream client uses them."""

    @abstractmethod
    async def acquire(self, model: str, input_tokens: int, max_tokens: int) -> Grant:
        """Room for one request, waiting up to the queue time; :class:`Refused` after."""

    @abstractmethod
    def settle(self, grant: Grant, used_output: int) -> None:
        """Charge the output really used against the ``max_tokens`` reserved."""

    @abstractmethod
    def observe(self, model: str, status: int, headers: Mapping[str, str]) -> None:
        """Adapt to the upstream's answer: pause a model while it says there is no room."""

    async def start(self) -> None:
        """Begin background work (a store that needs none does nothing)."""
        return

    async def close(self) -> None:
        """Hand back what this process holds and stop."""
        return


class KeyRates(ABC):
    """Requests per minute per key, for keys created with ``--rpm``."""

    @abstractmethod
    async def check(self, key: ApiKey) -> None:
        """Count one request, or raise :class:`Refused`."""

    async def start(self) -> None:
        """Begin background work (a store that needs none does nothing)."""
        return

    async def close(self) -> None:
        """Hand back what this process holds and stop."""
        return


class KeyStoreError(ValueError):
    """A key store that cannot be read or changed."""


class KeyStore(ABC):
    """API keys, stored hashed. ``authenticate`` is what every request calls: from memory."""

    @abstractmethod
    def authenticate(self, presented: str) -> ApiKey | None: ...

    @abstractmethod
    def list(self) -> tuple[ApiKey, ...]: ...

    @abstractmethod
    def create(
        self,
        name: str,
        *,
        budget_usd_day: float | None = None,
        rpm: int | None = None,
        admin: bool = False,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not kept anywhere."""

    @abstractmethod
    def revoke(self, id_or_name: str) -> ApiKey: ...

    @abstractmethod
    async def refresh(self) -> bool:
        """Pick up keys created or revoked elsewhere; True when something changed."""

    async def close(self) -> None:
        """Release connections."""
        return


@dataclass(frozen=True)
class StateSettings:
    state: str  # "memory" or a Redis URL
    keys_path: Path
    default_limits: RateLimits
    per_model_limits: Mapping[str, RateLimits]
    queue_s: float


@dataclass
class Stores:
    """The stores one gateway uses, started and closed together."""

    keys: KeyStore
    budgets: BudgetStore
    key_rates: KeyRates
    limits: UpstreamLimits
    release: Callable[[], Awaitable[None]] | None = None  # a shared connection, last

    async def start(self) -> None:
        await self.budgets.start()
        await self.key_rates.start()
        await self.limits.start()

    async def close(self) -> None:
        await self.budgets.close()
        await self.key_rates.close()
        await self.limits.close()
        await self.keys.close()
        if self.release is not None:
            await self.release()
