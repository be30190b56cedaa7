"""``/dashboard``: the page, its data and its static files, for admin keys.

A browser cannot add an ``x-api-key`` header to a page it navigates to, so the page also takes
the admin key from a ``tiergate_admin_key`` cookie (set by the page's own sign-in form, kept for
the browser session, sent to this origin only); API clients send the header as usual.
"""

from __future__ import annotations

import asyncio
import time
from http.cookies import SimpleCookie
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import orjson

from tiergate.gateway.asgi import JSON, Receive, Scope, Send, header, respond
from tiergate.gateway.errors import GatewayError
from tiergate.gateway.services import Services
from tiergate.gateway.usage import parse_query
from tiergate.stores import ApiKey

PREFIX = "/dashboard"
COOKIE = "tiergate_admin_key"
HTML = b"text/html; charset=utf-8"
STATIC = {
    "dashboard.js": b"text/javascript; charset=utf-8",
    "dashboard.css": b"text/css; charset=utf-8",
    "vendor/uPlot.iife.min.js": b"text/javascript; charset=utf-8",
    "vendor/uPlot.min.css": b"text/css; charset=utf-8",
    "vendor/uPlot.LICENSE": b"text/plain; charset=utf-8",
}
DEFAULT_BUCKET_S = 300  # five minutes: 8,640 points over the default 30 days


def _static(name: str) -> bytes:
    return resources.files("tiergate.dashboard").joinpath("static", name).read_bytes()


async def handle_dashboard(
    services: Services, scope: Scope, receive: Receive, send: Send, request_id: str
) -> None:
    path = scope["path"]
    if scope["method"] != "GET":
        raise GatewayError(405, f"{path} takes GET, not {scope['method']}")
    static = path.removeprefix(PREFIX + "/static/")
    if static != path:
        if static not in STATIC:
            raise GatewayError(404, f"no such file: {path}")
        await respond(send, 200, _static(static), request_id, (), STATIC[static])
        return
    key = _admin(services, scope)
    if path in (PREFIX, PREFIX + "/"):
        page = _static("index.html") if key is not None else _static("sign_in.html")
        await respond(send, 200 if key is not None else 401, page, request_id, (), HTML)
    elif path == PREFIX + "/data":
        if key is None:
            raise GatewayError(401, "the dashboard needs an admin key")
        await services.ledger.flush()  # the page includes requests answered a moment ago
        body = await asyncio.to_thread(_data, services, scope, key)
        await respond(send, 200, orjson.dumps(body), request_id, (), JSON)
    else:
        raise GatewayError(404, f"no such endpoint: {path}")


def _admin(services: Services, scope: Scope) -> ApiKey | None:
    from tiergate.gateway.app import presented_key

    presented = presented_key(header(scope, b"authorization"), header(scope, b"x-api-key"))
    if not presented:
        raw = header(scope, b"cookie")
        if raw:
            cookie = SimpleCookie(raw.decode("latin-1"))
            if COOKIE in cookie:
                presented = cookie[COOKIE].value
    key = services.keys.authenticate(presented) if presented else None
    return key if key is not None and key.admin else None


def _data(services: Services, scope: Scope, key: ApiKey) -> dict[str, Any]:
    from tiergate.dashboard.data import dashboard_data

    params = parse_qs(scope.get("query_string", b"").decode())
    try:
        bucket_s = int(params.get("bucket_s", [DEFAULT_BUCKET_S])[-1])
    except ValueError:
        raise GatewayError(400, "bucket_s: expected a whole number of seconds") from None
    if bucket_s < 1:
        raise GatewayError(400, "bucket_s: must be at least 1")
    query = parse_query(scope.get("query_string", b""), key, time.time())
    cheap_means = {
        name: mean
        for name, classifier in services.classifiers.items()
        if (mean := classifier.cheap_mean_usd) is not None
    }
    return dashboard_data(
        services.ledger.engine,
        query,
        strong_model=services.strong.name,
        book=services.book,
        rules=services.rules,
        cheap_means=cheap_means,
        audits=services.audits,
        key_names={k.id: k.name for k in services.keys.list()},
        bucket_s=bucket_s,
    )
