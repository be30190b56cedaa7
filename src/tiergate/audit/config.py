"""The gateway config's ``audit:`` section: per route, how answers are sampled and re-asked.

```yaml
audit:
  tickets:                 # an engine route of the gateway
    sample_rate: 0.05      # share of answered requests audited
    min_per_stratum: 20    # and at least this many per tier and label
    mode: batches          # audits and shadow answers: batches (Message Batches, half
                           # price) or live
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

A frozen pydantic model refusing unknown keys, like the rest of the gateway config (its own
base here, so this module imports nothing of the gateway's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
)


class RouteAudit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str = ""  # the route's name (its key in the section)
    sample_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    min_per_stratum: NonNegativeInt = 0
    mode: Literal["batches", "live"] = "batches"
    window: PositiveInt = 500
    batch_size: PositiveInt = 100
    batch_wait_s: PositiveFloat = 30.0
    poll_s: PositiveFloat = 5.0
    reaction: Literal["none", "tighten", "top_tier"] = "none"
    tighten: float = Field(default=0.5, gt=0.0, le=1.0)
    webhook: str | None = None
    seed: NonNegativeInt = 0
    shadow: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL, got {url!r}")
        return url


def named(audits: Mapping[str, RouteAudit | None]) -> dict[str, RouteAudit]:
    """Each route's settings carrying its name (``tickets:`` with nothing under it: defaults)."""
    return {
        name: (audit or RouteAudit()).model_copy(update={"route": name})
        for name, audit in audits.items()
    }


def unknown_routes(audits: Iterable[str], engine_routes: Iterable[str]) -> str | None:
    """The problem when an audited route is not an engine route of the gateway, else None."""
    known = set(engine_routes)
    for name in audits:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            return f"audit.{name}: not an engine route of the gateway ({listed})"
    return None
