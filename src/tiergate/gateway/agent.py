"""Agent routes: each turn of an agent loop answered by the cheapest tier whose call is trusted.

A turn is a Messages request with ``tools``. The cheap tier answers it first (asked, in one
added system line, to state its confidence); the tool-decision task (``tasks/tool.py``) reads
its calls and their features (stated confidence, argument validity against the tools' schemas,
similarity of the request to the tools called), and the policy that ``tiergate calibrate``
fitted for the cheap tier on a ``task: tool`` route turns them into a calibrated P(right). At or
above the policy's threshold the client gets the cheap tier's own response (its ``tool_use``
blocks, the confidence line taken out); below it, or when the cheap answer is unusable, the
strong tier answers the client's request as sent. Streaming clients get the cheap answer as an
event stream written from the whole response, and the strong answer relayed as it comes.

Rules send some turns straight to the strong tier: a request without tools, the first turn of
a conversation (``strong_when.first_turn``), a long context (``strong_when.input_tokens_over``).
Without a calibrated policy every turn goes to the strong tier unchanged: the route then
behaves exactly like the strong model. One budget reservation covers both calls; one ledger
row records the turn, its cost the sum of both.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tiergate.api_errors import AnthropicError
from tiergate.core.prices import PriceBook
from tiergate.core.usage import Usage
from tiergate.gateway.asgi import SSE, ClientGone, Receive, Scope, Send, respond
from tiergate.gateway.config import AgentRoute, ConfigError
from tiergate.gateway.costs import request_bound
from tiergate.gateway.disconnect import guard
from tiergate.gateway.events import message_events
from tiergate.gateway.final import unavailable, upstream_error
from tiergate.gateway.messages import BYTES_PER_TOKEN, relay_stream
from tiergate.gateway.rules import estimate_input_tokens
from tiergate.gateway.services import Outcome, Request, Services, price, record
from tiergate.gateway.spend import Held, intend
from tiergate.routing.policy import TierPolicy
from tiergate.tasks.base import Context, Item
from tiergate.tasks.tool import ToolTask, instructed, last_user_text, without_confidence
from tiergate.transports.base import ApiCall, ApiReply, Unreachable

log = logging.getLogger("tiergate.gateway")
CHEAP, STRONG = "cheap", "strong"


@dataclass(frozen=True)
class Judged:
    """The cheap tier's turn as the policy saw it."""

    message: dict[str, Any]
    confidence: float | None
    accepted: bool
    problem: str | None = None


class AgentTurns:
    """One agent route of the gateway."""

    def __init__(self, config: AgentRoute, policy: TierPolicy | None) -> None:
        self.name = config.name
        self.config = config
        self.policy = policy
        self.task = ToolTask()

    @classmethod
    def open(cls, config: AgentRoute, book: PriceBook) -> AgentTurns:
        for model in (config.cheap, config.strong):
            if model not in book:
                raise ConfigError(f"routes.{config.name}.tiers: unknown model {model!r}")
        return cls(config, _policy(config))

    async def aclose(self) -> None:
        return None

    def straight_to_strong(self, body: dict[str, Any]) -> str | None:
        """Why this turn skips the cheap tier (None: it does not)."""
        if self.policy is None:
            return "no calibrated policy"
        if not body.get("tools"):
            return "no tools"
        messages = body.get("messages") or []
        if self.config.strong_first_turn and not any(
            isinstance(m, Mapping) and m.get("role") == "assistant" for m in messages
        ):
            return "first turn"
        over = self.config.strong_input_tokens_over
        if over is not None and estimate_input_tokens(body) > over:  # as rules routes count
            return "long context"
        return None

    async def answer_message(
        self,
        services: Services,
        request: Request,
        scope: Scope,
        body: dict[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        raw = orjson.dumps(body)
        skip = self.straight_to_strong(body)
        cheap_body = None if skip else self._cheap_body(body)
        bound = _bound(services, self.config.strong, raw, body)
        if cheap_body is not None:
            bound += _bound(services, self.config.cheap, orjson.dumps(cheap_body), cheap_body)
        reservation = await services.budgets.reserve(request.key, bound, request.at)
        intend(services, request, self.name, "", Held(reservation, bound))
        outcome = Outcome(self.name, "", [], "", 0, "rejected")
        headers = services.upstream.headers_for(scope["headers"])
        try:
            judged = None
            if cheap_body is not None:
                judged = await self._cheap(services, cheap_body, headers, outcome, receive)
            if judged is not None and judged.accepted:
                await self._send_cheap(services, request, body, judged, outcome, send)
                return
            outcome.escalated = cheap_body is not None
            await self._strong(services, request, body, headers, outcome, receive, send)
        except ClientGone:
            outcome.status, outcome.outcome = 499, "client_disconnected"
        except AnthropicError as error:
            outcome.status, outcome.outcome = error.status, "upstream_unavailable"
            raise
        finally:
            services.budgets.settle(reservation, outcome.cost_usd)
            record(services, request, outcome)

    def _cheap_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        cheap = instructed(body)
        cheap["model"] = self.config.cheap
        cheap.pop("stream", None)
        return cheap

    async def _cheap(
        self,
        services: Services,
        body: dict[str, Any],
        headers: dict[str, str],
        outcome: Outcome,
        receive: Receive,
    ) -> Judged | None:
        """The cheap tier's answer, judged; None if it gave none (the strong tier answers)."""
        call = _call(services, body, headers)
        outcome.tiers_tried.append(CHEAP)
        try:
            reply = await guard(services.upstream.send(call), receive)
        except Unreachable:
            return None
        if reply.status >= 400:
            return None
        message = reply.json()
        self._charge(services, reply, message, outcome)
        assert self.policy is not None
        model = services.book.get(self.config.cheap)
        reading = self.task.read(model, message)
        if not reading.usable:
            return Judged(message, None, False, reading.problem)
        item = Item(last_user_text(body), request=body)
        confidence = self.policy.score(self.task.features(reading, item, Context()))
        threshold = self.policy.threshold_for(self.task.threshold_key(reading.payload))
        return Judged(message, confidence, confidence >= threshold)

    def _charge(
        self, services: Services, reply: ApiReply, message: Mapping[str, Any], outcome: Outcome
    ) -> None:
        usage = Usage.from_api(message.get("usage") or {})
        cost, strong_only = price(services, reply.model, usage)
        outcome.cost_usd += cost
        # What the strong model alone would have cost: this call's usage at its prices (the
        # strong tier's own call, once it has answered).
        outcome.strong_only_usd = strong_only
        outcome.usage = outcome.usage + usage
        outcome.model = reply.model  # (the rate limits settled the output in the transport)

    async def _send_cheap(
        self,
        services: Services,
        request: Request,
        body: Mapping[str, Any],
        judged: Judged,
        outcome: Outcome,
        send: Send,
    ) -> None:
        outcome.tier, outcome.status, outcome.outcome = CHEAP, 200, "ok"
        outcome.streamed = body.get("stream") is True
        record(services, request, outcome)  # journaled before the client can see the answer
        message = without_confidence(judged.message)
        headers = self._headers(outcome, judged.confidence)
        if outcome.streamed:
            await respond(send, 200, message_events(message), request.request_id, headers, SSE)
        else:
            await respond(send, 200, orjson.dumps(message), request.request_id, headers)

    async def _strong(
        self,
        services: Services,
        request: Request,
        body: dict[str, Any],
        headers: dict[str, str],
        outcome: Outcome,
        receive: Receive,
        send: Send,
    ) -> None:
        """The client's request, as sent, answered by the strong tier."""
        strong = {**body, "model": self.config.strong}
        call = _call(services, strong, headers)
        outcome.tier = STRONG
        outcome.tiers_tried.append(STRONG)
        if strong.get("stream") is True:
            earlier = (outcome.cost_usd, outcome.usage)
            try:
                await relay_stream(services, request, call, outcome, receive, send)
            finally:  # the relay priced the strong stream alone: add the cheap call
                outcome.cost_usd += earlier[0]
                outcome.usage = outcome.usage + earlier[1]
            return
        try:
            reply = await guard(services.upstream.send(call), receive)
        except Unreachable as error:
            raise unavailable(error) from None
        if reply.status >= 400:
            outcome.status, outcome.outcome = reply.status, "upstream_error"
            status, answer, passed = upstream_error(reply)
            await respond(send, status, answer, request.request_id, passed)
            return
        self._charge(services, reply, reply.json(), outcome)
        outcome.status, outcome.outcome = 200, "ok"
        record(services, request, outcome)
        headers_out = self._headers(outcome, None)
        await respond(send, 200, reply.body, request.request_id, headers_out)

    def _headers(self, outcome: Outcome, confidence: float | None) -> list[tuple[str, str]]:
        headers = [
            ("x-tiergate-route", self.name),
            ("x-tiergate-tier", outcome.tier),
            ("x-tiergate-escalated", "true" if outcome.escalated else "false"),
            ("x-tiergate-cost-usd", f"{outcome.cost_usd:.8f}"),
        ]
        if confidence is not None:
            headers.append(("x-tiergate-confidence", f"{confidence:.4f}"))
        return headers


def _call(services: Services, body: dict[str, Any], headers: dict[str, str]) -> ApiCall:
    raw = orjson.dumps(body)
    return services.upstream.call(
        "/v1/messages",
        raw,
        body,
        headers,
        input_tokens=len(raw) // BYTES_PER_TOKEN,
        max_tokens=int(body["max_tokens"]),
    )


def _bound(services: Services, model: str, raw: bytes, body: dict[str, Any]) -> float:
    return request_bound([services.book.get(model)], raw, body).usd(int(body["max_tokens"]))


def _policy(config: AgentRoute) -> TierPolicy | None:
    """The cheap tier's calibrated policy, or None (every turn to the strong tier)."""
    from tiergate.routing.route import RouteError, load_route
    from tiergate.routing.runtime import POLICY_FILE, RuntimeSetupError, load_calibration

    if config.policy is None:
        return None
    try:
        route = load_route(config.policy)
    except RouteError as error:
        raise ConfigError(f"routes.{config.name}.policy: {error}") from None
    if route.task.kind != ToolTask.kind:
        raise ConfigError(
            f"routes.{config.name}.policy: {route.path} has `task: {route.task.kind}`, not "
            "`task: tool`"
        )
    if not (route.artifacts / POLICY_FILE).exists():
        log.warning(
            "route %s: %s is not calibrated yet: every turn goes to %s",
            config.name,
            route.path,
            config.strong,
        )
        return None
    try:
        policies = load_calibration(route).policies
    except RuntimeSetupError as error:
        raise ConfigError(f"routes.{config.name}.policy: {error}") from None
    policy = policies.get(config.cheap)
    if policy is None:
        raise ConfigError(
            f"routes.{config.name}: {route.path} has no policy for {config.cheap} (its ladder: "
            f"{', '.join(policies)})"
        )
    return None if policy.skipped else policy
