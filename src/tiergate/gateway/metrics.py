"""Prometheus metrics, in a registry owned by one app (no process-global registry).

The per-request metrics (requests, cost, tokens, latency) are plain numbers in dicts, read
into Prometheus families only when ``/metrics`` is scraped (:class:`RequestCounts`):
prometheus-client's counters take a lock and check their state on every ``inc``, some seven
times a request, which showed on the hot path. The text rendered is the same (``_total``,
``_created``, histogram buckets). Everything runs on the gateway's event loop, so plain
numbers need no lock.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

TOKEN_KINDS = ("input", "output", "cache_write", "cache_read")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# As prometheus-client writes them ("0.001", "1.0", "+Inf").
BUCKET_NAMES = [*(repr(float(bound)) for bound in LATENCY_BUCKETS), "+Inf"]


class Series:
    """One label set's running total, and when it was first seen (Prometheus's ``_created``)."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()


class Latencies:
    """One route's histogram: a count per bucket (not cumulative), the sum, ``_created``."""

    __slots__ = ("counts", "created", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0
        self.created = time.time()


class RequestCounts(Collector):
    """The per-request metrics, read into Prometheus families at scrape time."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], Series] = {}
        self.cost: dict[tuple[str, str], Series] = {}
        self.tokens: dict[tuple[str, str], Series] = {}
        self.latency: dict[str, Latencies] = {}

    def collect(self) -> Iterator[Metric]:
        yield _counter(
            "tiergate_requests",
            "Requests answered, by route, model and HTTP status",
            ["route", "model", "status"],
            self.requests.items(),
        )
        yield _counter(
            "tiergate_cost_usd",
            "Dollars spent upstream, priced from the price book",
            ["route", "model"],
            self.cost.items(),
        )
        yield _counter(
            "tiergate_tokens",
            "Tokens billed, by kind (input, output, cache_write, cache_read)",
            ["model", "kind"],
            self.tokens.items(),
        )
        histogram = HistogramMetricFamily(
            "tiergate_request_seconds",
            "Time from request to the last byte of the answer",
            labels=["route"],
        )
        for route, latencies in list(self.latency.items()):
            running, buckets = 0, []
            for name, count in zip(BUCKET_NAMES, latencies.counts, strict=True):
                running += count
                buckets.append((name, float(running)))
            histogram.add_metric([route], buckets, latencies.total)
            histogram.samples.append(
                Sample("tiergate_request_seconds_created", {"route": route}, latencies.created)
            )
        yield histogram


def _counter(
    name: str,
    documentation: str,
    labels: list[str],
    series: Iterable[tuple[tuple[str, ...], Series]],
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for values, one in list(series):
        family.add_metric(list(values), one.value, created=one.created)
    return family


class Metrics:
    content_type = CONTENT_TYPE_LATEST.encode()

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Per label set: (requests, latency, cost, the four token kinds' series).
        self._children: dict[
            tuple[str, str, int], tuple[Series, Latencies, Series, tuple[Series, ...]]
        ] = {}
        self._counts = RequestCounts()
        self.registry.register(self._counts)
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
        children = self._children.get((route, model, status))
        if children is None:
            children = self._children[(route, model, status)] = self._series(route, model, status)
        requests, latency, cost, token_series = children
        requests.value += 1
        latency.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency.total += seconds
        if cost_usd:
            cost.value += cost_usd
        for series, count in zip(token_series, tokens, strict=True):
            if count:
                series.value += count

    def _series(
        self, route: str, model: str, status: int
    ) -> tuple[Series, Latencies, Series, tuple[Series, ...]]:
        counts = self._counts
        return (
            counts.requests.setdefault((route, model, str(status)), Series()),
            counts.latency.setdefault(route, Latencies()),
            counts.cost.setdefault((route, model), Series()),
            tuple(counts.tokens.setdefault((model, kind), Series()) for kind in TOKEN_KINDS),
        )

    def rejected(self, status: int) -> None:
        self._rejected.labels(str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
