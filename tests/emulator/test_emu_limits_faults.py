"""Rate limits (429 + retry-after), overload (529), injected faults, and the SDK's retries.

Retries are checked by what the server saw (``x-stainless-retry-count`` per request), not by
timing.
"""

from __future__ import annotations

import anthropic
import pytest
from conftest import FAKE_KEY, HAIKU, Serve, body_of, user

from tiergate.emulator import EmulatorServer, FaultPlan
from tiergate.limits import RateLimits

BIG = "word " * 1000  # more than the whole input bucket below


def retry_counts(emulator: EmulatorServer) -> list[int]:
    return [record.retry_count for record in emulator.state.records("/v1/messages")]


def test_rate_limit_headers_on_success(serve: Serve) -> None:
    with serve(limits=RateLimits(rpm=50, itpm=10_000, otpm=2_000)) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        raw = sdk.messages.with_raw_response.create(
            model=HAIKU, max_tokens=100, messages=user("Hi")
        )
        message = raw.parse()
    headers = raw.headers
    assert headers["anthropic-ratelimit-requests-limit"] == "50"
    assert headers["anthropic-ratelimit-requests-remaining"] == "49"
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == str(
        10_000 - message.usage.input_tokens
    )
    # max_tokens was reserved, then the unused part given back.
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == str(
        2_000 - message.usage.output_tokens
    )
    assert headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert "anthropic-ratelimit-tokens-limit" in headers


def test_rate_limit_error_without_retries(serve: Serve) -> None:
    with serve(limits=RateLimits(rpm=2)) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url, max_retries=0)
        for _ in range(2):
            sdk.messages.create(model=HAIKU, max_tokens=5, messages=user("Hi"))
        with pytest.raises(anthropic.RateLimitError) as caught:
            sdk.messages.create(model=HAIKU, max_tokens=5, messages=user("Hi"))
        # Limits are per model: another model still has its own bucket.
        sdk.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=user("Hi"))
    response = caught.value.response
    assert body_of(caught.value)["error"]["type"] == "rate_limit_error"
    assert int(response.headers["retry-after"]) == 30  # one request refills in 60 / 2 s
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_sdk_retry_honours_retry_after(serve: Serve) -> None:
    # 600 input tokens a minute = 10 a second: the big prompt empties the bucket, and the next
    # small one (9 tokens) must wait under a second, so retry-after is 1 and one retry succeeds.
    with serve(limits=RateLimits(itpm=600)) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url, max_retries=2)
        sdk.messages.create(model=HAIKU, max_tokens=5, messages=user(BIG))
        message = sdk.messages.create(model=HAIKU, max_tokens=5, messages=user("Hi there"))
        statuses = [record.status for record in running.state.records("/v1/messages")]
        assert message.content
        assert statuses == [200, 429, 200]
        assert retry_counts(running) == [0, 0, 1]


def test_overloaded_error(serve: Serve) -> None:
    with serve(faults=FaultPlan(failures=((529, 1.0),))) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url, max_retries=0)
        with pytest.raises(anthropic.OverloadedError) as caught:
            sdk.messages.create(model=HAIKU, max_tokens=5, messages=user("Hi"))
    assert caught.value.status_code == 529
    assert body_of(caught.value)["error"]["type"] == "overloaded_error"


def test_sdk_retries_recover_from_transient_faults(
    client: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    message = client.messages.create(
        model=HAIKU, max_tokens=5, messages=user("Hi"), extra_headers={"x-tiergate-fault": "500*2"}
    )
    assert message.content
    assert [record.status for record in emulator.state.records()] == [500, 500, 200]
    assert retry_counts(emulator) == [0, 1, 2]


def test_retries_give_up_after_the_last_attempt(
    client: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(
            model=HAIKU,
            max_tokens=5,
            messages=user("Hi"),
            extra_headers={"x-tiergate-fault": "529*5"},
        )
    assert retry_counts(emulator) == [0, 1, 2]


def test_should_retry_false_stops_the_sdk(
    client: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(
            model=HAIKU,
            max_tokens=5,
            messages=user("Hi"),
            extra_headers={"x-tiergate-fault": "500,retry=false"},
        )
    assert retry_counts(emulator) == [0]


def test_should_retry_true_retries_a_400(
    client: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    client.messages.create(
        model=HAIKU,
        max_tokens=5,
        messages=user("Hi"),
        extra_headers={"x-tiergate-fault": "400*1,retry=true"},
    )
    assert retry_counts(emulator) == [0, 1]


def test_mid_stream_error_is_raised_and_not_retried(
    client: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(
            model=HAIKU,
            max_tokens=200,
            messages=user("Stream"),
            extra_headers={"x-tiergate-fault": "stream-error@2"},
        ) as stream,
    ):
        received.extend(stream.text_stream)
    assert body_of(caught.value)["error"]["type"] == "overloaded_error"
    assert len(received) == 2
    assert retry_counts(emulator) == [0]


def test_random_faults_follow_the_seed(serve: Serve) -> None:
    outcomes = []
    for _ in range(2):
        plan = FaultPlan(failures=((529, 0.3), (500, 0.2)))
        with serve(seed=11, faults=plan) as running:
            sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url, max_retries=0)
            seen = []
            for _ in range(40):
                try:
                    sdk.messages.create(model=HAIKU, max_tokens=5, messages=user("Hi"))
                    seen.append(200)
                except anthropic.APIStatusError as error:
                    seen.append(error.status_code)
            outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    assert {200, 500, 529} <= set(outcomes[0])


def test_bad_fault_header_is_a_400(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(
            model=HAIKU,
            max_tokens=5,
            messages=user("Hi"),
            extra_headers={"x-tiergate-fault": "banana"},
        )


def test_fault_header_can_be_disabled(serve: Serve) -> None:
    with serve(faults=FaultPlan(header_control=False)) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url, max_retries=0)
        message = sdk.messages.create(
            model=HAIKU,
            max_tokens=5,
            messages=user("Hi"),
            extra_headers={"x-tiergate-fault": "529"},
        )
    assert message.content
