"""The cost calculator: cheap-only, strong-only and tiered, per request, day and month.

Pure functions over a :class:`~tiergate.core.prices.PriceBook` row. Every dollar comes from
:func:`tiergate.core.cost.price_usage`.

Definitions used throughout:

- ``escalation`` is the share of *all* requests whose final answer comes from the strong tier.
  In ``cascade`` mode those requests paid the cheap tier first; in ``preroute`` mode a router
  sent them straight to the strong tier.
- ``local`` is the share answered by the free local tier (it runs first, for everyone).
- ``cached_input`` is the share of each prompt's input tokens read from the prompt cache. A
  prefix shorter than the model's minimum cacheable length is not cached (as in the API), and the
  cache is re-written once per 5-minute TTL per model, at the 5-minute write price.
- ``batch`` is the share of requests sent through the Message Batches API (discounted, and
  answered within hours, so they are left out of the latency figure).
- The cheap-only and strong-only baselines are plain list-price calls with no levers: what a
  team pays today calling one model directly. The levers apply to the tiered strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from tiergate.core.cost import price_usage
from tiergate.core.prices import LatencyProfile, ModelPrice
from tiergate.core.usage import Usage

Mode = Literal["cascade", "preroute"]
DAYS_PER_MONTH = 30
MINUTES_PER_DAY = 24 * 60
CACHE_TTL_MINUTES = 5


@dataclass(frozen=True, slots=True)
class Workload:
    requests_per_day: float
    input_tokens: float
    output_tokens: float

    def __post_init__(self) -> None:
        for name in ("requests_per_day", "input_tokens", "output_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @classmethod
    def from_rpm(cls, rpm: float, input_tokens: float, output_tokens: float) -> Workload:
        return cls(rpm * MINUTES_PER_DAY, input_tokens, output_tokens)


@dataclass(frozen=True, slots=True)
class Levers:
    escalation: float = 0.2
    mode: Mode = "cascade"
    cached_input: float = 0.0
    batch: float = 0.0
    local: float = 0.0

    def __post_init__(self) -> None:
        for name in ("escalation", "cached_input", "batch", "local"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {value}")
        if self.escalation + self.local > 1.0 + 1e-12:
            raise ValueError(
                f"escalation ({self.escalation}) plus local share ({self.local}) exceed 1: "
                "a request is answered by one tier"
            )
        if self.mode not in ("cascade", "preroute"):
            raise ValueError(f"mode must be cascade or preroute, got {self.mode!r}")


@dataclass(frozen=True, slots=True)
class StrategyCost:
    per_request_usd: float
    per_day_usd: float
    per_month_usd: float
    p50_latency_s: float


@dataclass(frozen=True)
class Comparison:
    workload: Workload
    levers: Levers
    cheap: ModelPrice
    strong: ModelPrice
    cheap_only: StrategyCost
    strong_only: StrategyCost
    tiered: StrategyCost
    break_even_escalation: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def savings_vs_strong(self) -> float:
        return _saving(self.tiered.per_request_usd, self.strong_only.per_request_usd)

    @property
    def cheap_only_savings_vs_strong(self) -> float:
        return _saving(self.cheap_only.per_request_usd, self.strong_only.per_request_usd)


def _saving(cost: float, baseline: float) -> float:
    return 1.0 - cost / baseline if baseline > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _TierCost:
    per_request_usd: float
    note: str | None


def _tier_cost(
    model: ModelPrice, workload: Workload, levers: Levers, requests_per_day: float
) -> _TierCost:
    """Average cost of one request on ``model`` under the caching and batching levers."""
    cached = levers.cached_input * workload.input_tokens
    note = None
    if cached > 0 and cached < model.min_cacheable_tokens:
        note = (
            f"a cached prefix of {cached:,.0f} tokens is below {model.name}'s minimum cacheable "
            f"length of {model.min_cacheable_tokens:,}: the API does not cache it, so it is "
            "priced as plain input"
        )
        cached = 0.0
    usage = Usage(input_tokens=workload.input_tokens - cached, output_tokens=workload.output_tokens)
    usage = replace(usage, cache_read_tokens=cached)
    live = price_usage(usage, model).total_usd
    batched = price_usage(usage, model, batch=True).total_usd
    per_request = (1.0 - levers.batch) * live + levers.batch * batched
    if cached > 0 and requests_per_day > 0:
        # One write per TTL keeps the prefix warm; a write replaces a read, so add the difference.
        refreshes = min(requests_per_day, MINUTES_PER_DAY / CACHE_TTL_MINUTES)
        write = price_usage(Usage(cache_write_5m_tokens=cached), model).total_usd
        read = price_usage(Usage(cache_read_tokens=cached), model).total_usd
        per_request += refreshes * (write - read) / requests_per_day
    return _TierCost(per_request, note)


def _median(parts: Sequence[tuple[float, float]]) -> float:
    """Median of a mixture given (share, latency) parts."""
    live = [(share, latency) for share, latency in parts if share > 0]
    total = sum(share for share, _ in live)
    if total <= 0:
        return 0.0
    running = 0.0
    for share, latency in sorted(live, key=lambda part: part[1]):
        running += share
        if running >= total / 2 - 1e-12:
            return latency
    return live[-1][1]


def _strategy(per_request: float, workload: Workload, p50: float) -> StrategyCost:
    per_day = per_request * workload.requests_per_day
    return StrategyCost(per_request, per_day, per_day * DAYS_PER_MONTH, p50)


def tiered_per_request(
    workload: Workload, levers: Levers, cheap: ModelPrice, strong: ModelPrice
) -> float:
    """Cost of one average request under the tiered strategy."""
    return _tiered(workload, levers, cheap, strong)[0]


def _tiered(
    workload: Workload, levers: Levers, cheap: ModelPrice, strong: ModelPrice
) -> tuple[float, list[str]]:
    cheap_share = (
        1.0 - levers.local if levers.mode == "cascade" else 1.0 - levers.local - levers.escalation
    )
    cheap_share = max(cheap_share, 0.0)
    volume = workload.requests_per_day
    cheap_cost = _tier_cost(cheap, workload, levers, cheap_share * volume)
    strong_cost = _tier_cost(strong, workload, levers, levers.escalation * volume)
    cost = (
        cheap_share * cheap_cost.per_request_usd + levers.escalation * strong_cost.per_request_usd
    )
    notes = [note for note in (cheap_cost.note, strong_cost.note) if note]
    return cost, sorted(set(notes))


def _tiered_latency(
    workload: Workload, levers: Levers, cheap: ModelPrice, strong: ModelPrice, local: LatencyProfile
) -> float:
    live = 1.0 - levers.batch
    first = local.ttft_s if levers.local > 0 else 0.0
    cheap_s = first + cheap.latency.seconds(workload.output_tokens)
    strong_s = strong.latency.seconds(workload.output_tokens)
    if levers.mode == "cascade":
        strong_s += cheap_s
        accepted = 1.0 - levers.local - levers.escalation
    else:
        strong_s += first
        accepted = 1.0 - levers.local - levers.escalation
    return _median(
        [
            (live * levers.local, local.ttft_s),
            (live * accepted, cheap_s),
            (live * levers.escalation, strong_s),
        ]
    )


def break_even_escalation(
    workload: Workload, levers: Levers, cheap: ModelPrice, strong: ModelPrice
) -> float | None:
    """The escalation share at which tiered costs as much as strong-only.

    None when tiered stays cheaper at every possible escalation share.
    """
    strong_plain = _plain(strong, workload)
    at_zero = _tiered(workload, replace(levers, escalation=0.0), cheap, strong)[0]
    top = 1.0 - levers.local
    at_top = _tiered(workload, replace(levers, escalation=top), cheap, strong)[0]
    if at_top <= strong_plain:
        return None
    if at_zero >= strong_plain:
        return 0.0
    # Cost is linear in the escalation share between the two ends (cache refreshes aside,
    # which are a fixed daily amount), so interpolate, then polish by bisection.
    low, high = 0.0, top
    for _ in range(80):
        middle = (low + high) / 2
        cost = _tiered(workload, replace(levers, escalation=middle), cheap, strong)[0]
        if cost < strong_plain:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _plain(model: ModelPrice, workload: Workload) -> float:
    return price_usage(Usage(workload.input_tokens, workload.output_tokens), model).total_usd


def compare(
    workload: Workload,
    levers: Levers,
    cheap: ModelPrice,
    strong: ModelPrice,
    local_latency: LatencyProfile,
) -> Comparison:
    cheap_plain = _plain(cheap, workload)
    strong_plain = _plain(strong, workload)
    tiered_cost, notes = _tiered(workload, levers, cheap, strong)
    if cheap_plain > strong_plain:
        notes.append(f"{cheap.name} costs more per request than {strong.name} for this workload")
    return Comparison(
        workload=workload,
        levers=levers,
        cheap=cheap,
        strong=strong,
        cheap_only=_strategy(cheap_plain, workload, cheap.latency.seconds(workload.output_tokens)),
        strong_only=_strategy(
            strong_plain, workload, strong.latency.seconds(workload.output_tokens)
        ),
        tiered=_strategy(
            tiered_cost, workload, _tiered_latency(workload, levers, cheap, strong, local_latency)
        ),
        break_even_escalation=break_even_escalation(workload, levers, cheap, strong),
        notes=notes,
    )
