"""Shadow mode: the top tier serves; the cheaper tiers answer in shadow, off the hot path.

A route with ``shadow: RATE`` in its audit settings is served by its top tier alone (calibrated
or not: an uncalibrated route's top tier accepts its own answers), and for that share of the
requests every cheaper tier answers too, in the background: through Message Batches (half
price) or live, as the route's audit ``mode`` says, metered as shadow spend. Each comparison
is an ``audits`` row of kind ``shadow``: the text, the cheaper tiers' answers, the top tier's
answer as the reference. ``tiergate calibrate ROUTE --from-audit GATEWAY.yaml`` reads them
with the audits: the top tier's answers stand in for labels, so a team reaches a certified
ladder from its own unlabelled traffic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from tiergate.audit.asking import Priced
from tiergate.calibration import Calibrator, PerLabelThresholds
from tiergate.calibration.thresholds import ThresholdResult
from tiergate.core.prices import PriceBook
from tiergate.routing.engine import Router, local_answer
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import LOCAL, Route
from tiergate.routing.runtime import (
    POLICY_FILE,
    load_calibration,
    load_local,
    paid_tiers,
    uses_local_model,
)
from tiergate.tasks.base import Context, Item
from tiergate.tiers.anthropic import AnthropicTier
from tiergate.tiers.base import Tier
from tiergate.transports.base import Transport

# A constant P(correct) of 1/2 (no features), accepted by a threshold of 0: the top tier's own
# answer stands, as it would at the top of a ladder with nothing above it.
_ACCEPT_ALL = TierPolicy(
    Calibrator(("shadow",), (0.0,), (1.0,), (0.0,), 0.0),
    PerLabelThresholds(ThresholdResult(0.0, 1.0, 1.0, 1.0, 0, 0, 1.0, 0)),
)
_SKIPPED = replace(_ACCEPT_ALL, skipped=True)
# How a Claude tier is asked off the hot path (the audit loop's: a batch, or live calls).
AskTier = Callable[[AnthropicTier, Sequence[Item], Sequence[Context]], Awaitable[list[Priced]]]


def shadow_router(
    route: Route, book: PriceBook, transport: Transport, *, concurrency: int = 32
) -> Router:
    """The route served by its top tier: its calibrated policy if it has one, else accept-all."""
    local = load_local(route) if uses_local_model(route) else None
    tiers = paid_tiers(route, book, transport, local)
    top = route.tiers[-1]
    if (route.artifacts / POLICY_FILE).exists():
        calibration = load_calibration(route)
        route = replace(route, error_budget=calibration.error_budget)
        top_policy = replace(calibration.policies.get(top, _ACCEPT_ALL), skipped=False)
    else:
        top_policy = _ACCEPT_ALL
    policies = {name: _SKIPPED for name in route.tiers} | {top: top_policy}
    return Router(route, tiers, policies, local, concurrency=concurrency)


async def shadow_answers(
    router: Router, texts: Sequence[str], contexts: Sequence[Context], ask: AskTier
) -> list[dict[str, Priced]]:
    """Every cheaper tier's answer for each text, with its cost: the local one from its view
    (free), each Claude tier's through ``ask`` (one message batch per tier, or live calls, as
    the route's audit ``mode`` says), the tiers at once."""
    items = [Item(text) for text in texts]

    async def one_tier(name: str) -> list[Priced]:
        if name == LOCAL and LOCAL not in router.tiers:
            return [(local_answer(context), 0.0) for context in contexts]
        tier: Tier = router.tiers[name]
        if isinstance(tier, AnthropicTier):
            return await ask(tier, items, contexts)
        answers = [await tier.answer(i, c) for i, c in zip(items, contexts, strict=True)]
        return [(answer, answer.cost_usd) for answer in answers]

    cheaper = list(router.route.tiers[:-1])
    by_tier = await asyncio.gather(*(one_tier(name) for name in cheaper))
    return [
        {name: answers[row] for name, answers in zip(cheaper, by_tier, strict=True)}
        for row in range(len(texts))
    ]


def shadow_payloads(answer: str) -> dict[str, Any]:
    """A shadow record's cheaper answers, by tier (its ``answer`` column holds each tier's
    answer and cost)."""
    return {tier: entry["answer"] for tier, entry in json.loads(answer).items()}


def shadow_summary(rows: Sequence[tuple[dict[str, Any], Any]], agree: Any) -> dict[str, Any]:
    """Per cheaper tier: how often it agreed with the top tier (rows: answers, reference)."""
    counts: dict[str, list[int]] = {}
    for answers, reference in rows:
        for tier, payload in answers.items():
            seen = counts.setdefault(tier, [0, 0])
            seen[1] += 1
            if payload is not None and agree(payload, reference):
                seen[0] += 1
    return {
        tier: {"compared": total, "agreed": agreed, "agreement": agreed / total if total else None}
        for tier, (agreed, total) in counts.items()
    }
