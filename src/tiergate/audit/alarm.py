"""How a breach is told: Prometheus gauges, a log line, and an optional webhook."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger("tiergate.audit")
WEBHOOK_TIMEOUT_S = 5.0
SCOPES = ("window", "since_calibration")


class AuditMetrics:
    """The audit loop's series, in the gateway's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.upper = Gauge(
            "tiergate_audit_error_upper_bound",
            "Upper confidence bound on the error of accepted answers, from audits",
            ["route", "scope"],
            registry=registry,
        )
        self.lower = Gauge(
            "tiergate_audit_error_lower_bound",
            "Lower confidence bound on the error of accepted answers, from audits",
            ["route", "scope"],
            registry=registry,
        )
        self.audited = Gauge(
            "tiergate_audit_sample_size",
            "Audited answers behind the bound",
            ["route", "scope"],
            registry=registry,
        )
        self.budget = Gauge(
            "tiergate_audit_error_budget", "The route's error budget", ["route"], registry=registry
        )
        self.breached = Gauge(
            "tiergate_audit_breached",
            "1 once the lower bound of the live error crossed the budget (until recalibrated)",
            ["route"],
            registry=registry,
        )
        self.reaction = Gauge(
            "tiergate_audit_reaction_engaged",
            "1 while the route's breach reaction is in force (until recalibrated)",
            ["route"],
            registry=registry,
        )
        self.cost = Counter(
            "tiergate_audit_cost_usd",
            "Dollars spent asking the top tier again (metered apart from traffic)",
            ["route"],
            registry=registry,
        )

        self.drift = Gauge(
            "tiergate_drift",
            "Drift signals over the live window and at calibration (confidence and similarity "
            "means, escalation share; ks: distance between the live and calibration distributions)",
            ["route", "signal", "source"],
            registry=registry,
        )

    def show_drift(self, route: str, drift: dict[str, Any]) -> None:
        for signal in ("confidence", "similarity"):
            figures = drift[signal]
            for source, value in (
                ("live", figures["live_mean"]),
                ("calibration", figures["reference_mean"]),
                ("ks", figures["ks_distance"]),
            ):
                if value is not None:
                    self.drift.labels(route, signal, source).set(value)
        for source in ("live", "reference"):
            value = drift["escalation"][source]
            if value is not None:
                self.drift.labels(
                    route, "escalation", source.replace("reference", "calibration")
                ).set(value)

    def show(self, route: str, report: dict[str, Any], breached: bool, engaged: bool) -> None:
        for scope in SCOPES:
            figures = report[scope]
            self.upper.labels(route, scope).set(figures["upper_bound"])
            self.lower.labels(route, scope).set(figures["lower_bound"])
            self.audited.labels(route, scope).set(figures["audited"])
        self.budget.labels(route).set(report["error_budget"])
        self.breached.labels(route).set(1.0 if breached else 0.0)
        self.reaction.labels(route).set(1.0 if engaged else 0.0)


def breach_message(route: str, report: dict[str, Any], reaction: str) -> str:
    window = report["window"]
    allowance = float(report.get("reference_error") or 0.0)
    error = window["lower_bound"] - allowance
    return (
        f"audit: route {route!r} breached its error budget of {report['error_budget']:.2%}: "
        f"{window['errors']} of {window['audited']} audited answers disagree with the top tier "
        f"(error at least {error:.2%} at {report['confidence']:.0%} confidence"
        + (f", after the top tier's own {allowance:.2%}" if allowance else "")
        + f"); reaction: {reaction}"
    )


async def post_webhook(url: str, body: dict[str, Any]) -> None:
    """POST the breach; a failure is logged, never raised (the gateway goes on)."""
    import aiohttp

    try:
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=body) as reply,
        ):
            if reply.status >= 400:
                log.warning("audit webhook %s answered %d", url, reply.status)
    except (aiohttp.ClientError, TimeoutError) as error:
        log.warning("audit webhook %s failed: %s", url, error)
