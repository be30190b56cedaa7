"""Message Batches through the SDK: create, poll, results, list, cancel, delete."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from conftest import FAKE_KEY, HAIKU, Serve

from tiergate.emulator import ManualClock


def params(text: str, **extra: Any) -> Any:
    return {
        "model": HAIKU,
        "max_tokens": 20,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def test_batch_created_polled_and_read(serve: Serve) -> None:
    clock = ManualClock()
    with serve(clock=clock, batch_processing_s=60) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        batch = sdk.messages.batches.create(
            requests=[
                {"custom_id": "a", "params": params("First")},
                {"custom_id": "b", "params": params("Second")},
                {"custom_id": "bad", "params": params("Third", messages=[])},
            ]
        )
        assert batch.processing_status == "in_progress"
        assert batch.request_counts.processing == 3
        assert batch.results_url is None
        clock.advance(30)
        assert sdk.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        clock.advance(31)
        ended = sdk.messages.batches.retrieve(batch.id)
        results = {
            entry.custom_id: entry.result for entry in sdk.messages.batches.results(batch.id)
        }
        live = sdk.messages.create(**params("First"))
    assert ended.processing_status == "ended"
    assert ended.results_url == f"{running.base_url}/v1/messages/batches/{batch.id}/results"
    assert ended.request_counts.succeeded == 2 and ended.request_counts.errored == 1
    assert ended.ended_at is not None
    first = results["a"]
    assert first.type == "succeeded"
    assert first.message.usage.service_tier == "batch"
    assert first.message.content == live.content
    assert results["bad"].type == "errored"
    assert results["bad"].error.error.type == "invalid_request_error"


def test_cancel_keeps_the_processed_share(serve: Serve) -> None:
    clock = ManualClock()
    with serve(clock=clock, batch_processing_s=100) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        requests: Any = [{"custom_id": f"r{n}", "params": params(f"Text {n}")} for n in range(10)]
        batch = sdk.messages.batches.create(requests=requests)
        clock.advance(40)
        canceling = sdk.messages.batches.cancel(batch.id)
        ended = sdk.messages.batches.retrieve(batch.id)
        kinds = [entry.result.type for entry in sdk.messages.batches.results(batch.id)]
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 4 and ended.request_counts.canceled == 6
    assert kinds == ["succeeded"] * 4 + ["canceled"] * 6


def test_a_batch_still_processing_after_24_hours_expires(serve: Serve) -> None:
    clock = ManualClock()
    with serve(clock=clock, batch_processing_s=48 * 3600) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        requests: Any = [{"custom_id": f"r{n}", "params": params(f"Text {n}")} for n in range(10)]
        batch = sdk.messages.batches.create(requests=requests)
        clock.advance(24 * 3600 - 1)
        assert sdk.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        clock.advance(1)
        ended = sdk.messages.batches.retrieve(batch.id)
        kinds = [entry.result.type for entry in sdk.messages.batches.results(batch.id)]
    assert ended.processing_status == "ended" and ended.ended_at == ended.expires_at
    assert ended.request_counts.succeeded == 5 and ended.request_counts.expired == 5
    assert kinds == ["succeeded"] * 5 + ["expired"] * 5


def test_list_and_delete(serve: Serve) -> None:
    clock = ManualClock()
    with serve(clock=clock, batch_processing_s=10) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        made = []
        for n in range(5):
            made.append(
                sdk.messages.batches.create(
                    requests=[{"custom_id": "x", "params": params(str(n))}]
                ).id
            )
            clock.advance(1)
        listed = [batch.id for batch in sdk.messages.batches.list(limit=2)]
        with pytest.raises(anthropic.BadRequestError):
            sdk.messages.batches.delete(made[-1])
        clock.advance(20)
        deleted = sdk.messages.batches.delete(made[0])
        with pytest.raises(anthropic.NotFoundError):
            sdk.messages.batches.retrieve(made[0])
    assert listed == list(reversed(made))  # newest first, across pages of 2
    assert deleted.type == "message_batch_deleted" and deleted.id == made[0]


def test_invalid_batches_are_rejected(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[])
    duplicate: Any = [{"custom_id": "same", "params": params("a")}] * 2
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=duplicate)
