"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: resolve, reserve, forward, meter.

A plain model id is forwarded byte for byte; a rules route rewrites only ``model`` (and drops
gateway-only metadata); a classification route is answered by the routing engine
(``classify.py``). Whatever happens after the budget reservation, it is settled in ``finally``
with what was really charged, and exactly one ledger row is written.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tiergate.api_errors import AnthropicError
from tiergate.core.usage import Usage
from tiergate.gateway import spend
from tiergate.gateway.asgi import SSE, ClientGone, Receive, Scope, Send, header, read_body, respond
from tiergate.gateway.costs import request_bound
from tiergate.gateway.disconnect import guard
from tiergate.gateway.errors import GatewayError
from tiergate.gateway.final import unavailable, upstream_error
from tiergate.gateway.metering import StreamMeter
from tiergate.gateway.rules import Choice, choose, marks_of, strip_marks
from tiergate.gateway.services import Outcome, Request, Services, price, record
from tiergate.gateway.shapes import check_shape
from tiergate.transports.base import ApiCall, ApiReply, OpenStream, Unreachable

DIRECT = "direct"
# Rough bytes per token for the upstream ITPM bucket (the budget uses a strict bound instead).
BYTES_PER_TOKEN = 4
STREAM_BROKE = (
    b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
    b'"message":"the upstream stream broke off"}}\n\n'
)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise GatewayError(400, f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "the request body must be a JSON object")
    return body


def check_messages_body(
    body: dict[str, Any], raw: bytes = b"", *, needs_max_tokens: bool = True
) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "model: Field required (a Claude model id or a tiergate route)")
    if needs_max_tokens:
        max_tokens = body.get("max_tokens")
        if type(max_tokens) is not int or max_tokens < 1:
            raise GatewayError(400, "max_tokens: Field required (a positive integer)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise GatewayError(400, "messages: Field required (a non-empty list)")
    check_shape(body, raw)


def passed_through(services: Services, name: str) -> bool:
    """A model id the gateway forwards as is: listed, or a Claude id the book prices by a
    stand-in (a dated snapshot or a newer model; see PriceBook.stand_in)."""
    return name in services.book or services.book.stand_in(name) is not None


def unknown_model(services: Services, name: str) -> GatewayError:
    routes = sorted([*services.rules, *services.classifiers, *services.learned, *services.agents])
    hint = services.book.suggest(name)
    did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
    return GatewayError(
        404,
        f"model: {name!r} is neither a known Claude model nor a route of this gateway "
        f"(routes: {', '.join(routes) or 'none'}){did_you_mean}",
    )


async def handle_messages(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    raw = await read_body(scope, receive, services.config.max_body_bytes)
    body = parse_json_object(raw)
    await answer_messages(services, request, scope, raw, body, receive, send)


async def answer_messages(
    services: Services,
    request: Request,
    scope: Scope,
    raw: bytes,
    body: dict[str, Any],
    receive: Receive,
    send: Send,
) -> None:
    """A Messages body (``raw`` as sent, ``body`` parsed) answered: by a route or upstream."""
    check_messages_body(body, raw)
    name = body["model"]
    classifier = services.classifiers.get(name)
    if classifier is not None:
        await classifier.answer_message(services, request, body, receive, send)
        return
    agent = services.agents.get(name)
    if agent is not None:
        await agent.answer_message(services, request, scope, body, receive, send)
        return
    route, tier = DIRECT, DIRECT
    choice: Choice | None = None
    rules = services.rules.get(name)
    learned = services.learned.get(name)  # a LearnedChooser (gateway/learned.py)
    if rules is not None:
        choice = choose(rules, body, marks_of(header(scope, b"x-tiergate-mark"), body))
    elif learned is not None:
        choice = await learned.choose(body)
    elif not passed_through(services, name):
        raise unknown_model(services, name)
    if choice is not None:
        route, tier = name, choice.tier
        body = {**strip_marks(body), "model": choice.model}
        raw = orjson.dumps(body)
    model = body["model"]
    models = services.upstream.models_for(model)
    bound = request_bound([services.book.get(m) for m in models], raw, body)
    # A refusal here leaves no row: it is counted (per key and day) by the app.
    held = await spend.reserve(services, request, bound, body)
    outcome = Outcome(route, tier, [model], "", 0, "rejected")
    if choice is not None:
        outcome.headers.extend(choice.headers)
    if held.clamped_to is not None:
        body = {**body, "max_tokens": held.clamped_to}
        raw = orjson.dumps(body)
        outcome.headers.append((spend.CLAMPED_HEADER, str(held.clamped_to)))
    spend.intend(services, request, route, model, held)
    call = services.upstream.call(
        "/v1/messages",
        raw,
        body,
        services.upstream.headers_for(scope["headers"]),
        input_tokens=len(raw) // BYTES_PER_TOKEN,
        max_tokens=body["max_tokens"],
    )
    try:
        if body.get("stream") is True:
            await relay_stream(services, request, call, outcome, receive, send)
        else:
            await _forward(services, request, call, outcome, receive, send)
    except AnthropicError as error:
        outcome.status = error.status
        outcome.outcome = "rejected" if error.status == 429 else "upstream_unavailable"
        raise
    finally:
        services.budgets.settle(held.reservation, outcome.cost_usd)
        if outcome.outcome == "rejected":  # the limits refused it: it never went upstream
            services.ledger.void(request.request_id)
        else:
            record(services, request, outcome)


def _answer_headers(outcome: Outcome, asked: str, answered: str) -> list[tuple[str, str]]:
    headers = [
        ("x-tiergate-route", outcome.route),
        ("x-tiergate-tier", outcome.tier),
        ("x-tiergate-escalated", "true" if outcome.escalated else "false"),
        *outcome.headers,
    ]
    if answered != asked:
        headers.append(("x-tiergate-fallback", answered))
    return headers


async def _send_upstream_error(
    reply: ApiReply, request: Request, outcome: Outcome, send: Send
) -> None:
    outcome.status, outcome.outcome, outcome.tiers_tried = (
        reply.status,
        "upstream_error",
        reply.tried,
    )
    status, body, headers = upstream_error(reply)
    await respond(send, status, body, request.request_id, headers)


async def _forward(
    services: Services,
    request: Request,
    call: ApiCall,
    outcome: Outcome,
    receive: Receive,
    send: Send,
) -> None:
    try:
        reply = await guard(services.upstream.send(call), receive)
    except ClientGone:
        outcome.status, outcome.outcome = 499, "client_disconnected"
        return
    except Unreachable as error:
        raise unavailable(error) from None
    if reply.status >= 400:
        await _send_upstream_error(reply, request, outcome, send)
        return
    message = reply.json()
    usage = Usage.from_api(message.get("usage") or {})
    outcome.cost_usd, outcome.strong_only_usd = price(services, reply.model, usage)
    outcome.usage, outcome.model, outcome.tiers_tried = usage, reply.model, reply.tried
    outcome.status, outcome.outcome = reply.status, "ok"
    headers = _answer_headers(outcome, call.model, reply.model)
    headers.append(("x-tiergate-cost-usd", f"{outcome.cost_usd:.8f}"))
    record(services, request, outcome)  # journaled before the client can see the answer
    await respond(send, 200, reply.body, request.request_id, headers)


async def relay_stream(
    services: Services,
    request: Request,
    call: ApiCall,
    outcome: Outcome,
    receive: Receive,
    send: Send,
) -> None:
    outcome.streamed = True
    try:
        opened = await guard(services.upstream.open_stream(call), receive)
    except ClientGone:
        outcome.status, outcome.outcome = 499, "client_disconnected"
        return
    except Unreachable as error:
        raise unavailable(error) from None
    if isinstance(opened, ApiReply):
        await _send_upstream_error(opened, request, outcome, send)
        return
    outcome.model, outcome.tiers_tried, outcome.status = opened.model, opened.tried, 200
    meter = StreamMeter()
    headers = _answer_headers(outcome, call.model, opened.model)
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", SSE),
                    (b"cache-control", b"no-cache"),
                    (b"request-id", request.request_id.encode()),
                    *((name.encode(), value.encode()) for name, value in headers),
                ],
            }
        )
        outcome.ttft_s = time.perf_counter() - request.started
        try:
            await guard(_pump(opened, meter, send), receive)
            outcome.outcome = "ok" if meter.finished else "stream_error"
        except ClientGone:
            outcome.status, outcome.outcome = 499, "client_disconnected"
    finally:
        await opened.aclose()  # cut short, this cancels the upstream generation
        usage = meter.usage()
        outcome.usage = usage
        outcome.cost_usd, outcome.strong_only_usd = price(services, opened.model, usage)
        if opened.on_usage is not None:
            opened.on_usage(int(usage.output_tokens))


async def _pump(opened: OpenStream, meter: StreamMeter, send: Send) -> None:
    """Relay the upstream's bytes as they come; end with an ``error`` event if it breaks."""
    meter.feed(opened.first_chunk)
    await send({"type": "http.response.body", "body": opened.first_chunk, "more_body": True})
    async for chunk in opened.chunks():
        meter.feed(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    if not meter.finished and not meter.errored:
        # After the first byte there is no falling back: say so the way the API does.
        meter.errored = True
        await send({"type": "http.response.body", "body": STREAM_BROKE, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def handle_count_tokens(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    """Passed through (free upstream); a route name counts on the route's default model."""
    raw = await read_body(scope, receive, services.config.max_body_bytes)
    body = parse_json_object(raw)
    check_messages_body(body, raw, needs_max_tokens=False)
    name = body["model"]
    rules = services.rules.get(name)
    if rules is not None:
        body = {**strip_marks(body), "model": rules.tiers[rules.default]}
        raw = orjson.dumps(body)
    elif name in services.learned:
        body = {**strip_marks(body), "model": services.learned[name].models[0]}
        raw = orjson.dumps(body)
    elif name in services.agents:
        body = {**body, "model": services.agents[name].config.strong}
        raw = orjson.dumps(body)
    elif name in services.classifiers:
        raise GatewayError(400, f"{name!r} is a classification route: use /v1/classify")
    elif not passed_through(services, name):
        raise unknown_model(services, name)
    call = services.upstream.call(
        "/v1/messages/count_tokens",
        raw,
        body,
        services.upstream.headers_for(scope["headers"]),
        limited=False,
    )
    try:
        reply = await guard(services.upstream.send(call), receive)
    except ClientGone:
        return
    except Unreachable as error:
        raise unavailable(error) from None
    if reply.status >= 400:
        status, answer, headers = upstream_error(reply)
        await respond(send, status, answer, request.request_id, headers)
        return
    await respond(send, reply.status, reply.body, request.request_id)
