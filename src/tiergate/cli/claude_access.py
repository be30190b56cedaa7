"""How the routing commands reach Claude (a transport): the real API, a base URL, or the emulator.

- ``--base-url URL`` (or ``ANTHROPIC_BASE_URL``): that server, with ``ANTHROPIC_API_KEY`` or a
  placeholder key;
- else, with ``ANTHROPIC_API_KEY`` set: the real API (the commands print an estimated cost first
  and honour ``--limit``);
- else, or with ``--emulate``: an emulator started in-process on 127.0.0.1, with a scenario built
  from the route's own labelled data. Its answers are emulated, not Claude's, and the commands
  say so.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tiergate.cli.access_args import latency_scale
from tiergate.core.cost import price_usage
from tiergate.core.tokens import estimate_tokens
from tiergate.core.usage import Usage
from tiergate.datasets import Example
from tiergate.routing.route import Route
from tiergate.tasks.base import Context, Item
from tiergate.transports.base import Transport
from tiergate.transports.retry import anthropic_transport

EMULATED_KEY = "sk-emulated-not-a-real-key"
ANTHROPIC_API = "https://api.anthropic.com"


@dataclass(frozen=True)
class ClaudeAccess:
    transport: Transport
    kind: str  # "real", "base_url" or "emulated"
    where: str

    @property
    def real(self) -> bool:
        return self.kind == "real"

    def banner(self) -> str:
        if self.kind == "emulated":
            return (
                "Claude answers are EMULATED (no ANTHROPIC_API_KEY, or --emulate): a local "
                f"emulator at {self.where} answers with assumed accuracies. Costs are priced from "
                "the emulated token usage; the accuracy of the Claude tiers is not Claude's."
            )
        if self.kind == "base_url":
            return f"Claude tiers call {self.where}."
        return "Claude tiers call the real Anthropic API (this costs money)."


@asynccontextmanager
async def claude_access(
    args: argparse.Namespace,
    route: Route,
    examples: Iterable[Example] | Callable[[], Iterable[Example]],
) -> AsyncIterator[ClaudeAccess]:
    """Yields a transport for the route's paid tiers; starts and stops the emulator if needed.

    ``examples`` (or a function returning them, called only if the emulator is used) are the
    labelled texts the emulator's scenario knows: every text the command will send must be
    among them, or the emulator answers it generically.
    """
    key = os.environ.get("ANTHROPIC_API_KEY")
    base_url = args.base_url or os.environ.get("ANTHROPIC_BASE_URL")
    if base_url and not args.emulate:
        transport = anthropic_transport(base_url, key or EMULATED_KEY)
        try:
            yield ClaudeAccess(transport, "base_url", base_url)
        finally:
            await transport.aclose()
        return
    if key and not args.emulate:
        transport = anthropic_transport(ANTHROPIC_API, key)
        try:
            yield ClaudeAccess(transport, "real", "api.anthropic.com")
        finally:
            await transport.aclose()
        return
    from tiergate.emulator.config import EmulatorConfig
    from tiergate.emulator.server import EmulatorServer

    known = examples() if callable(examples) else examples
    scenario = route.task.scenario(list(known), route.name)
    config = EmulatorConfig(
        seed=args.seed, scenario=scenario, latency_scale=latency_scale(args.latency)
    )
    emulator = EmulatorServer(config)
    emulator.start()
    transport = anthropic_transport(emulator.base_url, EMULATED_KEY, max_retries=4)
    try:
        yield ClaudeAccess(transport, "emulated", emulator.base_url)
    finally:
        await transport.aclose()
        emulator.stop()


def estimate_calls_usd(
    tiers: Mapping[str, Any], tickets: list[str], calls_per_tier: dict[str, int]
) -> float:
    """Rough cost of calling each tier on its share of tickets, from the prompts' length."""
    total = 0.0
    sample = tickets[: min(len(tickets), 50)]
    for name, tier in tiers.items():
        calls = calls_per_tier.get(name, 0)
        if not calls or not sample:
            continue
        prompt = sum(
            estimate_tokens(json.dumps(tier.request(Item(text), Context()))) for text in sample
        ) / len(sample)
        per_call = price_usage(Usage(input_tokens=prompt, output_tokens=60), tier.model).total_usd
        total += per_call * calls
    return total
