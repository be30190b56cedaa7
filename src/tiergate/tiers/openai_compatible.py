"""A model behind an OpenAI-compatible chat completions API, answering a structured task.

For a local LLM server (vLLM, llama.cpp's server, Ollama) or another provider's API: its price
book row says ``provider: openai``, ``base_url`` (up to and without ``/chat/completions``),
``api_key_env`` (the variable holding its key; a local server may take any) and
``forced_tool_choice: false`` (the answer comes as JSON text, by ``response_format``). The
structured task's instructions, schema and user message are the same as for Claude; the answer
is read by the same task code, so calibration and the engine treat it like any tier.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from tiergate.core.cost import price_usage
from tiergate.core.prices import ModelPrice
from tiergate.core.usage import Usage
from tiergate.errors import TiergateError
from tiergate.tasks.base import Context, Item, StructuredTask, Task
from tiergate.tiers.base import TierAnswer
from tiergate.transports.base import ApiCall, Transport, Unreachable
from tiergate.transports.http import HttpSettings, HttpTransport
from tiergate.transports.retry import Retrying, RetryPolicy

COMPLETIONS = "/chat/completions"
FINISH_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}


class OpenAICompatibleTier:
    def __init__(self, model: ModelPrice, task: StructuredTask, transport: Transport) -> None:
        self.model = model
        self.task = task
        self.transport = transport

    @classmethod
    def create(cls, model: ModelPrice, task: Task, transport: Transport) -> OpenAICompatibleTier:
        """Its own transport to the row's ``base_url``; the Anthropic one is not for it."""
        if not isinstance(task, StructuredTask):
            raise TiergateError(f"{model.name}: an OpenAI-compatible tier answers structured tasks")
        if not model.base_url:
            raise TiergateError(f"{model.name}: provider openai needs base_url in the price book")
        key = os.environ.get(model.api_key_env or "", "") or "none"
        own = Retrying(
            HttpTransport(HttpSettings(model.base_url.rstrip("/"), key, auth="bearer")),
            RetryPolicy(),
        )
        return cls(model, task, own)

    @property
    def name(self) -> str:
        return self.model.name

    def request(self, item: Item, context: Context) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "max_tokens": self.task.max_tokens,
            "messages": [
                {"role": "system", "content": self.task.system_prompt(self.model).text},
                {"role": "user", "content": self.task.user_message(item, context)},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": self.task.tool_name,
                    "schema": self.task.schema(),
                    "strict": True,
                },
            },
        }

    async def answer(self, item: Item, context: Context) -> TierAnswer:
        started = time.perf_counter()
        body = self.request(item, context)
        try:
            reply = await self.transport.send(
                ApiCall(COMPLETIONS, body, max_tokens=int(body["max_tokens"]))
            )
        except Unreachable:
            return self._failed("api error: unreachable", started)
        if not reply.ok:
            return self._failed(f"api error: {reply.status}", started)
        message = as_messages_answer(reply.json())
        usage = Usage.from_api(message["usage"])
        cost = price_usage(usage, self.model).total_usd
        latency = time.perf_counter() - started
        reading = self.task.read(self.model, message)
        if not reading.usable:
            return TierAnswer(
                self.name, None, {}, usage, cost, latency, problem=reading.problem, model=self.name
            )
        return TierAnswer(
            self.name,
            reading.payload,
            self.task.features(reading, item, context),
            usage,
            cost,
            latency,
            stated_confidence=reading.stated_confidence,
            reason=reading.reason,
            model=self.name,
        )

    def _failed(self, problem: str, started: float) -> TierAnswer:
        latency = time.perf_counter() - started
        return TierAnswer(self.name, None, {}, latency_s=latency, problem=problem, model=self.name)

    async def aclose(self) -> None:
        await self.transport.aclose()


def as_messages_answer(completion: Mapping[str, Any]) -> dict[str, Any]:
    """A chat completion in the Messages API's shape, so the task reads it as it reads Claude."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    usage = completion.get("usage") or {}
    text = message.get("content") or ""
    return {
        "model": completion.get("model", ""),
        "content": [{"type": "text", "text": text}] if text else [],
        "stop_reason": FINISH_REASONS.get(str(choice.get("finish_reason")), "end_turn"),
        "usage": {
            "input_tokens": int(usage.get("prompt_tokens", 0)),
            "output_tokens": int(usage.get("completion_tokens", 0)),
        },
    }
