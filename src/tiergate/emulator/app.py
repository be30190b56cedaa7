"""The emulator as a raw ASGI app: routing, auth, version check, and writing responses.

Raw ASGI with orjson, not a framework, because the zero-latency hot path must serve thousands of
requests a second on one core. Every response carries ``request-id`` and
``x-tiergate-emulated: true``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from tiergate.api_errors import AnthropicError
from tiergate.api_lists import page_body, parse_list_query
from tiergate.api_models import listing, retrieve
from tiergate.asgi_body import ClientGone, read_body
from tiergate.emulator.batches import render, results_jsonl
from tiergate.emulator.config import EmulatorConfig
from tiergate.emulator.errors import DEFAULT_MESSAGES, ApiError, error_body, invalid
from tiergate.emulator.faults import NO_FAULT, Fault, FaultSpecError
from tiergate.emulator.messages import create_message
from tiergate.emulator.state import EmulatorState, RequestRecord
from tiergate.emulator.streaming import error_event, message_events
from tiergate.emulator.validation import check_version, parse_messages

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

log = logging.getLogger("tiergate.emulator")

JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"
JSONL = b"application/x-jsonl"
EMULATED = (b"x-tiergate-emulated", b"true")
BATCHES = "/v1/messages/batches"
# The API's request size limits: 32 MB for Messages, 256 MB for a batch.
BODY_LIMIT = 32 * 1024 * 1024
BATCH_BODY_LIMIT = 256 * 1024 * 1024
MODELS = "/v1/models"
ENDPOINTS = frozenset({"/v1/messages", "/v1/messages/count_tokens", BATCHES, MODELS})


class Reply:
    """A complete response; ``delay_s`` is waited before the first byte."""

    __slots__ = ("body", "content_type", "delay_s", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]] | None = None,
        *,
        content_type: bytes = JSON,
        delay_s: float = 0.0,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []
        self.content_type = content_type
        self.delay_s = delay_s


class StreamReply:
    """A streamed message: ``events`` paced by the model's latency, maybe broken by a fault."""

    __slots__ = ("completed", "delay_s", "fault", "headers", "model")

    def __init__(self, completed: Any, model: Any, fault: Fault, headers: list[tuple[str, str]]):
        self.completed = completed
        self.model = model
        self.fault = fault
        self.headers = headers
        self.delay_s = fault.first_byte_delay_s


class EmulatorApp:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.state = EmulatorState(config or EmulatorConfig())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        state = self.state
        request_id = state.ids.make("req")
        headers = dict(scope["headers"])
        model: str | None = None
        try:
            limit = BATCH_BODY_LIMIT if scope["path"].startswith(BATCHES) else BODY_LIMIT
            body = await read_body(scope, receive, limit)
            reply, model = await self._route(scope, headers, body)
        except AnthropicError as error:
            reply = Reply(error.status, error_body(error, request_id), error.headers)
        except ClientGone:
            return
        except Exception:
            log.exception("emulator failed on %s %s", scope["method"], scope["path"])
            failure = ApiError(500, "Internal server error")
            reply = Reply(500, error_body(failure, request_id))
        if reply.delay_s > 0:
            await asyncio.sleep(reply.delay_s)
        base = [(b"request-id", request_id.encode()), EMULATED]
        base += [(name.encode(), value.encode()) for name, value in reply.headers]
        if isinstance(reply, StreamReply):
            await self._stream(reply, base, send)
            status = 200
        else:
            base.append((b"content-type", reply.content_type))
            base.append((b"content-length", str(len(reply.body)).encode()))
            await send({"type": "http.response.start", "status": reply.status, "headers": base})
            await send({"type": "http.response.body", "body": reply.body})
            status = reply.status
        retries = headers.get(b"x-stainless-retry-count", b"0")
        state.record(
            RequestRecord(
                scope["method"],
                scope["path"],
                status,
                int(retries) if retries.isdigit() else 0,
                model,
            )
        )

    async def _route(
        self, scope: Scope, headers: dict[bytes, bytes], body: bytes
    ) -> tuple[Reply | StreamReply, str | None]:
        path: str = scope["path"].rstrip("/")
        method: str = scope["method"]
        if path == "/_tiergate/stats" and method == "GET":
            return self._stats(), None
        # The path first: an unknown one is a 404 whatever the headers, as with the API.
        if not _known_path(path):
            raise ApiError(404, "Not Found")
        self._authenticate(headers)
        version = check_version(_text(headers.get(b"anthropic-version")))
        betas = _betas(scope)
        if path == "/v1/messages":
            _only(method, "POST")
            return await self._messages(headers, body, version, betas)
        if path == "/v1/messages/count_tokens":
            _only(method, "POST")
            request = parse_messages(
                _json(body), self.state.book, version, betas=betas, count_only=True
            )
            reply = orjson.dumps({"input_tokens": request.prompt.total_tokens})
            return Reply(200, reply), request.model.name
        if path == BATCHES or path.startswith(BATCHES + "/"):
            return self._batches(scope, method, path, body, version, betas), None
        _only(method, "GET")
        if path == MODELS:
            query = parse_list_query(scope.get("query_string", b""))
            return Reply(200, orjson.dumps(listing(self.state.book, query))), None
        model_id = path.removeprefix(MODELS + "/")
        return Reply(200, orjson.dumps(retrieve(self.state.book, model_id))), None

    def _authenticate(self, headers: dict[bytes, bytes]) -> None:
        key = _text(headers.get(b"x-api-key"))
        if not key:
            authorization = _text(headers.get(b"authorization")) or ""
            if authorization[:7].lower() == "bearer ":
                key = authorization[7:].strip()
        if not key:
            raise ApiError(401, "x-api-key header is required")
        allowed = self.state.config.api_keys
        if allowed is not None and key not in allowed:
            raise ApiError(401, "invalid x-api-key")

    async def _messages(
        self, headers: dict[bytes, bytes], body: bytes, version: str, betas: frozenset[str]
    ) -> tuple[Reply | StreamReply, str | None]:
        state = self.state
        request = parse_messages(_json(body), state.book, version, betas=betas)
        fault = NO_FAULT
        if state.config.faults.header_control or state.config.faults.random_faults:
            fault = self._fault(headers, request.stream)
        if fault.status is not None:
            extra = [("x-should-retry", fault.should_retry)] if fault.should_retry else []
            message = DEFAULT_MESSAGES.get(fault.status, "Injected failure")
            raise ApiError(fault.status, message, headers=extra)
        completed = create_message(state, request)
        if request.stream:
            return StreamReply(
                completed, request.model, fault, completed.headers
            ), request.model.name
        wait = state.pacing.whole_answer_s(request.model, completed.answer.output_tokens)
        return (
            Reply(
                200,
                orjson.dumps(completed.message),
                completed.headers,
                delay_s=fault.first_byte_delay_s + wait,
            ),
            request.model.name,
        )

    def _fault(self, headers: dict[bytes, bytes], streaming: bool) -> Fault:
        retries = _text(headers.get(b"x-stainless-retry-count")) or "0"
        try:
            return self.state.faults.decide(
                _text(headers.get(b"x-tiergate-fault")),
                int(retries) if retries.isdigit() else 0,
                streaming,
            )
        except FaultSpecError as error:
            raise invalid(f"x-tiergate-fault: {error}") from None

    async def _stream(self, reply: StreamReply, base: Headers, send: Send) -> None:
        base.append((b"content-type", SSE))
        base.append((b"cache-control", b"no-cache"))
        await send({"type": "http.response.start", "status": 200, "headers": base})
        pacing = self.state.pacing
        first_token_s = pacing.first_token_s(reply.model)
        per_token_s = pacing.per_token_s(reply.model)
        break_after = reply.fault.stream_error_after
        deltas = 0
        started = time.monotonic()
        paced_tokens = 0
        for event in message_events(reply.completed.message):
            if event.is_delta:
                if not pacing.zero:
                    due = started + first_token_s + paced_tokens * per_token_s
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    paced_tokens += event.tokens
                deltas += 1
            await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
            if break_after is not None and deltas >= break_after:
                broken = error_event("overloaded_error", "Overloaded")
                await send(
                    {"type": "http.response.body", "body": broken.encode(), "more_body": True}
                )
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _batches(
        self,
        scope: Scope,
        method: str,
        path: str,
        body: bytes,
        version: str,
        betas: frozenset[str],
    ) -> Reply:
        state = self.state
        now = state.clock()
        base_url = _base_url(scope)
        rest = path.removeprefix(BATCHES).strip("/")
        if not rest:
            if method == "POST":
                batch = state.batches.create(
                    _json(body),
                    state.ids.make("msgbatch"),
                    now,
                    self._batch_answerer(version, betas),
                )
                return Reply(200, orjson.dumps(render(batch, now, base_url)))
            _only(method, "GET")
            return self._batch_page(scope, now, base_url)
        batch_id, _, action = rest.partition("/")
        if action == "" and method == "GET":
            return Reply(200, orjson.dumps(render(state.batches.get(batch_id), now, base_url)))
        if action == "" and method == "DELETE":
            state.batches.delete(batch_id, now)
            return Reply(200, orjson.dumps({"id": batch_id, "type": "message_batch_deleted"}))
        if action == "cancel" and method == "POST":
            batch = state.batches.get(batch_id)
            was_running = not batch.ended(now)
            state.batches.cancel(batch_id, now)
            return Reply(200, orjson.dumps(render(batch, now, base_url, canceling=was_running)))
        if action == "results" and method == "GET":
            batch = state.batches.get(batch_id)
            if not batch.ended(now):
                raise ApiError(
                    404, f"message_batch: {batch_id} has no results yet; it is still in progress"
                )
            return Reply(200, results_jsonl(batch), content_type=JSONL)
        raise ApiError(404, "Not Found")

    def _batch_answerer(
        self, version: str, betas: frozenset[str]
    ) -> Callable[[Any], dict[str, Any]]:
        state = self.state

        def answer_one(params: Any) -> dict[str, Any]:
            try:
                request = parse_messages(params, state.book, version, betas=betas)
                if request.stream:
                    raise invalid("stream: streaming is not supported in batches")
                completed = create_message(state, request, service_tier="batch", rate_limited=False)
            except ApiError as error:
                return {
                    "type": "errored",
                    "error": {"type": "error", "error": error.error_object()},
                }
            return {"type": "succeeded", "message": completed.message}

        return answer_one

    def _batch_page(self, scope: Scope, now: float, base_url: str) -> Reply:
        query = parse_list_query(scope.get("query_string", b""))
        batches, has_more = self.state.batches.page(query)
        data = [render(batch, now, base_url) for batch in batches]
        return Reply(200, orjson.dumps(page_body(data, has_more)))

    def _stats(self) -> Reply:
        state = self.state
        stats = {
            "emulated": True,
            "requests": state.requests_served,
            "statuses": {str(code): count for code, count in sorted(state.status_counts.items())},
            "cache_entries": len(state.cache),
        }
        return Reply(200, orjson.dumps(stats))


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise ApiError(405, f"Method {method} not allowed")


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid("There was an error parsing the body: not valid JSON") from None


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _known_path(path: str) -> bool:
    return path in ENDPOINTS or path.startswith(BATCHES + "/") or path.startswith(MODELS + "/")


def _betas(scope: Scope) -> frozenset[str]:
    """Every value of every ``anthropic-beta`` header (comma-separated, possibly repeated)."""
    return frozenset(
        beta.strip()
        for name, value in scope["headers"]
        if name == b"anthropic-beta"
        for beta in value.decode("latin-1").split(",")
        if beta.strip()
    )


def _base_url(scope: Scope) -> str:
    """This emulator's own origin, as the client reached it (for absolute ``results_url``)."""
    host = next((_text(value) for name, value in scope["headers"] if name == b"host"), None)
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
