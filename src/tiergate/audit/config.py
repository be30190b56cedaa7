"""The gateway config's ``audit:`` section: per route, how answers are sampled and re-asked.

```yaml
audit:
  tickets:                 # a route of the gateway (an engine route)
    sample_rate: 0.05      # share of answered requests audited
    min_per_stratum: 20    # and at least this many per tier and label
    mode: batches          # batches (Message Batches, half price) or live
    window: 500            # the sliding window, in audited answers
    batch_size: 100        # audits sent in one message batch (or one live burst)
    batch_wait_s: 30       # longest wait before a partial batch is sent
    poll_s: 5              # how often a message batch is polled
    reaction: none         # none, tighten, or top_tier (until recalibrated)
    tighten: 0.5           # tighten: each cheaper tier's allowed doubt shrinks by this share
    webhook: https://...   # optional: POSTed a JSON body when the budget is breached
    shadow: 0.0            # shadow mode: the top tier serves, the cheaper tiers answer in
                           # shadow on this share of requests (1.0: all, for a trial)
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODES = ("batches", "live")
REACTIONS = ("none", "tighten", "top_tier")
FIELDS = (
    "sample_rate",
    "min_per_stratum",
    "mode",
    "window",
    "batch_size",
    "batch_wait_s",
    "poll_s",
    "reaction",
    "tighten",
    "webhook",
    "seed",
    "shadow",
)


class AuditConfigError(ValueError):
    """An ``audit:`` section that cannot be used; the message names the field."""


@dataclass(frozen=True)
class RouteAudit:
    route: str
    sample_rate: float = 0.05
    min_per_stratum: int = 0
    mode: str = "batches"
    window: int = 500
    batch_size: int = 100
    batch_wait_s: float = 30.0
    poll_s: float = 5.0
    reaction: str = "none"
    tighten: float = 0.5
    webhook: str | None = None
    seed: int = 0
    shadow: float = 0.0


def parse_audit(raw: Any) -> dict[str, RouteAudit]:
    """The ``audit:`` section (route name -> settings); ``{}`` when absent."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise AuditConfigError("audit: expected a mapping of route name -> audit settings")
    return {str(name): _route(str(name), body) for name, body in raw.items()}


def check_routes(audits: Mapping[str, RouteAudit], engine_routes: set[str]) -> None:
    """Audited routes must be engine routes of the gateway (they have a top tier to ask)."""
    for name in audits:
        if name not in engine_routes:
            known = ", ".join(sorted(engine_routes)) or "none"
            raise AuditConfigError(f"audit.{name}: not an engine route of the gateway ({known})")


def _route(name: str, body: Any) -> RouteAudit:
    where = f"audit.{name}"
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise AuditConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise AuditConfigError(f"{where}: unknown setting {unknown[0]!r} ({', '.join(FIELDS)})")
    defaults = RouteAudit(name)
    rate = _number(body.get("sample_rate", defaults.sample_rate), f"{where}.sample_rate")
    if not 0.0 <= rate <= 1.0:
        raise AuditConfigError(f"{where}.sample_rate: must be between 0 and 1, got {rate}")
    mode = str(body.get("mode", defaults.mode))
    if mode not in MODES:
        raise AuditConfigError(f"{where}.mode: expected batches or live, got {mode!r}")
    reaction = str(body.get("reaction", defaults.reaction))
    if reaction not in REACTIONS:
        raise AuditConfigError(
            f"{where}.reaction: expected one of {', '.join(REACTIONS)}, got {reaction!r}"
        )
    tighten = _number(body.get("tighten", defaults.tighten), f"{where}.tighten")
    if not 0.0 < tighten <= 1.0:
        raise AuditConfigError(f"{where}.tighten: must be in (0, 1], got {tighten}")
    shadow = _number(body.get("shadow", 0.0), f"{where}.shadow")
    if not 0.0 <= shadow <= 1.0:
        raise AuditConfigError(f"{where}.shadow: must be between 0 and 1, got {shadow}")
    webhook = body.get("webhook")
    if webhook is not None and not str(webhook).startswith(("http://", "https://")):
        raise AuditConfigError(f"{where}.webhook: expected an http(s) URL")
    return RouteAudit(
        route=name,
        sample_rate=rate,
        min_per_stratum=_whole(body.get("min_per_stratum", 0), f"{where}.min_per_stratum", 0),
        mode=mode,
        window=_whole(body.get("window", defaults.window), f"{where}.window", 1),
        batch_size=_whole(body.get("batch_size", defaults.batch_size), f"{where}.batch_size", 1),
        batch_wait_s=_positive(body.get("batch_wait_s", 30.0), f"{where}.batch_wait_s"),
        poll_s=_positive(body.get("poll_s", 5.0), f"{where}.poll_s"),
        reaction=reaction,
        tighten=tighten,
        webhook=None if webhook is None else str(webhook),
        seed=_whole(body.get("seed", 0), f"{where}.seed", 0),
        shadow=shadow,
    )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuditConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _positive(value: Any, where: str) -> float:
    number = _number(value, where)
    if number <= 0:
        raise AuditConfigError(f"{where}: must be positive, got {number}")
    return number


def _whole(value: Any, where: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AuditConfigError(f"{where}: expected a whole number, got {value!r}")
    if value < least:
        raise AuditConfigError(f"{where}: must be at least {least}, got {value}")
    return value
