"""A Claude model as a classification tier, through the official ``anthropic`` SDK.

The structured answer (label from the label set, stated confidence, reason) comes through a
forced tool call where the model accepts forced ``tool_choice``, else through
``output_config.format`` (a JSON schema): the price book says which. Anything unusable (a label
outside the set, malformed output, a refusal, an API error after the SDK's own retries) comes
back as an answer with a ``problem``, which the engine escalates, never returns.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import anthropic

from tiergate.core.cost import price_usage
from tiergate.core.prices import ModelPrice
from tiergate.core.usage import Usage
from tiergate.tiers.base import Ticket, TierAnswer, agreement_features
from tiergate.tiers.prompt import (
    TOOL_NAME,
    Label,
    answer_schema,
    examples_block,
    instructions,
    taxonomy,
    ticket_message,
)

# Claude's tokenizer averages about 3.5 characters a token on English text; the padding aims 10%
# over the minimum so that an estimate on the low side still reaches it.
CHARACTERS_PER_TOKEN = 3.5
CACHE_MARGIN = 1.10


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARACTERS_PER_TOKEN)


def build_system_prefix(
    model: ModelPrice,
    labels: Sequence[Label],
    task_description: str,
    static_examples: Sequence[tuple[str, str]],
) -> tuple[str, bool]:
    """The stable system prompt, and whether it is long enough to be cached on ``model``."""
    text = instructions(task_description) + "\n\n" + taxonomy(labels)
    goal = model.min_cacheable_tokens * CACHE_MARGIN
    if estimate_tokens(text) >= goal:
        return text, True
    chosen: list[tuple[str, str]] = []
    title = "\n\nExamples of labelled tickets:"
    for example in static_examples:
        chosen.append(example)
        if estimate_tokens(text + examples_block(title, chosen)) >= goal:
            return text + examples_block(title, chosen), True
    if chosen:
        text += examples_block(title, chosen)
    return text, False


class ClaudeTier:
    """Classifies a ticket with one Claude model."""

    def __init__(
        self,
        model: ModelPrice,
        labels: Sequence[Label],
        client: anthropic.AsyncAnthropic,
        *,
        task_description: str = "",
        static_examples: Sequence[tuple[str, str]] = (),
        few_shot: int = 8,
        max_tokens: int = 300,
    ) -> None:
        self.model = model
        self.labels = [label.name for label in labels]
        self._label_set = frozenset(self.labels)
        self._client = client
        self._few_shot = few_shot
        self._max_tokens = max_tokens
        prefix, self.cacheable = build_system_prefix(
            model, labels, task_description, static_examples
        )
        block: dict[str, Any] = {"type": "text", "text": prefix}
        if self.cacheable:
            block["cache_control"] = {"type": "ephemeral"}
        self._system = [block]
        self._schema = answer_schema(self.labels)

    @property
    def name(self) -> str:
        return self.model.name

    def request(self, ticket: Ticket) -> dict[str, Any]:
        """The Messages API body for one ticket (also what a batch request's params are)."""
        neighbours = list(ticket.local.neighbours[: self._few_shot]) if ticket.local else []
        body: dict[str, Any] = {
            "model": self.model.name,
            "max_tokens": self._max_tokens,
            "system": self._system,
            "messages": [{"role": "user", "content": ticket_message(ticket.text, neighbours)}],
        }
        if self.model.forced_tool_choice:
            body["tools"] = [
                {
                    "name": TOOL_NAME,
                    "description": "Route the ticket to one queue.",
                    "input_schema": self._schema,
                    "strict": True,
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        else:
            body["output_config"] = {"format": {"type": "json_schema", "schema": self._schema}}
        return body

    async def answer(self, ticket: Ticket) -> TierAnswer:
        started = time.perf_counter()
        try:
            message = await self._client.messages.create(**self.request(ticket))
        except anthropic.APIError as error:
            return TierAnswer(
                self.name,
                None,
                {},
                latency_s=time.perf_counter() - started,
                problem=f"api error: {type(error).__name__}",
                model=self.name,
            )
        return self.read(ticket, message.model_dump(), time.perf_counter() - started)

    def read(self, ticket: Ticket, message: Mapping[str, Any], latency_s: float) -> TierAnswer:
        """Turn a Messages API response (as a dict) into an answer; shared with batch results."""
        usage = Usage.from_api(message.get("usage") or {})
        cost = price_usage(usage, self.model).total_usd
        payload, problem = self._payload(message)
        label = payload.get("label") if payload else None
        confidence = payload.get("confidence") if payload else None
        if problem is None and label not in self._label_set:
            problem = f"label outside the label set: {label!r}"
        if problem is None and not (
            isinstance(confidence, int | float) and 0.0 <= float(confidence) <= 1.0
        ):
            problem = f"confidence is not a probability: {confidence!r}"
        if problem is not None:
            return TierAnswer(
                self.name, None, {}, usage, cost, latency_s, problem=problem, model=self.name
            )
        assert isinstance(label, str) and isinstance(confidence, int | float)
        features = {"stated_confidence": float(confidence)}
        features.update(agreement_features(label, ticket.local))
        return TierAnswer(
            self.name,
            label,
            features,
            usage,
            cost,
            latency_s,
            stated_confidence=float(confidence),
            reason=str((payload or {}).get("reason", ""))[:500],
            model=str(message.get("model") or self.name),
        )

    def _payload(self, message: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        if message.get("stop_reason") == "refusal":
            return None, "the model refused"
        for block in message.get("content") or []:
            if block.get("type") == "tool_use" and block.get("name") == TOOL_NAME:
                payload = block.get("input")
                if isinstance(payload, dict):
                    return payload, None
                return None, "tool input is not an object"
            if block.get("type") == "text" and not self.model.forced_tool_choice:
                try:
                    payload = json.loads(block.get("text") or "")
                except json.JSONDecodeError:
                    return None, "structured output is not valid JSON"
                if isinstance(payload, dict):
                    return payload, None
                return None, "structured output is not an object"
        return None, f"no structured answer (stop_reason {message.get('stop_reason')})"

    async def aclose(self) -> None:
        await self._client.close()
