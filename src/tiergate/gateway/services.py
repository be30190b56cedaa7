"""What a request handler needs, built once per app: no module-level state anywhere."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tiergate.core.cost import price_usage
from tiergate.core.prices import ModelPrice, PriceBook
from tiergate.core.usage import Usage
from tiergate.gateway.config import GatewayConfig, RulesRoute
from tiergate.gateway.costs import usage_counts
from tiergate.gateway.metrics import Metrics
from tiergate.gateway.upstream import Upstream
from tiergate.stores import ApiKey, BudgetStore, KeyRates, KeyStore, Stores, UpstreamLimits
from tiergate.stores.ledger import Ledger, LedgerRow


@dataclass
class Services:
    config: GatewayConfig
    book: PriceBook
    stores: Stores
    upstream: Upstream
    ledger: Ledger
    metrics: Metrics
    rules: dict[str, RulesRoute]
    strong: ModelPrice
    # Classification routes: name -> tiergate.gateway.classify.Classifier, loaded at start-up.
    classifiers: dict[str, Any] = field(default_factory=dict)
    # Learned routes: name -> tiergate.gateway.learned.LearnedChooser, loaded at start-up.
    learned: dict[str, Any] = field(default_factory=dict)
    # Agent routes: name -> tiergate.gateway.agent.AgentTurns.
    agents: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> KeyStore:
        return self.stores.keys

    @property
    def budgets(self) -> BudgetStore:
        return self.stores.budgets

    @property
    def key_rates(self) -> KeyRates:
        return self.stores.key_rates

    @property
    def limits(self) -> UpstreamLimits:
        return self.stores.limits


@dataclass(slots=True)
class Request:
    """One authenticated request on its way through."""

    request_id: str
    key: ApiKey
    at: float  # wall clock, for the ledger and budgets
    started: float  # perf_counter, for latency


@dataclass(slots=True)
class Outcome:
    """What the ledger and metrics need to know about how a request ended."""

    route: str
    tier: str
    tiers_tried: list[str]
    model: str
    status: int
    outcome: str
    streamed: bool = False
    escalated: bool = False
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    strong_only_usd: float = 0.0
    ttft_s: float | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)  # for the answer
    recorded: bool = False


def price(services: Services, model: str, usage: Usage) -> tuple[float, float]:
    """The cost on ``model`` and what the strong-only baseline would have cost."""
    cost = price_usage(usage, services.book.get(model)).total_usd
    return cost, price_usage(usage, services.strong).total_usd


def record(services: Services, request: Request, outcome: Outcome) -> None:
    """The request's one ledger row (journaled at once: call it before the answer is sent)."""
    if outcome.recorded:
        return
    outcome.recorded = True
    seconds = time.perf_counter() - request.started
    counts = usage_counts(outcome.usage)
    services.ledger.add(
        LedgerRow(
            request_id=request.request_id,
            at=request.at,
            day=services.budgets.day_of(request.at),
            key_id=request.key.id,
            route=outcome.route,
            tier=outcome.tier,
            tiers_tried=",".join(outcome.tiers_tried),
            model=outcome.model,
            status=outcome.status,
            outcome=outcome.outcome,
            streamed=outcome.streamed,
            escalated=outcome.escalated,
            input_tokens=counts[0],
            output_tokens=counts[1],
            cache_write_5m_tokens=int(outcome.usage.cache_write_5m_tokens),
            cache_write_1h_tokens=int(outcome.usage.cache_write_1h_tokens),
            cache_read_tokens=counts[3],
            cost_usd=outcome.cost_usd,
            strong_only_usd=outcome.strong_only_usd,
            latency_ms=seconds * 1000.0,
            ttft_ms=None if outcome.ttft_s is None else outcome.ttft_s * 1000.0,
        )
    )
    services.metrics.request(
        outcome.route, outcome.model, outcome.status, seconds, outcome.cost_usd, counts
    )
