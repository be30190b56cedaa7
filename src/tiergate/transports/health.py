"""Upstream health, watched from the calls going by: a transport wrapping a transport.

An attempt fails when no HTTP answer came (refused, reset, no first byte in time) or the answer
was a 5xx (529 overloaded included); any other answer, a 4xx too, shows the upstream alive.
``/healthz`` reports it: healthy until ``unhealthy_after`` failures in a row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tiergate.transports.base import ApiCall, ApiReply, OpenStream, Transport, Unreachable

UNHEALTHY_AFTER = 3


@dataclass
class HealthRecord:
    failures_in_a_row: int = 0
    attempts: int = 0
    failures: int = 0
    last_ok_at: float | None = None
    last_failure_at: float | None = None
    last_failure: str = ""

    def healthy(self, unhealthy_after: int = UNHEALTHY_AFTER) -> bool:
        return self.failures_in_a_row < unhealthy_after

    def report(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy(),
            "failures_in_a_row": self.failures_in_a_row,
            "attempts": self.attempts,
            "failures": self.failures,
            "last_ok_at": self.last_ok_at,
            "last_failure_at": self.last_failure_at,
            "last_failure": self.last_failure,
        }


class Watched:
    def __init__(self, inner: Transport, record: HealthRecord | None = None) -> None:
        self.inner = inner
        self.record = record or HealthRecord()

    async def send(self, call: ApiCall) -> ApiReply:
        try:
            reply = await self.inner.send(call)
        except Unreachable as error:
            self._failed(str(error))
            raise
        self._answered(reply.status)
        return reply

    async def open_stream(self, call: ApiCall) -> OpenStream | ApiReply:
        try:
            opened = await self.inner.open_stream(call)
        except Unreachable as error:
            self._failed(str(error))
            raise
        self._answered(opened.status)
        return opened

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _answered(self, status: int) -> None:
        record = self.record
        record.attempts += 1
        if status >= 500:
            self._fail(f"HTTP {status}")
        else:
            record.failures_in_a_row = 0
            record.last_ok_at = time.time()

    def _failed(self, why: str) -> None:
        self.record.attempts += 1
        self._fail(why)

    def _fail(self, why: str) -> None:
        record = self.record
        record.failures += 1
        record.failures_in_a_row += 1
        record.last_failure_at = time.time()
        record.last_failure = why
