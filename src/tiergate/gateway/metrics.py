"""Prometheus metrics, in a registry owned by one app (no process-global registry)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

TOKEN_KINDS = ("input", "output", "cache_write", "cache_read")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    content_type = CONTENT_TYPE_LATEST.encode()

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any, tuple[Any, ...]]] = {}
        self._requests = Counter(
            "tiergate_requests",
            "Requests answered, by route, model and HTTP status",
            ["route", "model", "status"],
            registry=self.registry,
        )
        self._cost = Counter(
            "tiergate_cost_usd",
            "Dollars spent upstream, priced from the price book",
            ["route", "model"],
            registry=self.registry,
        )
        self._tokens = Counter(
            "tiergate_tokens",
            "Tokens billed, by kind (input, output, cache_write, cache_read)",
            ["model", "kind"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "tiergate_request_seconds",
            "Time from request to the last byte of the answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._rejected = Counter(
            "tiergate_rejected",
            "Requests refused before going upstream, by reason (HTTP status)",
            ["status"],
            registry=self.registry,
        )

    def request(
        self,
        route: str,
        model: str,
        status: int,
        seconds: float,
        cost_usd: float,
        tokens: tuple[int, int, int, int],
    ) -> None:
        # Children are cached per label set: prometheus-client's labels() costs a lock and a
        # tuple build on every call, which shows on the hot path.
        children = self._children.get((route, model, status))
        if children is None:
            children = self._children[(route, model, status)] = (
                self._requests.labels(route, model, str(status)),
                self._latency.labels(route),
                self._cost.labels(route, model),
                tuple(self._tokens.labels(model, kind) for kind in TOKEN_KINDS),
            )
        requests, latency, cost, token_counters = children
        requests.inc()
        latency.observe(seconds)
        if cost_usd:
            cost.inc(cost_usd)
        for counter, count in zip(token_counters, tokens, strict=True):
            if count:
                counter.inc(count)

    def rejected(self, status: int) -> None:
        self._rejected.labels(str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
