"""The gateway's audit loops, one per audited route: started and stopped with the app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from tiergate.audit.alarm import AuditMetrics
from tiergate.audit.config import RouteAudit
from tiergate.audit.loop import RouteAuditor


class Audits:
    def __init__(self, auditors: Mapping[str, RouteAuditor]) -> None:
        self.routes = dict(auditors)

    @classmethod
    async def start(
        cls,
        settings: Mapping[str, RouteAudit],
        classifiers: Mapping[str, Any],
        engine: Engine,
        registry: CollectorRegistry,
    ) -> Audits:
        metrics = AuditMetrics(registry)
        auditors = {}
        for name, route in settings.items():
            classifier = classifiers[name]
            auditor = RouteAuditor(route, classifier, engine, metrics)
            classifier.observer = auditor.observe
            await auditor.start()
            auditors[name] = auditor
        return cls(auditors)

    async def drain(self) -> None:
        for auditor in self.routes.values():
            await auditor.drain()

    async def close(self) -> None:
        for auditor in self.routes.values():
            auditor.classifier.observer = None
            await auditor.close()

    def reports(self) -> dict[str, dict[str, Any]]:
        return {name: auditor.report() for name, auditor in self.routes.items()}
