"""Budget and ledger edge cases a review found: each test failed before its fix."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tiergate.core.content import content_tokens
from tiergate.core.prices import load_price_book
from tiergate.gateway.costs import body_bound, max_cost_usd
from tiergate.stores import ApiKey, BudgetExceeded, MemoryBudgets
from tiergate.stores.ledger import Ledger, LedgerRow

DAY = 86_400.0
NOW = 1_795_000_000.0 - (1_795_000_000.0 % DAY) + 3_600.0  # 01:00 UTC
BOOK = load_price_book(use_env=False)


def test_a_request_stamped_before_midnight_does_not_reset_today() -> None:
    key = ApiKey("key_1", "k", "h", 0.0, budget_usd_day=1.0)
    budgets = MemoryBudgets(now=NOW)
    budgets.settle(budgets.reserve_now(key, 0.9, NOW), 0.9)
    budgets.settle(budgets.reserve_now(key, 0.01, NOW - 2 * 3_600.0), 0.0)  # stamped yesterday
    with pytest.raises(BudgetExceeded, match="daily budget"):
        budgets.reserve_now(key, 0.5, NOW + 1.0)


def test_content_by_reference_is_bounded_by_the_context_window() -> None:
    haiku = BOOK.get("claude-haiku-4-5")
    plain = (
        b'{"model":"claude-haiku-4-5","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}'
    )
    by_url = plain.replace(
        b'"content":"hi"',
        b'"content":[{"type":"document","source":{"type":"url","url":"https://example.com/a.pdf"}}]',
    )
    assert body_bound([haiku], plain, 1) < 0.001
    assert body_bound([haiku], by_url, 1) >= haiku.context_window * haiku.input / 1_000_000
    with_tools = max_cost_usd([haiku], 100, 1, False, tools=True)
    allowance = content_tokens().tools_system_tokens
    assert with_tools == pytest.approx((100 + allowance + 5) / 1_000_000)


def _row(request_id: str) -> LedgerRow:
    return LedgerRow(
        request_id,
        NOW,
        "2026-11-24",
        "key_1",
        "direct",
        "direct",
        "m",
        "m",
        200,
        "ok",
        False,
        False,
        10,
        1,
        0,
        0,
        0,
        0.0001,
        0.0003,
        1.0,
        None,
    )


async def test_a_flush_cancelled_mid_write_writes_each_row_once(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", flush_s=3_600)
    writing, release = threading.Event(), threading.Event()
    real_write = ledger._write

    def slow_write(rows: list[tuple[Any, ...]], refusals: Counter[tuple[str, str, int]]) -> None:
        writing.set()
        release.wait(5)
        real_write(rows, refusals)

    ledger._write = slow_write  # type: ignore[method-assign]
    ledger.add(_row("req_1"))
    flush = asyncio.ensure_future(ledger.flush())
    await asyncio.to_thread(writing.wait, 5)
    flush.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flush
    release.set()
    await ledger.close()
    ids = [row["request_id"] for row in Ledger(f"sqlite:///{tmp_path / 'ledger.db'}").rows()]
    assert ids == ["req_1"]
