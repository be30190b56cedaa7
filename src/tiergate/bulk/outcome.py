"""One output row from the engine's decision: what was answered, by whom, and what it cost."""

from __future__ import annotations

from typing import Any

from tiergate.bulk.rows import Row, RowError
from tiergate.core.cost import price_usage
from tiergate.core.prices import PriceBook
from tiergate.routing.engine import Decision
from tiergate.routing.route import LOCAL


def outcome_row(row: Row, decision: Decision, book: PriceBook, *, batch: bool) -> dict[str, Any]:
    """``cost_usd`` is what was paid (batch prices in batches mode); ``live_cost_usd`` what the
    same answers cost through the live API, so the summary can show the batch discount."""
    calls: dict[str, dict[str, float]] = {}
    for answer in decision.answers:
        if answer.tier == LOCAL or answer.model is None:
            continue
        paid = (
            price_usage(answer.usage, book.get(answer.tier), batch=True).total_usd
            if batch
            else answer.cost_usd
        )
        calls[answer.tier] = {"usd": paid, "live_usd": answer.cost_usd}
    body: dict[str, Any] = {
        "id": row.id,
        "line": row.line,
        "answer": decision.payload,
        "tier": decision.tier,
        "confidence": decision.confidence,
        "accepted": decision.accepted,
        "escalated": decision.escalated,
        "handed_to_human": decision.handed_to_human,
        "cost_usd": sum(call["usd"] for call in calls.values()),
        "live_cost_usd": sum(call["live_usd"] for call in calls.values()),
        "calls": calls,
    }
    if decision.payload is None or isinstance(decision.payload, str):
        body["label"] = decision.payload  # a classification's answer, by its usual name
    problems = {step.tier: step.problem for step in decision.trace if step.problem}
    if problems:
        body["problems"] = problems
    return body


def error_row(error: RowError) -> dict[str, Any]:
    return {"line": error.line, "id": error.id, "error": error.reason}


def upstream_failure(row: Row, decision: Decision) -> dict[str, Any] | None:
    """A row no Claude tier could answer because the calls failed: reported for a re-run."""
    failed = [step for step in decision.trace if (step.problem or "").startswith("api error")]
    if not failed or decision.accepted:
        return None
    reasons = "; ".join(f"{step.tier}: {step.problem}" for step in failed)
    return {"line": row.line, "id": row.id, "error": f"upstream failed ({reasons})"}
