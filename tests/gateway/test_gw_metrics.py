"""The per-request metrics, kept as plain numbers, render as prometheus-client's own would."""

from __future__ import annotations

import re
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tiergate.gateway.metrics import LATENCY_BUCKETS, TOKEN_KINDS, Metrics

REQUESTS = [
    ("direct", "claude-haiku-4-5", 200, 0.0049, 0.0002, (10, 5, 0, 0)),
    ("direct", "claude-haiku-4-5", 200, 0.005, 0.0003, (12, 7, 3, 0)),  # on a bucket's bound
    ("auto", "claude-sonnet-4-5", 529, 61.0, 0.0, (0, 0, 0, 0)),  # past the last bound
    ("auto", "claude-haiku-4-5", 200, 0.0004, 0.0001, (4, 2, 0, 9)),
]


def reference(requests: Sequence[tuple[str, str, int, float, float, tuple[int, ...]]]) -> str:
    """What prometheus-client's Counter and Histogram write for the same requests."""
    registry = CollectorRegistry()
    counted = Counter(
        "tiergate_requests",
        "Requests answered, by route, model and HTTP status",
        ["route", "model", "status"],
        registry=registry,
    )
    cost = Counter(
        "tiergate_cost_usd",
        "Dollars spent upstream, priced from the price book",
        ["route", "model"],
        registry=registry,
    )
    tokens = Counter(
        "tiergate_tokens",
        "Tokens billed, by kind (input, output, cache_write, cache_read)",
        ["model", "kind"],
        registry=registry,
    )
    latency = Histogram(
        "tiergate_request_seconds",
        "Time from request to the last byte of the answer",
        ["route"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    for route, model, status, seconds, usd, counts in requests:
        counted.labels(route, model, str(status)).inc()
        latency.labels(route).observe(seconds)
        cost.labels(route, model)
        if usd:
            cost.labels(route, model).inc(usd)
        for kind, count in zip(TOKEN_KINDS, counts, strict=True):
            tokens.labels(model, kind).inc(count)
    return generate_latest(registry).decode()


def without_created_values(text: str) -> list[str]:
    """Lines with every ``_created`` timestamp blanked (they differ by microseconds)."""
    return [re.sub(r"(_created\{.*\}) \S+$", r"\1 T", line) for line in text.splitlines()]


def test_the_metrics_text_is_prometheus_clients_own() -> None:
    metrics = Metrics()
    for request in REQUESTS:
        metrics.request(*request)
    ours = without_created_values(metrics.render().decode())
    theirs = without_created_values(reference(REQUESTS))
    rejected = next(i for i, line in enumerate(ours) if "tiergate_rejected" in line)
    assert ours[:rejected] == theirs
    assert 'tiergate_request_seconds_bucket{le="0.005",route="direct"} 2.0' in ours
    assert 'tiergate_request_seconds_bucket{le="60.0",route="auto"} 1.0' in ours
    assert 'tiergate_request_seconds_bucket{le="+Inf",route="auto"} 2.0' in ours
