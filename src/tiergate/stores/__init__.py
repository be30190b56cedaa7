"""Budgets, rate limits, keys and the ledger behind small interfaces (``base.py``).

In-process stores and a key file by default; Redis (``redis_state.py``) when several gateways
share them. The ledger is SQL: SQLite by default, PostgreSQL by URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from tiergate.stores.base import (
    ApiKey,
    BudgetExceeded,
    BudgetStore,
    DaySpend,
    Grant,
    KeyRates,
    KeyStore,
    KeyStoreError,
    Refused,
    Reservation,
    StateSettings,
    Stores,
    UpstreamLimits,
    utc_day,
)
from tiergate.stores.keyfile import FileKeyStore
from tiergate.stores.memory import MemoryBudgets, MemoryKeyRates, MemoryUpstreamLimits


def open_key_store(state: str, keys_path: Path) -> KeyStore:
    """The key file, or the keys in Redis when the state is shared (the CLI's store too)."""
    if state == "memory":
        return FileKeyStore(keys_path)
    from tiergate.stores.redis_state import RedisKeyStore

    return RedisKeyStore(state)


def open_stores(
    settings: StateSettings,
    spent_today: Mapping[str, float],
    now: float,
    canonical: Callable[[str], str],
) -> Stores:
    if settings.state == "memory":
        return Stores(
            keys=FileKeyStore(settings.keys_path),
            budgets=MemoryBudgets(spent_today, now=now),
            key_rates=MemoryKeyRates(),
            limits=MemoryUpstreamLimits(
                settings.default_limits,
                settings.per_model_limits,
                queue_s=settings.queue_s,
                canonical=canonical,
            ),
        )
    from tiergate.stores.redis_state import open_redis_stores

    return open_redis_stores(settings, spent_today, now, canonical)


__all__ = [
    "ApiKey",
    "BudgetExceeded",
    "BudgetStore",
    "DaySpend",
    "FileKeyStore",
    "Grant",
    "KeyRates",
    "KeyStore",
    "KeyStoreError",
    "MemoryBudgets",
    "MemoryKeyRates",
    "MemoryUpstreamLimits",
    "Refused",
    "Reservation",
    "StateSettings",
    "Stores",
    "UpstreamLimits",
    "open_key_store",
    "open_stores",
    "utc_day",
]
