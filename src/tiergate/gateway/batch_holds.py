"""A batch's worst case held against its key's budget from creation until its results are read.

A batch runs for hours; what the key spends meanwhile must not use the room the batch may need.
So creating one *holds* its worst case (every request at ``max_tokens``, batch prices, content
counted as for Messages) through the budget store, atomically with every other reservation
(in-process, or across gateways through Redis), and counts it as spent on the day of creation.
The hold is durable: an intent in the journal before the upstream call, then a ledger row
(``outcome: batch_hold``, ``request_id`` ``BATCH_ID#hold``, costing the worst case), so budgets
loaded at start-up include it and a ``kill -9`` at any moment leaves it (or, before the batch
existed, an ``unsettled`` row of the same amount).

When the results are first read (or the gateway sees the batch ended: retrieved, canceled,
before it is deleted), the results are metered and a ``batch_hold_released`` row
(``BATCH_ID#release``) gives the hold back, so the day's spend is what the batch really cost.
The budget store's :meth:`~tiergate.stores.base.BudgetStore.claim` makes that happen once
among every gateway. The batch is charged to the day it was created: that day's budget
admitted it, and charging a later day could take that day past its budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from tiergate.gateway.costs import ONE_MILLION, RequestBound
from tiergate.gateway.services import Request, Services
from tiergate.stores.base import BudgetExceeded
from tiergate.stores.journal import Intent
from tiergate.stores.ledger import requests_table

HOLD = "batch_hold"
RELEASED = "batch_hold_released"
OUTCOMES = (HOLD, RELEASED)
# "#" is not allowed in a custom_id, so these never meet a result's ``BATCH_ID/CUSTOM_ID``.
HOLD_SUFFIX, RELEASE_SUFFIX = "#hold", "#release"


def hold_id(batch_id: str) -> str:
    return batch_id + HOLD_SUFFIX


def release_id(batch_id: str) -> str:
    return batch_id + RELEASE_SUFFIX


def claim_name(batch_id: str) -> str:
    return f"batch-results:{batch_id}"


@dataclass(frozen=True)
class Sized:
    """One request of a batch: its bound at batch prices, linear in ``max_tokens`` (a batch
    request has one model), and how low ``max_tokens`` may be clamped."""

    fixed_usd: float
    per_token_usd: float
    max_tokens: int
    floor: int

    @classmethod
    def of(cls, bound: RequestBound, share: float, max_tokens: int, floor: int) -> Sized:
        fixed = bound.usd(0) * share
        per_token = (bound.usd(ONE_MILLION) * share - fixed) / ONE_MILLION
        return cls(fixed, per_token, max_tokens, min(floor, max_tokens))

    def tokens(self, cap: int | None) -> int:
        return self.max_tokens if cap is None else min(self.max_tokens, max(self.floor, cap))

    def usd(self, cap: int | None) -> float:
        return self.fixed_usd + self.per_token_usd * self.tokens(cap)


def worst_usd(sizes: Sequence[Sized], cap: int | None = None) -> float:
    """The batch's worst case, every request at ``max_tokens`` (or at ``cap``, clamped)."""
    return math.fsum(size.usd(cap) for size in sizes)


def cap_for(sizes: Sequence[Sized], usd: float) -> int:
    """The largest ``max_tokens`` cap whose clamped worst case fits in ``usd`` (0: every
    request at its floor, which the caller has made sure fits)."""
    low, high = 0, max(size.max_tokens for size in sizes)
    while low < high:
        middle = (low + high + 1) // 2
        # A hair under: float rounding must never round a hold up past what was reserved.
        if worst_usd(sizes, middle) <= usd * (1 - 1e-9):
            low = middle
        else:
            high = middle - 1
    return low


async def take(
    services: Services, request: Request, sizes: Sequence[Sized], model: str
) -> tuple[Intent, int | None]:
    """Hold the batch's worst case, then journal the intent: from here on the upstream may
    create (and bill) the batch. Returns the intent (its ``reserved_usd`` is the hold) and the
    ``max_tokens`` cap, if clamped.

    When the worst case does not fit, ``budget.policy`` decides, as for a message: ``refuse``
    raises :class:`~tiergate.stores.base.BudgetExceeded`; ``clamp`` lowers every request's
    ``max_tokens`` to one cap, the highest whose worst case the budget left covers (never
    below a request's floor: ``budget.min_tokens``, its own ``max_tokens`` or its thinking
    budget plus one), and refuses only if the floors do not fit.
    """
    held, cap = worst_usd(sizes), None
    try:
        await services.budgets.hold(request.key, held, request.at)
    except BudgetExceeded:
        if services.config.budget.policy == "refuse":
            raise
        reservation = await services.budgets.reserve(
            request.key, held, request.at, minimum_usd=worst_usd(sizes, 0)
        )
        if reservation is not None and reservation.amount_usd < held:
            cap = cap_for(sizes, reservation.amount_usd)
            held = worst_usd(sizes, cap)
        services.budgets.settle(reservation, held)  # what is held counts as spent
    day = services.budgets.day_of(request.at)
    intent = Intent(request.request_id, request.at, day, request.key.id, "batch", model, held)
    services.ledger.intend(intent)
    return intent, cap


async def give_back(services: Services, request: Request, worst_usd: float) -> None:
    """No batch was created: the hold goes back whole and the intent is void."""
    day = services.budgets.day_of(request.at)
    await services.budgets.charge(request.key.id, day, -worst_usd, request.at)
    services.ledger.void(request.request_id)


def open_holds(engine: Engine, since: str, until: str, key_id: str | None) -> dict[str, Any]:
    """``/v1/usage``'s ``batch_holds``: holds of batches whose results were not read yet
    (counted against their day's budget, apart from what was spent)."""
    table = requests_table
    statement = select(table.c.request_id, table.c.key_id, table.c.day, table.c.cost_usd).where(
        table.c.outcome.in_(OUTCOMES), table.c.day >= since, table.c.day <= until
    )
    if key_id is not None:
        statement = statement.where(table.c.key_id == key_id)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(statement)]
    released = {row["request_id"].removesuffix(RELEASE_SUFFIX) for row in rows if _is(row, False)}
    batches = [
        {
            "batch_id": batch_id,
            "key_id": row["key_id"],
            "day": row["day"],
            "held_usd": round(row["cost_usd"], 10),
        }
        for row in rows
        if _is(row, True)
        and (batch_id := row["request_id"].removesuffix(HOLD_SUFFIX)) not in released
    ]
    return {
        "open": len(batches),
        "held_usd": round(sum(batch["held_usd"] for batch in batches), 10),
        "batches": batches,
    }


def _is(row: Mapping[str, Any], hold: bool) -> bool:
    return str(row["request_id"]).endswith(HOLD_SUFFIX if hold else RELEASE_SUFFIX)
