"""Audit records in the ledger's database: one row per audited (or shadowed) request.

Kept beside the request's ledger row (same ``request_id``) in the ``audits`` table (Alembic
revisions 0003 and 0004). Each row holds the text (what ``calibrate --from-audit`` refits on),
the answer the ladder gave, the reference answer of the top tier and whether they agree, what
the audit cost (metered apart from the traffic's spend), and every tier's answer known for the
request, features included (what ``calibrate --from-audit`` reuses instead of asking again).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)

from tiergate.audit.estimate import Audited
from tiergate.routing.runtime import answer_from_row, answer_row
from tiergate.tiers.base import TierAnswer

AUDIT, SHADOW = "audit", "shadow"
DONE, FAILED = "done", "failed"

metadata = MetaData()
audits_table = Table(
    "audits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(40), nullable=False, unique=True),
    Column("at", Float, nullable=False),
    Column("day", String(10), nullable=False, index=True),
    Column("route", String(100), nullable=False, index=True),
    Column("kind", String(10), nullable=False),
    Column("tier", String(100), nullable=False),
    Column("label", String(200), nullable=False),
    Column("accepted", Boolean, nullable=False),
    Column("by_rate", Boolean, nullable=False),
    Column("text", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("reference_tier", String(100), nullable=False),
    Column("reference", Text, nullable=True),
    Column("agree", Boolean, nullable=True),
    Column("status", String(10), nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("problem", String(400), nullable=True),
    Column("answers", Text, nullable=True),  # revision 0004
)


@dataclass(slots=True)
class AuditRecord:
    request_id: str
    at: float
    day: str
    route: str
    kind: str
    tier: str
    label: str
    accepted: bool
    by_rate: bool
    text: str
    answer: str  # JSON of the payload
    reference_tier: str
    reference: str | None  # JSON of the top tier's payload; None when it gave none
    agree: bool | None
    status: str
    cost_usd: float
    problem: str | None = None
    # JSON: each tier's answer known for the request (the hot path's, the audit's or shadow's),
    # as ``routing.runtime.answer_row`` records it, so a refit reuses them.
    answers: str | None = None

    def audited(self) -> Audited | None:
        """The record as a trial of the live estimate (accepted answers with a reference)."""
        if not self.accepted or self.agree is None:
            return None
        return Audited(self.tier, self.label, self.agree, self.by_rate, self.at)

    def keep_answers(self, answers: Iterable[TierAnswer]) -> None:
        """Record these answers beside any already kept (one per tier)."""
        kept = json.loads(self.answers) if self.answers else {}
        kept.update({answer.tier: answer_row(answer) for answer in answers})
        self.answers = json.dumps(kept)

    def recorded_answers(self) -> dict[str, TierAnswer]:
        kept = json.loads(self.answers) if self.answers else {}
        return {tier: answer_from_row(tier, row) for tier, row in kept.items()}

    @property
    def reference_payload(self) -> Any:
        return None if self.reference is None else json.loads(self.reference)


def write_records(engine: Engine, records: Sequence[AuditRecord]) -> None:
    """Insert records (a request audited twice keeps its first record)."""
    if not records:
        return
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(audits_table).on_conflict_do_nothing(index_elements=["request_id"])
    with engine.begin() as connection:
        connection.execute(statement, [asdict(record) for record in records])


def read_records(
    engine: Engine, route: str, *, since: float = 0.0, kinds: Iterable[str] = (AUDIT,)
) -> list[AuditRecord]:
    """A route's records from ``since`` (seconds since the epoch), oldest first."""
    table = audits_table
    query = (
        select(table)
        .where(table.c.route == route, table.c.at >= since, table.c.kind.in_(list(kinds)))
        .order_by(table.c.at, table.c.id)
    )
    with engine.connect() as connection:
        return [_record(dict(row._mapping)) for row in connection.execute(query)]


def _record(row: Mapping[str, Any]) -> AuditRecord:
    values = {name: row[name] for name in AuditRecord.__dataclass_fields__}
    return AuditRecord(**values)


def audit_spend(engine: Engine, since_day: str, until_day: str) -> dict[str, Any]:
    """What auditing cost, per route and kind, between two days (for ``/v1/usage``)."""
    table = audits_table
    statement = (
        select(
            table.c.route,
            table.c.kind,
            func.count().label("records"),
            func.sum(table.c.cost_usd).label("spend"),
        )
        .where(table.c.day >= since_day, table.c.day <= until_day)
        .group_by(table.c.route, table.c.kind)
    )
    by_route: dict[str, dict[str, Any]] = {}
    total = 0.0
    count = 0
    with engine.connect() as connection:
        for route, kind, records, spend in connection.execute(statement):
            entry = by_route.setdefault(route, {"records": 0, "spend_usd": 0.0, "by_kind": {}})
            entry["records"] += int(records)
            entry["spend_usd"] = round(entry["spend_usd"] + float(spend or 0.0), 10)
            entry["by_kind"][kind] = {"records": int(records), "spend_usd": float(spend or 0.0)}
            total += float(spend or 0.0)
            count += int(records)
    return {"records": count, "spend_usd": round(total, 10), "by_route": by_route}
