"""A request's money on its way through: reserve (or clamp), the durable intent, the row.

Before the upstream call: the budget store holds the request's bound, and the ledger's journal
records the intent (so a ``kill -9`` from here on still charges it). If the budget left cannot
cover ``max_tokens``, the configured policy decides: ``clamp`` lowers ``max_tokens`` to what
the budget affords (at least ``budget.min_tokens``, or the request's own ``max_tokens`` if
smaller), ``refuse`` refuses it whole. Clamping is the default because a bound is a worst case:
an agent whose key holds $2 a day asking Opus for 128,000 tokens (a $3.20 bound) would never
run at all, although its answers cost cents; clamped, it runs, the answer may end with
``stop_reason: max_tokens``, and spend still never exceeds the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiergate.gateway.costs import RequestBound
from tiergate.gateway.services import Request, Services
from tiergate.stores.base import BudgetExceeded, Reservation
from tiergate.stores.journal import Intent

CLAMPED_HEADER = "x-tiergate-max-tokens-clamped"


@dataclass
class Held:
    """What a request holds: its reservation, and ``max_tokens`` if it was clamped."""

    reservation: Reservation | None
    bound_usd: float
    clamped_to: int | None = None


async def reserve(
    services: Services, request: Request, bound: RequestBound, body: dict[str, Any]
) -> Held:
    max_tokens = int(body["max_tokens"])
    wanted = bound.usd(max_tokens)
    policy = services.config.budget
    try:
        reservation = await services.budgets.reserve(request.key, wanted, request.at)
        return Held(reservation, wanted)
    except BudgetExceeded:
        # The rare path: only now is the clamp's floor worth pricing.
        if policy.policy == "refuse":
            raise
    floor = min(max_tokens, max(policy.min_tokens, thinking_floor(body)))
    reservation = await services.budgets.reserve(
        request.key, wanted, request.at, minimum_usd=bound.usd(floor)
    )
    if reservation is None or reservation.amount_usd >= wanted:
        return Held(reservation, wanted)
    affordable = max(floor, min(max_tokens, bound.tokens_for(reservation.amount_usd)))
    return Held(reservation, reservation.amount_usd, affordable)


def thinking_floor(body: dict[str, Any]) -> int:
    """Extended thinking needs ``max_tokens`` above its budget, or the API refuses the body."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and isinstance(thinking.get("budget_tokens"), int):
        return int(thinking["budget_tokens"]) + 1
    return 1


def intend(services: Services, request: Request, route: str, model: str, held: Held) -> None:
    """The durable record that this request may now be billed (see tiergate.stores.journal)."""
    services.ledger.intend(
        Intent(
            request.request_id,
            request.at,
            services.budgets.day_of(request.at),
            request.key.id,
            route,
            model,
            held.bound_usd,
        )
    )
