"""How the audit loop asks a Claude tier, off the hot path: one message batch, or live calls.

Both audits (the top tier) and shadow answers (the cheaper tiers) go through here, so both take
the route's ``mode``: ``batches`` (half price, the batch polled every ``poll_s``) or ``live``.
Each answer comes with what it cost, priced at the batch discount when it came from a batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from tiergate.bulk.batch_api import batch_results, batch_status, create_batch
from tiergate.core.cost import price_usage
from tiergate.tasks.base import Context, Item
from tiergate.tiers.anthropic import AnthropicTier
from tiergate.tiers.base import TierAnswer

Priced = tuple[TierAnswer, float]  # an answer and what it cost


async def ask_tier(
    tier: AnthropicTier,
    items: Sequence[Item],
    contexts: Sequence[Context],
    mode: Literal["batches", "live"],
    poll_s: float,
) -> list[Priced]:
    if mode == "live":
        answers = await asyncio.gather(
            *(tier.answer(item, context) for item, context in zip(items, contexts, strict=True))
        )
        return [(answer, answer.cost_usd) for answer in answers]
    return await ask_batch(tier, items, contexts, poll_s)


async def ask_batch(
    tier: AnthropicTier, items: Sequence[Item], contexts: Sequence[Context], poll_s: float
) -> list[Priced]:
    requests = [
        {"custom_id": f"audit-{index}", "params": tier.request(item, context)}
        for index, (item, context) in enumerate(zip(items, contexts, strict=True))
    ]
    batch_id = await create_batch(tier.transport, requests)
    while await batch_status(tier.transport, batch_id) != "ended":  # noqa: ASYNC110 (polled)
        await asyncio.sleep(poll_s)
    results = {
        line["custom_id"]: line["result"] for line in await batch_results(tier.transport, batch_id)
    }
    answers: list[Priced] = []
    for index, (item, context) in enumerate(zip(items, contexts, strict=True)):
        result = results.get(f"audit-{index}") or {"type": "missing"}
        if result.get("type") != "succeeded":
            answers.append((tier.failed(f"batch result: {result.get('type')}"), 0.0))
            continue
        answer = tier.read(item, context, result["message"], 0.0)
        answers.append((answer, price_usage(answer.usage, tier.model, batch=True).total_usd))
    return answers
