"""The gateway as a raw ASGI app: dispatch, authentication, error rendering and lifespan.

Build it with :func:`GatewayApp` from a :class:`GatewayConfig`; everything it holds lives on the
instance (``services``), created at start-up and closed at shutdown, so several apps can run in
one process (the tests do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson

from tiergate import heap
from tiergate.api_errors import AnthropicError
from tiergate.core.prices import PriceBook, load_price_book
from tiergate.dashboard.handlers import PREFIX as DASHBOARD
from tiergate.dashboard.handlers import handle_dashboard
from tiergate.gateway.asgi import JSON, ClientGone, Receive, Scope, Send, header, read_body, respond
from tiergate.gateway.audit_api import handle_audit
from tiergate.gateway.batches import PREFIX as BATCHES_PREFIX
from tiergate.gateway.batches import handle_batches
from tiergate.gateway.config import (
    AgentRoute,
    ClassifyRoute,
    GatewayConfig,
    LearnedRoute,
    RulesRoute,
    check_models,
)
from tiergate.gateway.errors import GatewayError, RequestIds, error_body
from tiergate.gateway.messages import handle_count_tokens, handle_messages, parse_json_object
from tiergate.gateway.metrics import Metrics
from tiergate.gateway.models import MODEL_PATH_PREFIX, handle_model, handle_models
from tiergate.gateway.openai_compat import handle_chat_completions
from tiergate.gateway.services import Request, Services
from tiergate.gateway.upstream import Upstream
from tiergate.gateway.usage import parse_query, usage_report
from tiergate.stores import ApiKey, StateSettings, open_stores, utc_day
from tiergate.stores.journal import Journal
from tiergate.stores.ledger import Ledger
from tiergate.transports.base import Transport

log = logging.getLogger("tiergate.gateway")

KEY_RELOAD_S = 1.0
KEY_ID = "tiergate.key_id"  # where authentication leaves the key's id in the ASGI scope


class GatewayApp:
    def __init__(
        self, config: GatewayConfig, *, book: PriceBook | None = None, settle_heap: bool = False
    ) -> None:
        self.config = config
        self._book = book
        self._settle_heap = settle_heap  # the process is this server's alone (tiergate.heap)
        self._services: Services | None = None
        self._background: list[asyncio.Task[None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._request_ids = RequestIds()

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("the gateway has not started")
        return self._services

    async def startup(self) -> None:
        self.loop = asyncio.get_running_loop()
        config = self.config
        listed = self._book or load_price_book(config.prices)
        rules = {n: r for n, r in config.routes.items() if isinstance(r, RulesRoute)}
        check_models(config, listed, "the gateway config")
        # Requests may name Claude models the book does not list: passed through, priced by a
        # stand-in row (PriceBook.stand_in); the config itself must name listed models.
        book = listed.with_stand_ins()
        journal = Journal(config.journal_path, self._request_ids.run_id)
        ledger = await asyncio.to_thread(
            Ledger, config.ledger_url, flush_s=config.ledger_flush_s, journal=journal
        )
        await ledger.recover()  # what gateways killed before left behind, before any budget
        now = time.time()
        settings = StateSettings(
            config.state,
            config.keys_path,
            config.limits.default,
            config.limits.per_model,
            config.limits.queue_s,
        )
        # In-process budgets start from the ledger; Redis ones only where Redis lost the day.
        spent_today = await asyncio.to_thread(ledger.spent_on, utc_day(now))
        stores = open_stores(settings, spent_today, now, lambda name: book.get(name).name)
        await stores.start()
        upstream = Upstream(config.upstream, stores.limits)
        await upstream.start()
        services = Services(
            config=config,
            book=book,
            stores=stores,
            upstream=upstream,
            ledger=ledger,
            metrics=Metrics(),
            rules=rules,
            strong=book.get(config.strong_model),
        )
        classify_routes = [r for r in config.routes.values() if isinstance(r, ClassifyRoute)]
        if classify_routes:
            services.classifiers = await asyncio.to_thread(
                _open_classifiers,
                classify_routes,
                listed,
                upstream.transport,
                {name for name, audit in config.audits.items() if audit.shadow > 0},
            )
        learned = [r for r in config.routes.values() if isinstance(r, LearnedRoute)]
        if learned:
            from tiergate.gateway.learned import open_learned

            services.learned = await asyncio.to_thread(open_learned, learned)
        agent_routes = [r for r in config.routes.values() if isinstance(r, AgentRoute)]
        if agent_routes:
            from tiergate.gateway.agent import AgentTurns

            services.agents = {r.name: AgentTurns.open(r, listed) for r in agent_routes}
        if services.classifiers:  # audits where configured; every route's latest escalations
            from tiergate.audit.service import Audits

            services.audits = await Audits.start(
                config.audits, services.classifiers, ledger.engine, services.metrics.registry
            )
        ledger.start()
        self._background.append(asyncio.get_running_loop().create_task(self._reload_keys()))
        self._services = services
        if self._settle_heap:
            heap.settle()

    async def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background = []
        if self._services is not None:
            services, self._services = self._services, None
            if services.audits is not None:
                await services.audits.close()
            for classifier in services.classifiers.values():
                await classifier.aclose()
            for chooser in services.learned.values():
                chooser.close()
            await services.upstream.close()
            await services.ledger.close()  # writes every row still pending
            await services.stores.close()

    async def _reload_keys(self) -> None:
        while True:
            await asyncio.sleep(KEY_RELOAD_S)
            try:
                await self.services.keys.refresh()
            except Exception:
                log.exception("could not reload the key store; keeping the keys loaded before")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as error:
                    log.exception("gateway start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = self._request_ids.next()
        services = self.services
        try:
            await self._dispatch(services, scope, receive, send, request_id)
        except AnthropicError as error:
            services.metrics.rejected(error.status)
            if error.status in COUNTED_REFUSALS:  # counted per key and day, not a row each
                key_id = scope.get(KEY_ID, UNAUTHENTICATED)
                services.ledger.refused(services.budgets.day_of(time.time()), key_id, error.status)
            body = error_body(error.error_type, error.message, request_id)
            await respond(send, error.status, body, request_id, error.headers)
        except ClientGone:
            return
        except Exception:
            log.exception("request %s failed", request_id)
            body = error_body("api_error", "internal error in the gateway", request_id)
            with contextlib.suppress(Exception):  # the response may have started already
                await respond(send, 500, body, request_id)

    async def _dispatch(
        self, services: Services, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            await respond(send, 200, health_report(services), request_id)
            return
        if path == "/metrics":
            if services.config.metrics_admin_only:
                key = await authenticate(services, scope)
                if not key.admin:
                    raise GatewayError(403, "/metrics takes an admin key (keys create --admin)")
            await respond(
                send, 200, services.metrics.render(), request_id, (), services.metrics.content_type
            )
            return
        if path == DASHBOARD or path.startswith(DASHBOARD + "/"):
            await handle_dashboard(services, scope, receive, send, request_id)
            return
        handler = ROUTES.get(path)
        if handler is None and path.startswith(MODEL_PATH_PREFIX):
            handler = ("GET", handle_model)
        if handler is None and path.startswith(BATCHES_PREFIX):
            handler = (method, handle_batches)  # methods are checked per endpoint
        if handler is None:
            raise GatewayError(404, f"no such endpoint: {path}")
        wanted, function = handler
        if method != wanted:
            raise GatewayError(405, f"{path} takes {wanted}, not {method}")
        key = await authenticate(services, scope)
        request = Request(request_id, key, time.time(), time.perf_counter())
        await function(services, request, scope, receive, send)


COUNTED_REFUSALS = (401, 429)


def health_report(services: Services) -> bytes:
    """200 while the gateway serves (a load balancer should keep it): ``status`` says
    ``degraded`` when the upstream failed its last attempts, with the figures."""
    upstream = services.upstream.health.report()
    status = "ok" if upstream["healthy"] else "degraded"
    return orjson.dumps({"status": status, "upstream": upstream})


UNAUTHENTICATED = "-"


async def authenticate(services: Services, scope: Scope) -> ApiKey:
    presented = presented_key(header(scope, b"authorization"), header(scope, b"x-api-key"))
    if not presented:
        raise GatewayError(401, "missing API key: send x-api-key or Authorization: Bearer")
    key = services.keys.authenticate(presented)
    if key is None:
        raise GatewayError(401, "invalid API key")
    scope[KEY_ID] = key.id
    await services.key_rates.check(key)
    return key


def presented_key(authorization: bytes | None, api_key: bytes | None) -> str | None:
    """The key a client sent: ``Authorization: Bearer`` (SDK 2.x) or ``x-api-key`` (0.x)."""
    if api_key:
        return api_key.decode("latin-1")
    if authorization and authorization[:7].lower() == b"bearer ":
        return authorization[7:].decode("latin-1").strip()
    return None


async def handle_classify(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    body = parse_json_object(await read_body(scope, receive, services.config.max_body_bytes))
    route, text = body.get("route"), body.get("text")
    if not isinstance(route, str) or not isinstance(text, str) or not text.strip():
        raise GatewayError(400, 'expected {"route": NAME, "text": TEXT} with non-empty text')
    classifier = services.classifiers.get(route)
    if classifier is None:
        known = ", ".join(sorted(services.classifiers)) or "none"
        raise GatewayError(404, f"route: {route!r} is not a classification route ({known})")
    await classifier.answer_classify(services, request, text, receive, send)


async def handle_usage(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    query = parse_query(scope.get("query_string", b""), request.key, request.at)
    await services.ledger.flush()  # the report includes requests answered a moment ago
    report = await asyncio.to_thread(
        usage_report, services.ledger.engine, query, services.strong.name
    )
    await respond(send, 200, orjson.dumps(report), request.request_id, (), JSON)


ROUTES: dict[str, tuple[str, Any]] = {
    "/v1/messages": ("POST", handle_messages),
    "/v1/messages/count_tokens": ("POST", handle_count_tokens),
    "/v1/classify": ("POST", handle_classify),
    "/v1/usage": ("GET", handle_usage),
    "/v1/models": ("GET", handle_models),
    "/v1/audit": ("GET", handle_audit),
    "/v1/chat/completions": ("POST", handle_chat_completions),
}


def _open_classifiers(
    routes: list[ClassifyRoute], book: PriceBook, transport: Transport, shadowed: set[str]
) -> dict[str, Any]:
    """The engine's Claude tiers call through the gateway's own upstream stack: the same
    limits, retries, fallback and health as a passed-through request."""
    from tiergate.gateway.classify import Classifier

    return {
        route.name: Classifier.open(route, book, transport, shadow=route.name in shadowed)
        for route in routes
    }
