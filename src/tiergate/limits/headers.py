"""The ``anthropic-ratelimit-*`` and ``retry-after`` response headers, from limiter state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from tiergate.limits.limiter import LimitStatus


def rfc3339(epoch_seconds: float) -> str:
    """``2026-11-24T10:00:05Z``: whole seconds, UTC, as the API's reset headers are written."""
    moment = datetime.fromtimestamp(math.ceil(epoch_seconds), tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ratelimit_headers(statuses: Sequence[LimitStatus]) -> list[tuple[str, str]]:
    """Headers for each limit, plus the combined ``tokens`` one (the tighter of input/output).

    ``reset_at`` must be on the wall clock (epoch seconds), since it is written as a date.
    """
    headers: list[tuple[str, str]] = []
    for status in statuses:
        headers += _triple(status.kind, status)
    token_limits = [status for status in statuses if status.kind != "requests"]
    if token_limits:
        tightest = min(token_limits, key=lambda status: status.remaining)
        headers += _triple("tokens", tightest)
    return headers


def retry_after_value(seconds: float) -> str:
    """Whole seconds, rounded up and at least 1, as the API sends ``retry-after``."""
    return str(max(1, math.ceil(seconds)))


def _triple(kind: str, status: LimitStatus) -> list[tuple[str, str]]:
    prefix = f"anthropic-ratelimit-{kind}"
    return [
        (f"{prefix}-limit", str(status.limit)),
        (f"{prefix}-remaining", str(status.remaining)),
        (f"{prefix}-reset", rfc3339(status.reset_at)),
    ]
