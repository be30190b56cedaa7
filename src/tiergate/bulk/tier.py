"""A paid tier whose answers go through the journal, for one chunk of rows.

The engine looks tiers up by item, and an item is its text; a chunk therefore never holds two
rows with the same text (see ``chunks``), which makes text -> input line unambiguous within it.
A recorded answer is read back exactly as it was first read; a missing one is asked for
(live mode) or reported as pending (batches mode, where it will come from a message batch).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from tiergate.bulk.gate import UpstreamGate
from tiergate.bulk.journal import Journal, Recorded
from tiergate.tasks.base import Context, Item
from tiergate.tiers.anthropic import AnthropicTier, api_problem
from tiergate.tiers.base import TierAnswer
from tiergate.transports.base import Transport, Unreachable

PENDING = "pending: waiting for a message batch"

Missing = Callable[[int, Item, Context], Awaitable[TierAnswer]]


def recorded_answer(
    tier: AnthropicTier, item: Item, context: Context, recorded: Recorded
) -> TierAnswer:
    if recorded.message is None:
        return tier.failed(recorded.problem or "no answer")
    return tier.read(item, context, recorded.message, recorded.latency_s)


class JournaledTier:
    def __init__(
        self,
        tier: AnthropicTier,
        journal: Journal,
        lines_by_text: Mapping[str, int],
        missing: Missing,
    ) -> None:
        self._tier = tier
        self._journal = journal
        self._lines = lines_by_text
        self._missing = missing

    @property
    def name(self) -> str:
        return self._tier.name

    async def answer(self, item: Item, context: Context) -> TierAnswer:
        line = self._lines[item.text]
        recorded = self._journal.answer(line, self.name)
        if recorded is not None:
            return recorded_answer(self._tier, item, context, recorded)
        return await self._missing(line, item, context)

    async def aclose(self) -> None:
        return None  # the transport belongs to the run, not to one chunk


def pending(tier: AnthropicTier) -> Missing:
    async def not_yet(line: int, item: Item, context: Context) -> TierAnswer:
        return tier.failed(PENDING)

    return not_yet


def ask_live(
    tier: AnthropicTier, transport: Transport, gate: UpstreamGate, journal: Journal
) -> Missing:
    """Ask the model through the gate and record the answer before anyone reads it."""

    async def ask(line: int, item: Item, context: Context) -> TierAnswer:
        call = tier.call(item, context)
        async with gate.admit(tier.name, call.input_tokens, call.max_tokens) as slot:
            started = time.perf_counter()
            try:
                reply = await transport.send(call)
            except Unreachable:
                # Not journaled: a failed call is no answer, a resumed run may ask again.
                return tier.failed("api error: unreachable", time.perf_counter() - started)
            latency = time.perf_counter() - started
            if not reply.ok:
                return tier.failed(api_problem(reply), latency)
            message = reply.json()
            slot.used_output = int((message.get("usage") or {}).get("output_tokens", 0))
        recorded = journal.record_answer(line, tier.name, message, latency)
        return recorded_answer(tier, item, context, recorded)

    return ask
