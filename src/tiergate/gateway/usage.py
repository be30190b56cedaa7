"""``GET /v1/usage``: spend, requests, tier shares and savings against strong-only.

Grouped four ways (per key, route, model and day) over a range of days. Savings compare what
was paid with the same usage priced on the strong model (for classification routes: the strong
tier's own cost where it ran, else its mean cost on the calibration data). A key sees its own
rows; an admin key sees all, or one key's with ``?key_id=``. Batches whose results were not read
yet are reported apart (``batch_holds``: their worst case, held against their day's budget), not
as spend.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Engine, func, select

from tiergate.gateway import batch_holds
from tiergate.gateway.errors import GatewayError
from tiergate.stores import ApiKey, utc_day
from tiergate.stores.ledger import refusals_table, requests_table

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DIMENSIONS = ("key_id", "route", "model", "day")


@dataclass(frozen=True)
class UsageQuery:
    since: str
    until: str
    key_id: str | None


MAX_DAYS = 36_600  # a century: far enough back for any ledger, near enough for the clock


def parse_query(query_string: bytes, key: ApiKey, now: float) -> UsageQuery:
    text = query_string.decode("latin-1")
    params = {name: values[-1] for name, values in parse_qs(text).items()}
    until = params.get("until", utc_day(now))
    if "since" in params:
        since = params["since"]
    else:
        try:
            days = int(params.get("days", "30"))
        except ValueError:
            raise GatewayError(400, "days: expected a whole number") from None
        if not 1 <= days <= MAX_DAYS:
            raise GatewayError(400, f"days: expected 1 to {MAX_DAYS}")
        since = utc_day(now - (days - 1) * 86400)
    for name, value in (("since", since), ("until", until)):
        if not DAY.match(value):
            raise GatewayError(400, f"{name}: expected a day as YYYY-MM-DD, got {value!r}")
    key_id = params.get("key_id") if key.admin else key.id
    return UsageQuery(since, until, key_id)


@dataclass
class Totals:
    requests: int = 0
    answered: int = 0
    spend_usd: float = 0.0
    strong_only_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    tiers: dict[str, int] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        self.requests += row["requests"]
        self.spend_usd += row["spend"] or 0.0
        self.input_tokens += row["input"] or 0
        self.output_tokens += row["output"] or 0
        self.cache_write_tokens += row["cache_write"] or 0
        self.cache_read_tokens += row["cache_read"] or 0
        if row["status"] == 200:
            self.answered += row["requests"]
            self.strong_only_usd += row["strong_only"] or 0.0
            self.tiers[row["tier"]] = self.tiers.get(row["tier"], 0) + row["requests"]

    def report(self) -> dict[str, Any]:
        saved = self.strong_only_usd - self.spend_usd
        return {
            "requests": self.requests,
            "answered": self.answered,
            "spend_usd": round(self.spend_usd, 10),
            "strong_only_usd": round(self.strong_only_usd, 10),
            "savings_usd": round(saved, 10),
            "savings_share": saved / self.strong_only_usd if self.strong_only_usd else None,
            "tier_shares": {
                tier: count / self.answered for tier, count in sorted(self.tiers.items())
            },
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_read_tokens": self.cache_read_tokens,
        }


def usage_report(engine: Engine, query: UsageQuery, strong_model: str) -> dict[str, Any]:
    rows = _grouped(engine, query)
    total = Totals()
    groups: dict[str, dict[str, Totals]] = {name: {} for name in DIMENSIONS}
    for row in rows:
        total.add(row)
        for name in DIMENSIONS:
            groups[name].setdefault(row[name], Totals()).add(row)
    report = {
        "since": query.since,
        "until": query.until,
        "generated_at": time.time(),
        "strong_model": strong_model,
        "total": total.report(),
        "refused": _refused(engine, query),
        "batch_holds": batch_holds.open_holds(engine, query.since, query.until, query.key_id),
        **{
            f"by_{name.removesuffix('_id')}": {
                value: totals.report() for value, totals in sorted(groups[name].items())
            }
            for name in DIMENSIONS
        },
    }
    if query.key_id is None:  # the operator's own spend, apart from the traffic's: admins only
        from tiergate.audit.records import audit_spend

        report["audit"] = audit_spend(engine, query.since, query.until)
    return report


def _refused(engine: Engine, query: UsageQuery) -> dict[str, int]:
    """Requests refused (budget, limits, keys), by HTTP status: counted, never rows."""
    table = refusals_table
    statement = (
        select(table.c.status, func.sum(table.c.count))
        .where(table.c.day >= query.since, table.c.day <= query.until)
        .group_by(table.c.status)
    )
    if query.key_id is not None:
        statement = statement.where(table.c.key_id == query.key_id)
    with engine.connect() as connection:
        return {str(status): int(count) for status, count in connection.execute(statement)}


def _grouped(engine: Engine, query: UsageQuery) -> Iterable[Mapping[str, Any]]:
    table = requests_table
    columns = [table.c.key_id, table.c.route, table.c.model, table.c.day, table.c.tier]
    statement = (
        select(
            *columns,
            table.c.status,
            func.count().label("requests"),
            func.sum(table.c.cost_usd).label("spend"),
            func.sum(table.c.strong_only_usd).label("strong_only"),
            func.sum(table.c.input_tokens).label("input"),
            func.sum(table.c.output_tokens).label("output"),
            func.sum(table.c.cache_write_5m_tokens + table.c.cache_write_1h_tokens).label(
                "cache_write"
            ),
            func.sum(table.c.cache_read_tokens).label("cache_read"),
        )
        .where(table.c.day >= query.since, table.c.day <= query.until)
        .where(table.c.outcome.not_in(batch_holds.OUTCOMES))  # reported apart: batch_holds
        .group_by(*columns, table.c.status)
    )
    if query.key_id is not None:
        statement = statement.where(table.c.key_id == query.key_id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(statement)]
