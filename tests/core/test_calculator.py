from dataclasses import replace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tiergate.core.calculator import (
    Levers,
    Workload,
    break_even_escalation,
    compare,
    tiered_per_request,
)
from tiergate.core.cost import price_usage
from tiergate.core.prices import load_price_book
from tiergate.core.target import what_it_takes
from tiergate.core.usage import Usage

BOOK = load_price_book(use_env=False)
HAIKU, SONNET = BOOK.get("claude-haiku-4-5"), BOOK.get("claude-sonnet-4-6")
LESSON = Workload.from_rpm(10_000, 400, 20)
shares = st.floats(min_value=0.0, max_value=1.0)
token_counts = st.floats(min_value=1.0, max_value=50_000.0)


def test_the_lesson_worked_example() -> None:
    result = compare(LESSON, Levers(escalation=0.2), HAIKU, SONNET, BOOK.local_latency)
    assert result.workload.requests_per_day == 14_400_000
    assert result.cheap_only.per_request_usd == pytest.approx(0.0005)
    assert result.strong_only.per_request_usd == pytest.approx(0.0015)
    assert result.tiered.per_request_usd == pytest.approx(0.0008)
    assert result.cheap_only.per_day_usd == pytest.approx(7_200)
    assert result.strong_only.per_day_usd == pytest.approx(21_600)
    assert result.tiered.per_day_usd == pytest.approx(11_520)
    assert result.tiered.per_month_usd == pytest.approx(11_520 * 30)
    assert result.savings_vs_strong == pytest.approx(0.4667, abs=5e-5)
    assert result.break_even_escalation == pytest.approx(2 / 3)
    # 80% of requests stop at Haiku, so the median request has Haiku's latency.
    assert result.tiered.p50_latency_s == pytest.approx(result.cheap_only.p50_latency_s)


def test_preroute_never_pays_twice_so_it_has_no_break_even() -> None:
    result = compare(
        LESSON, Levers(escalation=0.2, mode="preroute"), HAIKU, SONNET, BOOK.local_latency
    )
    assert result.tiered.per_request_usd == pytest.approx(0.8 * 0.0005 + 0.2 * 0.0015)
    assert result.break_even_escalation is None


def test_short_prompts_are_not_cached_and_the_calculator_says_so() -> None:
    result = compare(LESSON, Levers(cached_input=0.9), HAIKU, SONNET, BOOK.local_latency)
    assert result.tiered.per_request_usd == pytest.approx(0.0008)
    assert any("minimum cacheable" in note for note in result.notes)


def test_long_cached_prompts_are_cheaper_including_refresh_writes() -> None:
    workload = Workload.from_rpm(10_000, 10_000, 20)
    plain = tiered_per_request(workload, Levers(), HAIKU, SONNET)
    cached = tiered_per_request(workload, Levers(cached_input=0.9), HAIKU, SONNET)
    assert cached < plain
    reads_only = 0.8 * 0 + price_usage(Usage(1000, 20, cache_read_tokens=9000), HAIKU).total_usd
    reads_only += 0.2 * price_usage(Usage(1000, 20, cache_read_tokens=9000), SONNET).total_usd
    assert cached > reads_only  # the per-TTL writes are charged, not assumed away


def test_target_saving_of_80_percent_needs_more_than_model_choice() -> None:
    report = what_it_takes(LESSON, Levers(escalation=0.2), HAIKU, SONNET, 0.8)
    by_lever = {answer.lever: answer for answer in report.answers}
    assert by_lever["escalation"].needed is None
    assert by_lever["escalation"].best_saving == pytest.approx(2 / 3, abs=1e-3)
    assert by_lever["cached_input"].needed is None
    combined = [answer for answer in report.answers if answer.lever.startswith("together")]
    assert any(answer.needed is not None for answer in combined)
    for answer in combined:
        if answer.needed is not None:
            escalation = float(answer.lever.split("(")[1].split("%")[0]) / 100
            levers = Levers(escalation=escalation, batch=0.5, local=answer.needed)
            cost = tiered_per_request(LESSON, levers, HAIKU, SONNET)
            assert 1 - cost / 0.0015 >= 0.8 - 1e-9


def test_target_within_reach_by_escalation() -> None:
    report = what_it_takes(LESSON, Levers(escalation=0.2), HAIKU, SONNET, 0.5)
    escalation = next(a for a in report.answers if a.lever == "escalation")
    assert escalation.needed == pytest.approx(1 / 6, abs=1e-3)


@given(token_counts, token_counts, shares, shares, shares)
def test_cascade_is_cheap_plus_escalation_times_strong(
    inputs: float, outputs: float, escalation: float, local: float, batch: float
) -> None:
    assume(escalation + local <= 1.0)
    workload = Workload(1_000_000, inputs, outputs)
    levers = Levers(escalation=escalation, local=local, batch=batch)
    cheap_only = tiered_per_request(
        workload, replace(levers, escalation=0.0, local=0.0), HAIKU, SONNET
    )
    strong_alone = tiered_per_request(
        workload, replace(levers, escalation=1.0, local=0.0), HAIKU, SONNET
    )
    strong_only = strong_alone - cheap_only  # escalation 1 pays cheap and strong
    expected = (1 - local) * cheap_only + escalation * strong_only
    assert tiered_per_request(workload, levers, HAIKU, SONNET) == pytest.approx(expected, rel=1e-9)


@given(token_counts, token_counts, st.floats(0.0, 0.9))
def test_tiered_equals_strong_only_at_break_even(
    inputs: float, outputs: float, local: float
) -> None:
    workload = Workload(1_000_000, inputs, outputs)
    levers = Levers(escalation=0.0, local=local)
    point = break_even_escalation(workload, levers, HAIKU, SONNET)
    assume(point is not None)
    assert point is not None
    strong_only = price_usage(Usage(inputs, outputs), SONNET).total_usd
    at_point = tiered_per_request(workload, replace(levers, escalation=point), HAIKU, SONNET)
    assert at_point == pytest.approx(strong_only, rel=1e-6)


@given(token_counts, token_counts, shares, shares)
def test_tiered_cost_grows_with_escalation_and_falls_with_local(
    inputs: float, outputs: float, first: float, second: float
) -> None:
    workload = Workload(1000, inputs, outputs)
    low, high = sorted((first, second))
    assert (
        tiered_per_request(workload, Levers(escalation=low), HAIKU, SONNET)
        <= tiered_per_request(workload, Levers(escalation=high), HAIKU, SONNET) + 1e-15
    )
    assert (
        tiered_per_request(workload, Levers(escalation=0, local=high), HAIKU, SONNET)
        <= tiered_per_request(workload, Levers(escalation=0, local=low), HAIKU, SONNET) + 1e-15
    )


@pytest.mark.parametrize(
    "levers",
    [
        {"escalation": 1.5},
        {"escalation": -0.1},
        {"cached_input": 2},
        {"escalation": 0.6, "local": 0.6},
    ],
)
def test_levers_reject_impossible_shares(levers: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Levers(**levers)  # type: ignore[arg-type]
