"""The pure token bucket and per-model limiter: time is passed in, never read."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from tiergate.limits import ModelLimiter, RateLimits, TokenBucket, ratelimit_headers, rfc3339


def test_refills_continuously() -> None:
    bucket = TokenBucket.per_minute(60, now=0.0)
    assert bucket.try_take(60, 0.0)
    assert not bucket.try_take(1, 0.5)
    assert bucket.wait_for(1, 0.5) == 0.5
    assert bucket.try_take(1, 1.0)
    assert bucket.available(1000.0) == 60  # never above capacity


def test_debt_is_repaid_first() -> None:
    bucket = TokenBucket.per_minute(60, now=0.0)
    bucket.take(90, 0.0)
    assert bucket.available(0.0) == -30
    assert bucket.wait_for(1, 0.0) == 31
    assert math.isinf(bucket.wait_for(61, 0.0))


@given(
    st.lists(st.tuples(st.floats(0, 30), st.floats(0, 200)), max_size=30),
    st.integers(1, 10_000),
)
def test_never_above_capacity_and_waits_are_exact(
    steps: list[tuple[float, float]], limit: int
) -> None:
    bucket = TokenBucket.per_minute(limit, now=0.0)
    now = 0.0
    for gap, amount in steps:
        now += gap
        wait = bucket.wait_for(amount, now)
        taken = bucket.try_take(amount, now)
        assert taken == (wait == 0.0)
        if not taken and math.isfinite(wait):
            assert bucket.try_take(amount, now + wait + 1e-6)
            now += wait + 1e-6
        assert bucket.available(now) <= bucket.capacity


def test_limiter_refuses_with_the_tightest_limit_and_settles_output() -> None:
    limiter = ModelLimiter(RateLimits(rpm=100, itpm=1000, otpm=600))
    first = limiter.admit("m", 0.0, input_tokens=900, max_output_tokens=500)
    assert first.allowed and first.reserved_output == 500
    limiter.settle("m", 0.0, reserved_output=500, used_output=100)
    second = limiter.admit("m", 0.0, input_tokens=200, max_output_tokens=100)
    assert not second.allowed and second.limited_by == "input-tokens"
    assert math.isclose(second.retry_after_s, 100 / (1000 / 60))
    remaining = {status.kind: status.remaining for status in limiter.status("m", 0.0)}
    assert remaining == {"requests": 99, "input-tokens": 100, "output-tokens": 500}
    assert limiter.admit("other", 0.0, 900, 500).allowed  # per model


def test_headers_are_rfc3339_and_include_tokens() -> None:
    limiter = ModelLimiter(RateLimits(rpm=10, itpm=100, otpm=50))
    limiter.admit("m", 1_790_000_000.0, 10, 50)
    headers = dict(ratelimit_headers(limiter.status("m", 1_790_000_000.0)))
    assert headers["anthropic-ratelimit-tokens-remaining"] == "0"  # output is the tighter one
    assert headers["anthropic-ratelimit-requests-reset"] == rfc3339(1_790_000_006.0)
    assert rfc3339(0.2) == "1970-01-01T00:00:01Z"


def test_unlimited_costs_nothing() -> None:
    limiter = ModelLimiter()
    assert limiter.admit("m", 0.0, 10**9, 10**9).allowed
    assert limiter.status("m", 0.0) == []
