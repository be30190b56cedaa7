"""What the dashboard shows, assembled from the ledger and the audit loops (one JSON body).

Numbers come from the same functions as the API: ``usage`` is :func:`usage_report` (what
``/v1/usage`` returns to an admin key), ``audit`` is what ``/v1/audit`` returns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, Integer, cast, func, select

from tiergate.core.cost import price_usage
from tiergate.core.prices import PriceBook
from tiergate.core.usage import Usage
from tiergate.gateway import batch_holds
from tiergate.gateway.config import RulesRoute
from tiergate.gateway.usage import UsageQuery, usage_report
from tiergate.stores.ledger import requests_table

TOP_KEYS = 10


def dashboard_data(
    engine: Engine,
    query: UsageQuery,
    *,
    strong_model: str,
    book: PriceBook,
    rules: Mapping[str, RulesRoute],
    cheap_means: Mapping[str, float],
    audits: Any,
    key_names: Mapping[str, str],
    bucket_s: int,
) -> dict[str, Any]:
    usage = usage_report(engine, query, strong_model)
    by_key = sorted(usage["by_key"].items(), key=lambda item: -item[1]["spend_usd"])[:TOP_KEYS]
    return {
        "generated_at": time.time(),
        "usage": usage,
        "timeline": {
            "bucket_s": bucket_s,
            "points": timeline(engine, query, bucket_s, book, rules, cheap_means),
        },
        "top_keys": [
            {
                "key_id": key_id,
                "name": key_names.get(key_id, ""),
                "spend_usd": figures["spend_usd"],
                "requests": figures["requests"],
            }
            for key_id, figures in by_key
        ],
        "audit": audits.reports() if audits is not None else {},
        "escalations": list(reversed(audits.escalations)) if audits is not None else [],
    }


def timeline(
    engine: Engine,
    query: UsageQuery,
    bucket_s: int,
    book: PriceBook,
    rules: Mapping[str, RulesRoute],
    cheap_means: Mapping[str, float],
) -> list[dict[str, Any]]:
    """Spend per time bucket against strong-only and cheap-only.

    Cheap-only: an engine route's answered requests at its cheapest Claude tier's mean cost per
    call on the calibration data; a rules route's tokens priced on its ``cheap`` tier; other
    traffic (a model named directly) as billed.
    """
    table = requests_table
    bucket = cast(table.c.at / bucket_s, Integer).label("bucket")
    statement = (
        select(
            bucket,
            table.c.route,
            func.count().label("requests"),
            func.sum(table.c.cost_usd).label("spend"),
            func.sum(table.c.strong_only_usd).label("strong_only"),
            func.sum(table.c.input_tokens).label("input"),
            func.sum(table.c.output_tokens).label("output"),
        )
        .where(table.c.day >= query.since, table.c.day <= query.until, table.c.status == 200)
        .where(table.c.outcome.not_in(batch_holds.OUTCOMES))  # held, not spent
        .group_by(bucket, table.c.route)
        .order_by(bucket)
    )
    points: dict[int, dict[str, Any]] = {}
    with engine.connect() as connection:
        for row in connection.execute(statement):
            point = points.setdefault(
                int(row.bucket),
                {"t": int(row.bucket) * bucket_s, "spend_usd": 0.0, "strong_only_usd": 0.0,
                 "cheap_only_usd": 0.0, "requests": 0},
            )  # fmt: skip
            spend = float(row.spend or 0.0)
            point["requests"] += int(row.requests)
            point["spend_usd"] += spend
            point["strong_only_usd"] += float(row.strong_only or 0.0)
            if row.route in cheap_means:
                point["cheap_only_usd"] += cheap_means[row.route] * int(row.requests)
            elif row.route in rules and "cheap" in rules[row.route].tiers:
                usage = Usage(input_tokens=int(row.input or 0), output_tokens=int(row.output or 0))
                cheap = book.get(rules[row.route].tiers["cheap"])
                point["cheap_only_usd"] += price_usage(usage, cheap).total_usd
            else:
                point["cheap_only_usd"] += spend
    return [points[key] for key in sorted(points)]
