"""The gateway's audit loops, one per audited route, and the latest escalations of every engine
route (for the dashboard): started and stopped with the app."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from tiergate.audit.alarm import AuditMetrics
from tiergate.audit.config import RouteAudit
from tiergate.audit.loop import RouteAuditor
from tiergate.routing.engine import Decision

ESCALATIONS_KEPT = 50
TEXT_SHOWN = 200  # characters of a request's text kept with its escalation


class Audits:
    def __init__(self, auditors: Mapping[str, RouteAuditor]) -> None:
        self.routes = dict(auditors)
        self.escalations: deque[dict[str, Any]] = deque(maxlen=ESCALATIONS_KEPT)

    def _observer(self, route: str, auditor: RouteAuditor | None) -> Callable[..., None]:
        def observe(request_id: str, at: float, text: str, decision: Decision) -> None:
            if decision.escalated:
                self.escalations.append(
                    {
                        "request_id": request_id,
                        "at": at,
                        "route": route,
                        "text": text[:TEXT_SHOWN],
                        "tier": decision.tier,
                        "accepted": decision.accepted,
                        "trace": decision.to_dict()["trace"],
                    }
                )
            if auditor is not None:
                auditor.observe(request_id, at, text, decision)

        return observe

    @classmethod
    async def start(
        cls,
        settings: Mapping[str, RouteAudit],
        classifiers: Mapping[str, Any],
        engine: Engine,
        registry: CollectorRegistry,
    ) -> Audits:
        metrics = AuditMetrics(registry)
        audits = cls({})
        for name, classifier in classifiers.items():
            auditor = None
            if name in settings:
                auditor = RouteAuditor(settings[name], classifier, engine, metrics)
                await auditor.start()
                audits.routes[name] = auditor
            classifier.observer = audits._observer(name, auditor)
        return audits

    async def drain(self) -> None:
        for auditor in self.routes.values():
            await auditor.drain()

    async def close(self) -> None:
        for auditor in self.routes.values():
            await auditor.close()

    def reports(self) -> dict[str, dict[str, Any]]:
        return {name: auditor.report() for name, auditor in self.routes.items()}
