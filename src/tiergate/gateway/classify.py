"""Classification routes: the routing engine behind ``/v1/classify`` and ``/v1/messages``.

The engine (``tiergate.routing``) walks the route's ladder (local model, Haiku, Sonnet) and
prices each Claude call from the price book; this module adds what the gateway owes every
request: a budget reservation bounded by the ladder's dearest path, one ledger row, and the
Anthropic message shape when a classification route is called as a model. It is imported only
when the config has a classification route, so a gateway without one never loads the local
model (or torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tiergate.core.prices import PriceBook
from tiergate.core.usage import Usage
from tiergate.gateway.asgi import SSE, ClientGone, Receive, Send, respond
from tiergate.gateway.config import ClassifyRoute
from tiergate.gateway.costs import max_cost_usd
from tiergate.gateway.disconnect import guard
from tiergate.gateway.errors import GatewayError
from tiergate.gateway.events import message_events
from tiergate.gateway.services import Outcome, Request, Services, record
from tiergate.gateway.spend import Held, intend
from tiergate.routing.engine import Decision, Router
from tiergate.routing.route import load_route
from tiergate.routing.runtime import load_calibration, open_router
from tiergate.tasks.base import Context, Item
from tiergate.tiers.anthropic import AnthropicTier
from tiergate.transports.base import Transport

# Few-shot neighbours are chosen inside the engine, after the reservation: allow this many
# bytes for each one shown to a Claude tier.
NEIGHBOUR_BYTES = 600


class Classifier:
    def __init__(self, name: str, router: Router, strong_mean_usd: float | None) -> None:
        self.name = name
        self.router = router
        self._strong_mean_usd = strong_mean_usd

    @classmethod
    def open(cls, config: ClassifyRoute, book: PriceBook, transport: Transport) -> Classifier:
        route = load_route(config.route_file)  # its kind was checked with the config
        router = open_router(route, book, transport, concurrency=config.concurrency, batched=True)
        return cls(config.name, router, load_calibration(route).strong_mean_cost_usd(route))

    async def aclose(self) -> None:
        await self.router.aclose()

    def max_cost_usd(self, text: str) -> float:
        """Every Claude tier called, each with its longest prompt and answer."""
        total = 0.0
        few_shot = self.router.route.few_shot
        for tier in self.router.tiers.values():
            if isinstance(tier, AnthropicTier):
                body = tier.request(Item(text), Context())
                size = len(orjson.dumps(body)) + few_shot * NEIGHBOUR_BYTES
                total += max_cost_usd(
                    [tier.model], size, int(body["max_tokens"]), cached=True, tools="tools" in body
                )
        return total

    async def decide(
        self, services: Services, request: Request, text: str, receive: Receive
    ) -> tuple[Decision | None, Outcome]:
        bound = self.max_cost_usd(text)
        reservation = await services.budgets.reserve(request.key, bound, request.at)
        intend(services, request, self.name, "", Held(reservation, bound))
        outcome = Outcome(self.name, "", [], "", 0, "rejected")
        try:
            decision = await guard(self.router.classify(text), receive)
            self._describe(decision, outcome)
        except ClientGone:
            outcome.status, outcome.outcome = 499, "client_disconnected"
            return None, outcome
        finally:
            services.budgets.settle(reservation, outcome.cost_usd)
        return decision, outcome

    def _describe(self, decision: Decision, outcome: Outcome) -> None:
        answers = decision.answers
        claude = self.router.route.claude_tiers
        strong_answer = next((a for a in answers if claude and a.tier == claude[-1]), None)
        answering = next((a for a in answers if a.tier == decision.tier), None)
        outcome.tier = decision.tier or ""
        outcome.tiers_tried = [step.tier for step in decision.trace]
        outcome.model = (answering.model if answering else None) or decision.tier or ""
        outcome.status, outcome.outcome = 200, "ok"
        outcome.escalated = decision.escalated
        outcome.usage = sum((answer.usage for answer in answers), Usage())
        outcome.cost_usd = decision.cost_usd
        outcome.strong_only_usd = (
            strong_answer.cost_usd if strong_answer is not None else self._strong_mean_usd or 0.0
        )

    async def answer_classify(
        self, services: Services, request: Request, text: str, receive: Receive, send: Send
    ) -> None:
        decision, outcome = await self.decide(services, request, text, receive)
        record(services, request, outcome)
        if decision is None:
            return
        body = {**decision.to_dict(), "route": self.name, "model": outcome.model}
        await respond(send, 200, orjson.dumps(body), request.request_id, _headers(outcome))

    async def answer_message(
        self,
        services: Services,
        request: Request,
        body: Mapping[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        text = last_user_text(body)
        if not text:
            raise GatewayError(400, "messages: the last user message has no text to classify")
        decision, outcome = await self.decide(services, request, text, receive)
        record(services, request, outcome)
        if decision is None:
            return
        message = {
            "id": "msg_" + request.request_id.removeprefix("req_"),
            "type": "message",
            "role": "assistant",
            "model": outcome.model,
            "content": [
                {
                    "type": "text",
                    "text": ""
                    if decision.payload is None
                    else self.router.task.render(decision.payload),
                }
            ],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": int(outcome.usage.input_tokens),
                "output_tokens": int(outcome.usage.output_tokens),
                "cache_creation_input_tokens": int(outcome.usage.cache_write_tokens),
                "cache_read_input_tokens": int(outcome.usage.cache_read_tokens),
            },
        }
        headers = _headers(outcome)
        if body.get("stream") is True:
            await respond(send, 200, message_events(message), request.request_id, headers, SSE)
        else:
            await respond(send, 200, orjson.dumps(message), request.request_id, headers)


def _headers(outcome: Outcome) -> list[tuple[str, str]]:
    return [
        ("x-tiergate-route", outcome.route),
        ("x-tiergate-tier", outcome.tier),
        ("x-tiergate-escalated", "true" if outcome.escalated else "false"),
        ("x-tiergate-cost-usd", f"{outcome.cost_usd:.8f}"),
    ]


def last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content.strip()
            if isinstance(content, list):
                return " ".join(
                    block.get("text", "")
                    for block in content
                    if isinstance(block, dict) and block.get("type") == "text"
                ).strip()
    return ""
