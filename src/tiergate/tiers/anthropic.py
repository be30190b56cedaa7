"""A model behind the Anthropic Messages API, answering a task's items through a transport.

The task builds the request and reads the answer (``tasks/``); the transport carries it
(``transports/``: retries, fallback, limits, journals are wrappers around it). Anything unusable
(an answer the task cannot use, malformed output, a refusal, an API error after the transport's
retries) comes back as an answer with a ``problem``, which the engine escalates, never returns.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

import orjson

from tiergate.core.cost import price_usage
from tiergate.core.prices import ModelPrice
from tiergate.core.tokens import estimate_tokens
from tiergate.core.usage import Usage
from tiergate.tasks.base import Context, Item, Task
from tiergate.tiers.base import TierAnswer
from tiergate.transports.base import MESSAGES, ApiCall, ApiReply, Transport, Unreachable


class AnthropicTier:
    """One Claude model answering one task."""

    def __init__(self, model: ModelPrice, task: Task, transport: Transport) -> None:
        self.model = model
        self.task = task
        self.transport = transport

    @classmethod
    def create(cls, model: ModelPrice, task: Task, transport: Transport) -> AnthropicTier:
        return cls(model, task, transport)

    @property
    def name(self) -> str:
        return self.model.name

    def request(self, item: Item, context: Context) -> dict[str, Any]:
        """The Messages API body for one item (also a batch request's params)."""
        return self.task.request(self.model, item, context)

    def call(self, item: Item, context: Context, *, key: str | None = None) -> ApiCall:
        body = self.request(item, context)
        return ApiCall(
            MESSAGES,
            body,
            key=key,
            input_tokens=input_tokens(body),
            max_tokens=int(body.get("max_tokens", 0)),
        )

    async def answer(self, item: Item, context: Context) -> TierAnswer:
        started = time.perf_counter()
        try:
            reply = await self.transport.send(self.call(item, context))
        except Unreachable:
            return self.failed("api error: unreachable", time.perf_counter() - started)
        if not reply.ok:
            return self.failed(api_problem(reply), time.perf_counter() - started)
        return self.read(item, context, reply.json(), time.perf_counter() - started)

    def failed(self, problem: str, latency_s: float = 0.0) -> TierAnswer:
        return TierAnswer(
            self.name, None, {}, latency_s=latency_s, problem=problem, model=self.name
        )

    def read(
        self, item: Item, context: Context, message: Mapping[str, Any], latency_s: float
    ) -> TierAnswer:
        """A Messages API response (as a dict) as an answer; shared with batch results."""
        usage = Usage.from_api(message.get("usage") or {})
        cost = price_usage(usage, self.model).total_usd
        reading = self.task.read(self.model, message)
        if not reading.usable:
            return TierAnswer(
                self.name,
                None,
                {},
                usage,
                cost,
                latency_s,
                problem=reading.problem or "no answer",
                model=self.name,
            )
        return TierAnswer(
            self.name,
            reading.payload,
            self.task.features(reading, item, context),
            usage,
            cost,
            latency_s,
            stated_confidence=reading.stated_confidence,
            reason=reading.reason,
            model=str(message.get("model") or self.name),
        )

    async def aclose(self) -> None:
        return None  # the transport belongs to whoever made it


def api_problem(reply: ApiReply) -> str:
    """An error reply as a problem line: the status and the API's error type."""
    kind = "error"
    with contextlib.suppress(ValueError, AttributeError):
        kind = str(reply.json().get("error", {}).get("type") or kind)
    return f"api error: {reply.status} {kind}"


def input_tokens(body: Mapping[str, Any]) -> int:
    """What a request takes from the input-token bucket: a cached system prompt does not count
    (cache reads are free of ITPM), the messages do."""
    messages = estimate_tokens(orjson.dumps(body.get("messages") or []).decode())
    system = body.get("system") or []
    cached = any(isinstance(block, dict) and "cache_control" in block for block in system)
    if cached or not isinstance(system, list):
        return messages
    return messages + sum(estimate_tokens(str(block.get("text", ""))) for block in system)
