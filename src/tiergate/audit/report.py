"""The audit report from the ledger (``tiergate audit``), and audited texts for recalibration.

The same tally as the gateway's live loop (:class:`~tiergate.audit.estimate.Tally`), rebuilt
from the ``audits`` table: records since the route's last calibration (the calibration file's
time), the sliding window as the gateway config sets it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiergate.audit.config import RouteAudit
from tiergate.audit.estimate import BREACHED, Tally
from tiergate.audit.records import AUDIT, DONE, SHADOW, AuditRecord, read_records
from tiergate.errors import TiergateError
from tiergate.progress import NO_PROGRESS, Tracker
from tiergate.routing.route import Route, load_route
from tiergate.routing.runtime import POLICY_FILE, RuntimeSetupError, load_calibration
from tiergate.tiers.base import TierAnswer

SILVER_FILE = "audit_calibration.jsonl"


class AuditReportError(TiergateError, ValueError):
    """The report cannot be made as asked (the message says why)."""


@dataclass(frozen=True)
class AuditedRoute:
    """A gateway route with an audit section, and the route file behind it."""

    name: str
    route: Route
    settings: RouteAudit
    ledger_url: str


def audited_route(
    config_path: Path, name: str | None, route_file: Path | None = None
) -> AuditedRoute:
    """The gateway route ``name`` (or the one serving ``route_file``) of a gateway config."""
    from tiergate.gateway.config import ClassifyRoute, ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError as error:
        raise AuditReportError(str(error)) from None
    engine_routes = {n: r for n, r in config.routes.items() if isinstance(r, ClassifyRoute)}
    if name is None and route_file is not None:
        wanted = load_route(route_file).path.resolve()
        found = [
            n for n, r in engine_routes.items() if load_route(r.route_file).path.resolve() == wanted
        ]
        if not found:
            raise AuditReportError(f"{config_path}: no route of the gateway serves {route_file}")
        name = found[0]
    if name not in engine_routes:
        known = ", ".join(sorted(engine_routes)) or "none"
        raise AuditReportError(f"{config_path}: {name!r} is not an engine route ({known})")
    settings = config.audits.get(name, RouteAudit(route=name))
    return AuditedRoute(
        name, load_route(engine_routes[name].route_file), settings, config.ledger_url
    )


def calibration_time(route: Route) -> float:
    try:
        return (route.artifacts / POLICY_FILE).stat().st_mtime
    except OSError:
        return 0.0


def ledger_records(
    audited: AuditedRoute, *, since: float, kinds: tuple[str, ...]
) -> list[AuditRecord]:
    from tiergate.stores.ledger import open_engine

    engine = open_engine(audited.ledger_url)
    try:
        return read_records(engine, audited.name, since=since, kinds=kinds)
    finally:
        engine.dispose()


def reference_error(route: Route) -> float:
    """The top tier's error on the calibration tickets (the allowance of ``estimate``); 0 for
    an uncalibrated route or a calibration without the figure."""
    try:
        calibration = load_calibration(route)
    except RuntimeSetupError:
        return 0.0
    accuracy = calibration.accuracy_alone.get(route.tiers[-1])
    return 0.0 if accuracy is None else 1.0 - accuracy


def audit_report(audited: AuditedRoute, *, tracker: Tracker = NO_PROGRESS) -> dict[str, Any]:
    """What ``tiergate audit ROUTE`` prints: the live estimate since the last calibration.

    ``tracker`` sees one stage: the audit records replayed, with what their audits cost."""
    route = audited.route
    calibration = load_calibration(route)
    since = calibration_time(route)
    records = ledger_records(audited, since=since, kinds=(AUDIT,))
    tally = Tally(audited.settings.window, reference_error(route))
    breached_at = None
    with tracker.stage("audit records replayed", len(records), unit="records") as stage:
        for record in records:  # replayed in order: a breach stands until the next calibration
            stage.advance(cost_usd=record.cost_usd)
            trial = record.audited()
            if trial is None:
                continue
            tally.add(trial)
            if (
                breached_at is None
                and tally.window_verdict(calibration.error_budget, route.confidence) == BREACHED
            ):
                breached_at = record.at
    report = tally.report(calibration.error_budget, route.confidence)
    report.update(
        breached=breached_at is not None,
        breached_at=breached_at,
        route=audited.name,
        calibrated_at=since,
        records=len(records),
        failed=sum(1 for record in records if record.status != DONE),
        audit_cost_usd=round(sum(record.cost_usd for record in records), 10),
        mode=audited.settings.mode,
        sample_rate=audited.settings.sample_rate,
    )
    return report


def silver_examples(audited: AuditedRoute, *, since_calibration: bool = True) -> Path:
    """Audited (and shadowed) texts with the top tier's answers as their labels, written as a
    JSONL data file in the route's artifacts for ``tiergate calibrate --data``."""
    rows = _silver_rows(audited, since_calibration)
    if not rows:
        raise AuditReportError(
            f"route {audited.name!r} has no audited answers with a top-tier reference"
            + (" since its last calibration" if since_calibration else "")
        )
    path = audited.route.artifacts / SILVER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for record in rows:
            label = record.reference_payload
            handle.write(
                json.dumps({"text": record.text, "label": label, "id": record.request_id}) + "\n"
            )
    return path


def _silver_rows(audited: AuditedRoute, since_calibration: bool) -> list[AuditRecord]:
    since = calibration_time(audited.route) if since_calibration else 0.0
    records = ledger_records(audited, since=since, kinds=(AUDIT, SHADOW))
    return [r for r in records if r.status == DONE and r.reference is not None]


def recorded_answers(
    audited: AuditedRoute, *, since_calibration: bool = True
) -> dict[str, dict[str, TierAnswer]]:
    """The Claude answers kept with the audited texts :func:`silver_examples` writes (text ->
    tier -> answer), for ``calibrate --from-audit`` to reuse instead of asking again."""
    known: dict[str, dict[str, TierAnswer]] = {}
    for record in _silver_rows(audited, since_calibration):
        known.setdefault(record.text, {}).update(record.recorded_answers())
    return known


def router_records(
    audited: AuditedRoute, folder: Path, *, test_share: float = 0.2
) -> dict[str, int]:
    """Shadow comparisons as the pre-call router's training records (``tiergate router train
    --data FOLDER --silver``): per prompt, every tier's answer and cost, the top tier's from the
    request's ledger row. Unlabelled (``correct: null``): ``--silver`` scores each model by
    agreement with the top tier. The last ``test_share`` of them (in time) go to test.jsonl."""
    from sqlalchemy import select

    from tiergate.stores.ledger import open_engine, requests_table

    records = [
        r
        for r in ledger_records(audited, since=0.0, kinds=(SHADOW,))
        if r.status == DONE and r.reference is not None
    ]
    if not records:
        raise AuditReportError(f"route {audited.name!r} has no shadow records")
    engine = open_engine(audited.ledger_url)
    try:
        table = requests_table
        query = select(table.c.request_id, table.c.cost_usd).where(
            table.c.request_id.in_([r.request_id for r in records])
        )
        with engine.connect() as connection:
            served = {row.request_id: float(row.cost_usd) for row in connection.execute(query)}
    finally:
        engine.dispose()
    lines = []
    for record in records:
        models = {
            tier: {
                "correct": None,
                "cost": entry["cost_usd"],
                "answer": _comparable(entry["answer"]),
            }
            for tier, entry in json.loads(record.answer).items()
        }
        models[record.reference_tier] = {
            "correct": None,
            "cost": served.get(record.request_id, 0.0),
            "answer": _comparable(record.reference_payload),
        }
        lines.append(json.dumps({"id": record.request_id, "prompt": record.text, "models": models}))
    folder.mkdir(parents=True, exist_ok=True)
    cut = len(lines) - int(len(lines) * test_share)
    (folder / "train.jsonl").write_text("".join(line + "\n" for line in lines[:cut]))
    (folder / "test.jsonl").write_text("".join(line + "\n" for line in lines[cut:]))
    return {"train": cut, "test": len(lines) - cut}


def _comparable(payload: Any) -> str | None:
    """An answer as the router's records compare them: a label as it is, else sorted JSON."""
    if payload is None or isinstance(payload, str):
        return payload
    return json.dumps(payload, sort_keys=True)
