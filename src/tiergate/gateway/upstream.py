"""The gateway's upstream: the transport seam, stacked for a gateway.

One attempt over HTTP (``transports/http.py``: aiohttp with keep-alive), watched for
``/healthz`` (``health.py``), held to the organisation's rate limits (``limited.py``), retried
and fallen back as the SDK would (``retry.py``): the same retry loop the Claude tiers use, for
complete answers and streams alike. This module only builds that stack from the config and
says what each call may take: which headers go upstream, and how long the upstream may keep
silent before an attempt counts as failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiergate.gateway.config import UpstreamConfig
from tiergate.stores.base import UpstreamLimits
from tiergate.transports.base import ApiCall, ApiReply, OpenStream, Unreachable
from tiergate.transports.health import HealthRecord, Watched
from tiergate.transports.http import HttpSettings, HttpTransport
from tiergate.transports.limited import Limited
from tiergate.transports.retry import Retrying, RetryPolicy, transient

FORWARDED_HEADERS = (b"anthropic-version", b"anthropic-beta")
FAULT_HEADER = b"x-tiergate-fault"
GATEWAY_VERSION = "2023-06-01"  # sent when the client named no API version

__all__ = ["ApiCall", "ApiReply", "OpenStream", "Unreachable", "Upstream", "transient"]


class Upstream:
    def __init__(self, config: UpstreamConfig, limits: UpstreamLimits) -> None:
        self.config = config
        self.limits = limits
        self.health = HealthRecord()
        self.policy = RetryPolicy(
            max_retries=config.max_retries,
            base_s=config.retry_base_s,
            max_wait_s=config.max_retry_wait_s,
            fallbacks=dict(config.fallbacks),
        )
        http = HttpTransport(
            HttpSettings(
                config.base_url,
                config.api_key,
                connect_timeout_s=config.connect_timeout_s,
                read_timeout_s=config.timeout_s,
                connections=config.connections,
            )
        )
        self.transport = Retrying(Limited(Watched(http, self.health), limits), self.policy)

    async def start(self) -> None:
        return

    async def close(self) -> None:
        await self.transport.aclose()

    def headers_for(self, client_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
        """What goes upstream: the client's API version and betas, never the client's key."""
        headers: dict[str, str] = {}
        for name, value in client_headers:
            if name in FORWARDED_HEADERS or (
                name == FAULT_HEADER and self.config.forward_fault_header
            ):
                headers[name.decode()] = value.decode("latin-1")
        headers.setdefault("anthropic-version", GATEWAY_VERSION)
        return headers

    def models_for(self, model: str) -> list[str]:
        return self.policy.models_for(model)

    def call(
        self,
        path: str,
        raw: bytes,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        input_tokens: int = 0,
        max_tokens: int = 0,
        limited: bool = True,
    ) -> ApiCall:
        """One call upstream. The first byte is due within ``first_byte_timeout_s``; for a
        complete (non-streamed) answer, whose head comes only when it is all written, plus
        ``max_tokens`` at ``slowest_tokens_per_s``."""
        first_byte = self.config.first_byte_timeout_s
        if body.get("stream") is not True and max_tokens:
            first_byte += max_tokens / self.config.slowest_tokens_per_s
        return ApiCall(
            path,
            body,
            "POST",
            headers,
            raw,
            None,
            input_tokens,
            max_tokens,
            limited,
            first_byte,
        )

    async def send(self, call: ApiCall) -> ApiReply:
        """A complete answer after retries and fallback (maybe an error status), or
        :class:`Unreachable` when no attempt got one."""
        return await self.transport.send(call)

    async def send_once(self, call: ApiCall) -> ApiReply:
        """One attempt, no retry and no fallback: for a call that must not happen twice."""
        return await self.transport.inner.send(call)

    async def open_stream(self, call: ApiCall) -> OpenStream | ApiReply:
        """A stream to relay, or the final error reply when every attempt failed."""
        return await self.transport.open_stream(call)
