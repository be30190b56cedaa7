"""A Claude tier whose answers go through the journal, for one chunk of rows.

The engine looks tiers up by ticket, and a ticket is its text; a chunk therefore never holds two
rows with the same text (see ``chunks``), which makes text -> input line unambiguous within it.
A recorded answer is read back exactly as it was first read; a missing one is asked for
(live mode) or reported as pending (batches mode, where it will come from a message batch).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anthropic
import orjson

from tiergate.bulk.clients import NextClient
from tiergate.bulk.gate import UpstreamGate
from tiergate.bulk.journal import Journal, Recorded
from tiergate.tiers.base import Ticket, TierAnswer
from tiergate.tiers.claude import ClaudeTier, estimate_tokens

PENDING = "pending: waiting for a message batch"

Missing = Callable[[int, Ticket], Awaitable[TierAnswer]]


def recorded_answer(tier: ClaudeTier, ticket: Ticket, recorded: Recorded) -> TierAnswer:
    if recorded.message is None:
        return TierAnswer(
            tier.name, None, {}, problem=recorded.problem or "no answer", model=tier.name
        )
    return tier.read(ticket, recorded.message, recorded.latency_s)


class JournaledTier:
    def __init__(
        self,
        tier: ClaudeTier,
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

    async def answer(self, ticket: Ticket) -> TierAnswer:
        line = self._lines[ticket.text]
        recorded = self._journal.answer(line, self.name)
        if recorded is not None:
            return recorded_answer(self._tier, ticket, recorded)
        return await self._missing(line, ticket)

    async def aclose(self) -> None:
        return None  # the client belongs to the run, not to one chunk


def pending(tier: ClaudeTier) -> Missing:
    async def not_yet(line: int, ticket: Ticket) -> TierAnswer:
        return TierAnswer(tier.name, None, {}, problem=PENDING, model=tier.name)

    return not_yet


def input_tokens(tier: ClaudeTier, body: Mapping[str, Any]) -> int:
    """What a request takes from the input-token bucket: cache reads do not count."""
    messages = estimate_tokens(orjson.dumps(body["messages"]).decode())
    if tier.cacheable:
        return messages
    return messages + sum(estimate_tokens(block["text"]) for block in body["system"])


def ask_live(
    tier: ClaudeTier, clients: NextClient, gate: UpstreamGate, journal: Journal
) -> Missing:
    """Ask the model through the gate and record the answer before anyone reads it."""

    async def ask(line: int, ticket: Ticket) -> TierAnswer:
        body = tier.request(ticket)
        async with gate.admit(tier.name, input_tokens(tier, body), body["max_tokens"]) as slot:
            started = time.perf_counter()
            try:
                message = await clients().messages.create(**body)
            except anthropic.APIError as error:
                # Not journaled: a failed call is no answer, a resumed run may ask again.
                return TierAnswer(
                    tier.name,
                    None,
                    {},
                    latency_s=time.perf_counter() - started,
                    problem=f"api error: {type(error).__name__}",
                    model=tier.name,
                )
            latency = time.perf_counter() - started
            slot.used_output = message.usage.output_tokens
        recorded = journal.record_answer(line, tier.name, message.model_dump(), latency)
        return recorded_answer(tier, ticket, recorded)

    return ask
