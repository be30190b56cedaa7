"""What a client hears once the gateway's own retries and fallbacks are done: retries in one
place.

The gateway already retried every transient failure as the SDK would and tried the fallback
model, so an upstream failure it passes on carries ``x-should-retry: false``: without it the
SDK would retry 3 times and Claude Code 10, each time re-running all of the gateway's attempts
(one SDK call made 18 upstream calls). A 401 or 403 from the upstream is about the
organisation's key in the gateway's config, never the client's: it becomes a 500 that says so,
and is logged.
"""

from __future__ import annotations

import logging

from tiergate.gateway.errors import GatewayError
from tiergate.transports.base import ApiReply, Unreachable
from tiergate.transports.retry import transient

log = logging.getLogger("tiergate.gateway")

DO_NOT_RETRY = ("x-should-retry", "false")
PASSED_HEADERS = ("retry-after", "retry-after-ms")
KEY_REFUSED = (401, 403)


def upstream_error(reply: ApiReply) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body and headers for the client, from the upstream's last error reply."""
    if reply.status in KEY_REFUSED:
        raise configuration_error(reply)
    headers = [(name, reply.headers[name]) for name in PASSED_HEADERS if name in reply.headers]
    if transient(reply.status) or reply.headers.get("x-should-retry") == "false":
        headers.append(DO_NOT_RETRY)
    return reply.status, reply.body, headers


def configuration_error(reply: ApiReply) -> GatewayError:
    log.error(
        "the upstream refused the gateway's own API key (HTTP %s from %s): check upstream.api_key"
        " / api_key_env in the gateway config",
        reply.status,
        reply.model or "the upstream",
    )
    return GatewayError(
        500,
        f"the gateway is misconfigured: the upstream API refused the organisation's API key "
        f"(HTTP {reply.status}); this is not about your key. Tell the gateway's operator to "
        "check upstream.api_key (or api_key_env) in its config.",
        headers=[DO_NOT_RETRY],
    )


def unavailable(error: Unreachable) -> GatewayError:
    return GatewayError(
        502,
        f"upstream unavailable after the gateway's retries and fallbacks: {error}",
        headers=[DO_NOT_RETRY],
    )
