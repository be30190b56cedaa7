"""The upstream seam: one way to talk to a model API, whoever is talking.

A *transport* takes an :class:`ApiCall` (method, path, body, headers) and returns an
:class:`ApiReply` (status, headers, body), or opens a stream. Everything that talks to a model
API goes through one: the Claude tiers of a route, the gateway's passthrough, the bulk runner's
live calls and its Message Batches. Cross-cutting needs are transports wrapping transports, the
way httpx composes: retries and fallback, rate limits, a bulk run's journal (recording, and
replaying on resume), recorded answers in tests. A tier never knows which of them it runs under.

A transport never raises for an HTTP status: an error status is a reply like any other (the
caller decides). It raises :class:`Unreachable` when no HTTP answer came at all (refused,
reset, timed out before the first byte).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson

MESSAGES = "/v1/messages"


class Unreachable(Exception):
    """No HTTP answer: connection refused or reset, or no first byte in time."""


class NoFirstByte(Unreachable):
    """The upstream accepted the call but sent nothing within ``ApiCall.first_byte_s``."""


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request to a model API. ``raw`` is the body as the client sent it, forwarded byte for
    byte while the model is unchanged; ``key`` names the call for journals and replays (a bulk
    run's ``line/tier``); ``input_tokens`` and ``max_tokens`` are what rate limits count."""

    path: str
    body: Mapping[str, Any] | None = None
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    key: str | None = None
    input_tokens: int = 0
    max_tokens: int = 0
    limited: bool = True  # counts against the model's rate limits (count_tokens does not)
    # No first byte (a stream's first chunk) within this many seconds: the attempt failed.
    first_byte_s: float | None = None

    @property
    def model(self) -> str:
        model = (self.body or {}).get("model")
        return model if isinstance(model, str) else ""

    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else orjson.dumps(self.body)

    def for_model(self, model: str) -> ApiCall:
        """The same call to another model (a fallback): the body is serialised anew."""
        if model == self.model:
            return self
        return replace(self, body={**(self.body or {}), "model": model}, raw=None)


@dataclass(slots=True)
class ApiReply:
    """A complete answer (maybe an error status), the model that gave it and the models tried."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    model: str = ""
    tried: list[str] = field(default_factory=list)
    parsed: Any = None  # the body as JSON, once someone asked for it

    @property
    def ok(self) -> bool:
        return self.status < 400

    def json(self) -> Any:
        if self.parsed is None:
            self.parsed = orjson.loads(self.body)
        return self.parsed


UsageReport = Callable[[int], None]


class OpenStream(Protocol):
    """A stream that started well: status and headers in, and a first chunk without an error
    event. Iterate the rest; ``aclose`` releases the connection (always call it)."""

    status: int
    headers: Mapping[str, str]
    first_chunk: bytes
    model: str
    tried: list[str]
    # Set by a wrapper that holds something until the output is known (the rate limits'
    # output-token reservation): the reader calls it with the stream's output tokens.
    on_usage: UsageReport | None

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    async def send(self, call: ApiCall) -> ApiReply: ...

    async def open_stream(self, call: ApiCall) -> OpenStream | ApiReply:
        """A stream to relay, or the final error reply when it could not start."""
        ...

    async def aclose(self) -> None: ...
