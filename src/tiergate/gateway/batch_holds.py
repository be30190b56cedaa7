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

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, select

from tiergate.gateway.services import Request, Services
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


async def take(services: Services, request: Request, worst_usd: float, model: str) -> None:
    """Hold the worst case (:class:`~tiergate.stores.base.BudgetExceeded` if it does not fit),
    then journal the intent: from here on the upstream may create (and bill) the batch."""
    await services.budgets.hold(request.key, worst_usd, request.at)
    day = services.budgets.day_of(request.at)
    services.ledger.intend(
        Intent(request.request_id, request.at, day, request.key.id, "batch", model, worst_usd)
    )


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
