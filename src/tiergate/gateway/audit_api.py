"""``GET /v1/audit``: the live audit report of every audited route (admin keys only)."""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson

from tiergate.gateway.asgi import JSON, Receive, Scope, Send, respond
from tiergate.gateway.errors import GatewayError
from tiergate.gateway.services import Request, Services


async def handle_audit(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    if not request.key.admin:
        raise GatewayError(403, "the audit report needs an admin key")
    reports = services.audits.reports() if services.audits is not None else {}
    params = parse_qs(scope.get("query_string", b"").decode())
    route = params.get("route", [None])[-1]
    if route is not None:
        if route not in reports:
            known = ", ".join(sorted(reports)) or "none"
            raise GatewayError(404, f"route: {route!r} is not audited ({known})")
        reports = {route: reports[route]}
    await respond(send, 200, orjson.dumps({"routes": reports}), request.request_id, (), JSON)
