"""``/v1/messages/batches``: the Message Batches API passed through, metered at batch prices.

- ``POST /v1/messages/batches``: each request's ``params`` is resolved like a Messages body (a
  rules route picks its tier's model; a classification route cannot be batched; an unknown
  model is refused with suggestions). The batch's worst case (every request's bound at
  ``max_tokens``, at batch prices) is *held* against the key's budget until its results are
  read (``batch_holds.py``); one that does not fit follows ``budget.policy``: ``clamp`` caps
  every request's ``max_tokens`` at what the budget left covers, ``refuse`` refuses it whole.
  The gateway writes a $0 ``batch_created`` ledger row naming the key that owns the batch,
  and the hold's row.
- ``GET /v1/messages/batches/{id}``, ``POST .../{id}/cancel``, ``DELETE .../{id}`` and
  ``GET /v1/messages/batches`` (listed batches: the key's own; an admin key sees all) pass
  through, for the owning key (or an admin). A batch seen ended (retrieved or canceled) whose
  hold is open is metered then; a delete meters it first (its results go with it).
- ``GET .../{id}/results``: passed through as JSONL; the first read writes one ledger row per
  request (``route: batch``, ``request_id`` ``BATCH_ID/CUSTOM_ID``), each succeeded one priced
  at batch rates (``batch_discount`` off every component, from the price book), releases the
  hold and charges the owner's budget what the batch cost, on the day it was created; reading
  again charges nothing more (the rows are keyed by request id, and the store's claim lets one
  reader of all the gateways meter).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from tiergate.core.cost import price_usage
from tiergate.core.prices import ModelPrice, UnknownModelError
from tiergate.core.usage import Usage
from tiergate.gateway import batch_holds
from tiergate.gateway.asgi import JSON, Receive, Scope, Send, header, read_body, respond
from tiergate.gateway.costs import request_bound
from tiergate.gateway.errors import GatewayError
from tiergate.gateway.final import unavailable, upstream_error
from tiergate.gateway.messages import (
    check_messages_body,
    parse_json_object,
    passed_through,
    unknown_model,
)
from tiergate.gateway.rules import choose, marks_of, strip_marks
from tiergate.gateway.services import Request, Services
from tiergate.gateway.spend import CLAMPED_HEADER, thinking_floor
from tiergate.stores.ledger import LedgerRow
from tiergate.transports.base import ApiCall, ApiReply, Unreachable

log = logging.getLogger("tiergate.gateway.batches")

PREFIX = "/v1/messages/batches"
ROUTE = "batch"
CREATED = "batch_created"


async def handle_batches(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    path, method = scope["path"], scope["method"]
    rest = path.removeprefix(PREFIX).strip("/")
    batch_id, _, action = rest.partition("/")
    if not batch_id:
        if method == "POST":
            await _create(services, request, scope, receive, send)
        elif method == "GET":
            await _list(services, request, scope, send)
        else:
            raise GatewayError(405, f"{PREFIX} takes POST or GET, not {method}")
        return
    allowed = {"": ("GET", "DELETE"), "cancel": ("POST",), "results": ("GET",)}
    if action not in allowed:
        raise GatewayError(404, f"no such endpoint: {path}")
    if method not in allowed[action]:
        raise GatewayError(405, f"{path} takes {' or '.join(allowed[action])}, not {method}")
    owner = await _owner(services, request, batch_id)
    if method == "DELETE":  # the results go with the batch: meter them first
        await _meter_if_held(services, request, owner, batch_id, scope)
    reply = await _upstream(services, scope, method, path)
    if reply.ok and action == "results":
        await _meter_results(services, request, owner, batch_id, reply.body)
    elif reply.ok:
        if method != "DELETE" and reply.json().get("processing_status") == "ended":
            await _meter_if_held(services, request, owner, batch_id, scope)
        reply = _own_urls(reply, scope)
    await _pass(reply, request, send)


async def _meter_if_held(
    services: Services, request: Request, owner: str, batch_id: str, scope: Scope
) -> None:
    """Meter an ended batch whose hold is still open (canceled or expired batches too: their
    results say which requests ran), so the unused part goes back without waiting for a read."""
    await services.ledger.flush()
    if not await _rows(services, request_id=batch_holds.hold_id(batch_id)):
        return
    if await _rows(services, request_id=batch_holds.release_id(batch_id)):
        return
    reply = await _upstream(services, scope, "GET", f"{PREFIX}/{batch_id}/results")
    if reply.ok:
        await _meter_results(services, request, owner, batch_id, reply.body)


def _own_urls(reply: ApiReply, scope: Scope) -> ApiReply:
    """``results_url`` is absolute: the upstream's own, which the client must not call
    directly (the results would go unmetered). It is pointed at this gateway instead."""
    found = reply.json()
    batches = found.get("data") if found.get("type") != "message_batch" else [found]
    base = f"{scope.get('scheme', 'http')}://{(header(scope, b'host') or b'').decode('latin-1')}"
    for batch in batches or []:
        if isinstance(batch, dict) and batch.get("results_url"):
            batch["results_url"] = f"{base}{PREFIX}/{batch['id']}/results"
    return ApiReply(reply.status, reply.headers, orjson.dumps(found))


async def _create(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    raw = await read_body(scope, receive, services.config.max_body_bytes)
    body = parse_json_object(raw)
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise GatewayError(400, "requests: Field required (a non-empty list)")
    resolved, sizes, models = [], [], []
    min_tokens = services.config.budget.min_tokens
    for index, item in enumerate(requests):
        params = item.get("params") if isinstance(item, dict) else None
        if not isinstance(params, dict):
            raise GatewayError(400, f"requests.{index}.params: Field required")
        params = _resolve(services, params, index)
        models.append(params["model"])
        price = services.book.get(params["model"])
        bound = request_bound([price], orjson.dumps(params), params)
        floor = max(min_tokens, thinking_floor(params))
        sizes.append(
            batch_holds.Sized.of(bound, 1.0 - price.batch_discount, params["max_tokens"], floor)
        )
        resolved.append({**item, "params": params})
    # Held until the results are read: what the key spends meanwhile cannot use this room.
    intent, cap = await batch_holds.take(services, request, sizes, models[0])
    headers: list[tuple[str, str]] = []
    if cap is not None:
        headers.append((CLAMPED_HEADER, str(cap)))
        for item, size in zip(resolved, sizes, strict=True):
            item["params"] = {**item["params"], "max_tokens": size.tokens(cap)}
    raw = orjson.dumps({**body, "requests": resolved})
    try:
        # Once: a batch is not idempotent, and a retry after a lost answer could make two.
        reply = await _upstream(services, scope, "POST", PREFIX, raw, once=True)
    except GatewayError:
        # No answer: the POST may have reached the API and the batch exist, billed. The hold
        # stays spent, closed as a restart would close it, never given back on a guess.
        services.ledger.unsettle(intent)
        raise
    if not reply.ok and reply.status < 500:  # the API refused it: no batch exists
        await batch_holds.give_back(services, request, intent.reserved_usd)
    elif not reply.ok:  # a server error: the batch may exist all the same
        services.ledger.unsettle(intent)
    else:
        batch_id = str(reply.json().get("id"))
        hold = _row(services, request, batch_holds.hold_id(batch_id), models[0], batch_holds.HOLD)
        hold.cost_usd = intent.reserved_usd
        services.ledger.add(hold, closes=request.request_id)
        services.ledger.add(_row(services, request, batch_id, models[0], CREATED))
        await _publish(services)
        reply = _own_urls(reply, scope)
    await _pass(reply, request, send, headers)


async def _publish(services: Services) -> None:
    """Write the batch's rows now, not at the next batch of rows: from the moment its client
    has the id, every gateway on the ledger must know who owns it (the journal has them
    already, so a failure here loses nothing: they are written with the next batch)."""
    try:
        await services.ledger.flush()
    except Exception:
        log.exception("could not write a new batch's ledger rows; they go with the next batch")


def _resolve(services: Services, params: dict[str, Any], index: int) -> dict[str, Any]:
    where = f"requests.{index}.params"
    try:
        check_messages_body(params, b"")
    except GatewayError as error:
        raise GatewayError(400, f"{where}.{error.message}") from None
    name = params["model"]
    if name in services.classifiers:
        raise GatewayError(400, f"{where}.model: {name!r} is a classification route: not batchable")
    rules = services.rules.get(name)
    if rules is not None:
        choice = choose(rules, params, marks_of(None, params))
        return {**strip_marks(params), "model": choice.model}
    if not passed_through(services, name):
        raise unknown_model(services, name)
    return params


async def _owner(services: Services, request: Request, batch_id: str) -> str:
    await services.ledger.flush()
    rows = await _rows(services, request_id=batch_id, outcome=CREATED)
    owner = str(rows[0]["key_id"]) if rows else None
    if request.key.admin:
        return owner or request.key.id
    if owner != request.key.id:
        raise GatewayError(404, f"message_batch: {batch_id} not found for this key")
    return owner


async def _rows(services: Services, **equal: Any) -> list[Any]:
    return await asyncio.to_thread(services.ledger.rows, **equal)


async def _list(services: Services, request: Request, scope: Scope, send: Send) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    reply = await _upstream(services, scope, "GET", PREFIX + (f"?{query}" if query else ""))
    if reply.ok and not request.key.admin:
        await services.ledger.flush()
        mine = {
            row["request_id"]
            for row in await _rows(services, key_id=request.key.id, outcome=CREATED)
        }
        page = reply.json()
        page["data"] = [batch for batch in page.get("data") or [] if batch.get("id") in mine]
        reply = ApiReply(reply.status, reply.headers, orjson.dumps(page))
    if reply.ok:
        reply = _own_urls(reply, scope)
    await _pass(reply, request, send)


@dataclass(frozen=True, slots=True)
class _Priced:
    """One result line, priced: what its ledger row records."""

    row_id: str
    model: str
    outcome: str
    usage: Usage
    cost_usd: float
    strong_usd: float


def _price_results(services: Services, batch_id: str, body: bytes) -> list[_Priced]:
    """Every result line parsed and priced (pure work, off the event loop: a batch holds up to
    100,000 lines). A model the book cannot price is charged at the dearest row, never at 0."""
    priced = []
    for raw in body.splitlines():
        if not raw.strip():
            continue
        line = orjson.loads(raw)
        result = line.get("result") or {}
        message = result.get("message") if result.get("type") == "succeeded" else None
        usage = Usage.from_api((message or {}).get("usage") or {})
        model = str((message or {}).get("model") or "")
        cost = strong = 0.0
        if message is not None:
            cost = price_usage(usage, _price_of(services, model), batch=True).total_usd
            strong = price_usage(usage, services.strong, batch=True).total_usd
        outcome = "ok" if message else str(result.get("type"))
        priced.append(
            _Priced(f"{batch_id}/{line.get('custom_id')}", model, outcome, usage, cost, strong)
        )
    return priced


def _price_of(services: Services, model: str) -> ModelPrice:
    try:
        return services.book.get(model)
    except UnknownModelError:
        log.warning("batch result of unknown model %r charged at the dearest price", model)
        return max(services.book.models.values(), key=lambda row: (row.output, row.input))


async def _meter_results(
    services: Services, request: Request, owner: str, batch_id: str, body: bytes
) -> None:
    priced = await asyncio.to_thread(_price_results, services, batch_id, body)
    if not priced:
        return
    await services.ledger.flush()
    if await _rows(services, request_id=priced[0].row_id):
        return  # metered at the first read
    holds = await _rows(services, request_id=batch_holds.hold_id(batch_id))
    # From the claim on, nothing awaits until every row is journaled, and nothing can raise:
    # the rows were built above.
    if not await services.budgets.claim(batch_holds.claim_name(batch_id)):
        return  # another reader (here, or another gateway) is metering it
    held = float(holds[0]["cost_usd"]) if holds else 0.0
    # The day the batch was created, whose budget held it (a batch from before holds: today).
    day = str(holds[0]["day"]) if holds else services.budgets.day_of(request.at)
    charged = 0.0
    for item in priced:
        charged += item.cost_usd
        row = _row(services, request, item.row_id, item.model, item.outcome)
        row.key_id, row.day, row.cost_usd, row.strong_only_usd = (
            owner,
            day,
            item.cost_usd,
            item.strong_usd,
        )
        usage = item.usage
        row.input_tokens = int(usage.input_tokens)
        row.output_tokens = int(usage.output_tokens)
        row.cache_read_tokens = int(usage.cache_read_tokens)
        row.cache_write_5m_tokens = int(usage.cache_write_5m_tokens)
        row.cache_write_1h_tokens = int(usage.cache_write_1h_tokens)
        services.ledger.add(row)
    if holds:
        release_id = batch_holds.release_id(batch_id)
        release = _row(services, request, release_id, "", batch_holds.RELEASED)
        release.key_id, release.day, release.cost_usd = owner, day, -held
        services.ledger.add(release)
    # The money is spent already: charged even past the budget, never lost. The budget moves
    # by exactly what the ledger just recorded (the rows, less the hold given back).
    await services.budgets.charge(owner, day, charged - held, time.time())


def _row(services: Services, request: Request, row_id: str, model: str, outcome: str) -> LedgerRow:
    return LedgerRow(
        request_id=row_id,
        at=request.at,
        day=services.budgets.day_of(request.at),
        key_id=request.key.id,
        route=ROUTE,
        tier=ROUTE,
        tiers_tried=model,
        model=model,
        status=200,
        outcome=outcome,
        streamed=False,
        escalated=False,
        input_tokens=0,
        output_tokens=0,
        cache_write_5m_tokens=0,
        cache_write_1h_tokens=0,
        cache_read_tokens=0,
        cost_usd=0.0,
        strong_only_usd=0.0,
        latency_ms=(time.perf_counter() - request.started) * 1000.0,
        ttft_ms=None,
    )


async def _upstream(
    services: Services,
    scope: Scope,
    method: str,
    path: str,
    raw: bytes | None = None,
    *,
    once: bool = False,
) -> ApiReply:
    headers = services.upstream.headers_for(scope["headers"])
    call = ApiCall(path, None, method, headers, raw, limited=False)
    try:
        if once:
            return await services.upstream.send_once(call)
        return await services.upstream.send(call)
    except Unreachable as error:
        raise unavailable(error) from None


async def _pass(
    reply: ApiReply, request: Request, send: Send, headers: list[tuple[str, str]] | None = None
) -> None:
    if not reply.ok:
        status, body, error_headers = upstream_error(reply)
        await respond(send, status, body, request.request_id, error_headers)
        return
    content_type = str(reply.headers.get("content-type") or "application/json").encode()
    await respond(
        send, reply.status, reply.body, request.request_id, headers or (), content_type or JSON
    )
