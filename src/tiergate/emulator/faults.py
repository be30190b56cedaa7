"""Injected failures: error statuses, error events inside a stream, a slow first byte.

Two sources, combined per request:

- the plan (command-line flags): each request fails with a status at a given rate, streams get
  an error event at a rate, the first byte is delayed at a rate; draws come from a generator
  seeded by ``--seed``, so a run is reproducible request by request;
- the request header ``x-tiergate-fault`` (unless disabled), for tests and demos, a
  comma-separated list of directives:
  ``529`` (every attempt fails with 529), ``500*2`` (attempts whose ``x-stainless-retry-count``
  is below 2 fail), ``stream-error`` or ``stream-error@3`` (an error event after the 1st / 3rd
  content delta), ``slow=2.5`` (first byte after 2.5 s), ``retry=true|false`` (the
  ``x-should-retry`` header on this failure).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tiergate.emulator.errors import ERROR_TYPES
from tiergate.errors import TiergateError


class FaultSpecError(TiergateError, ValueError):
    """A fault flag or header that does not parse."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    failures: tuple[tuple[int, float], ...] = ()
    stream_error_rate: float = 0.0
    slow_first_byte_rate: float = 0.0
    slow_first_byte_s: float = 0.0
    # Value of x-should-retry on injected failures: "true", "false", or None to leave it out.
    should_retry: str | None = None
    header_control: bool = True

    @property
    def random_faults(self) -> bool:
        return bool(self.failures or self.stream_error_rate or self.slow_first_byte_rate)


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with one request (all fields at their defaults: nothing)."""

    status: int | None = None
    should_retry: str | None = None
    stream_error_after: int | None = None
    first_byte_delay_s: float = 0.0


NO_FAULT = Fault()


def parse_failures(spec: str) -> tuple[tuple[int, float], ...]:
    """``"529:0.01,500:0.005"`` -> ``((529, 0.01), (500, 0.005))``."""
    failures: list[tuple[int, float]] = []
    for part in filter(None, (piece.strip() for piece in spec.split(","))):
        status_text, _, rate_text = part.partition(":")
        try:
            status, rate = int(status_text), float(rate_text)
        except ValueError:
            raise FaultSpecError(f"expected STATUS:RATE like 529:0.01, got {part!r}") from None
        if not 400 <= status <= 599:
            raise FaultSpecError(f"status must be 4xx or 5xx, got {status}")
        if not 0.0 <= rate <= 1.0:
            raise FaultSpecError(f"rate must be in [0, 1], got {rate}")
        failures.append((status, rate))
    if sum(rate for _, rate in failures) > 1.0:
        raise FaultSpecError("failure rates add up to more than 1")
    return tuple(failures)


def parse_slow(spec: str) -> tuple[float, float]:
    """``"0.05:3"`` -> 5% of requests wait 3 s before the first byte."""
    rate_text, _, seconds_text = spec.partition(":")
    try:
        rate, seconds = float(rate_text), float(seconds_text)
    except ValueError:
        raise FaultSpecError(f"expected RATE:SECONDS like 0.05:3, got {spec!r}") from None
    if not 0.0 <= rate <= 1.0 or seconds < 0:
        raise FaultSpecError(f"rate must be in [0, 1] and seconds >= 0, got {spec!r}")
    return rate, seconds


class FaultInjector:
    def __init__(self, plan: FaultPlan, seed: int) -> None:
        self.plan = plan
        self._rng = random.Random(seed)

    def decide(self, header: str | None, retry_count: int, streaming: bool) -> Fault:
        if header and self.plan.header_control:
            return parse_header(header, retry_count, self.plan.should_retry)
        if not self.plan.random_faults:
            return NO_FAULT
        return self._draw(streaming)

    def _draw(self, streaming: bool) -> Fault:
        plan = self.plan
        status = None
        draw = self._rng.random()
        for candidate, rate in plan.failures:
            if draw < rate:
                status = candidate
                break
            draw -= rate
        stream_error = None
        if streaming and status is None and self._rng.random() < plan.stream_error_rate:
            stream_error = 1
        delay = 0.0
        if plan.slow_first_byte_rate and self._rng.random() < plan.slow_first_byte_rate:
            delay = plan.slow_first_byte_s
        return Fault(status, plan.should_retry, stream_error, delay)


def parse_header(value: str, retry_count: int, should_retry: str | None) -> Fault:
    """Interpret ``x-tiergate-fault`` for an attempt with the given retry count."""
    status: int | None = None
    stream_error: int | None = None
    delay = 0.0
    for directive in filter(None, (part.strip() for part in value.split(","))):
        if directive.startswith("stream-error"):
            _, _, after = directive.partition("@")
            stream_error = _int(after or "1", directive)
        elif directive.startswith("slow="):
            delay = _float(directive[5:], directive)
        elif directive.startswith("retry="):
            should_retry = directive[6:]
            if should_retry not in ("true", "false"):
                raise FaultSpecError(f"retry= takes true or false, got {directive!r}")
        else:
            code_text, _, attempts_text = directive.partition("*")
            code = _int(code_text, directive)
            if code not in ERROR_TYPES and not 400 <= code <= 599:
                raise FaultSpecError(f"not an error status: {directive!r}")
            attempts = _int(attempts_text, directive) if attempts_text else None
            if attempts is None or retry_count < attempts:
                status = code
    return Fault(status, should_retry, stream_error, delay)


def _int(text: str, directive: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FaultSpecError(f"bad fault directive {directive!r}") from None


def _float(text: str, directive: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FaultSpecError(f"bad fault directive {directive!r}") from None
