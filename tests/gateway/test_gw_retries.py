"""Retries in one place: a hung upstream falls back, the gateway's final failure tells clients
not to retry, the organisation's refused key is the gateway's configuration error, and
``/healthz`` reports the upstream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from gw_helpers import HAIKU, SONNET, running_gateway, user

from tiergate.emulator import EmulatorServer
from tiergate.emulator.streaming import message_events
from tiergate.serving import BackgroundServer

pytest_plugins = ("gw_fixtures",)


class HangsOnSonnet:
    """An upstream that never answers the strong model (it holds the connection open) and
    answers the cheap one at once; it counts the calls per model."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        model = request["model"]
        self.calls[model] = self.calls.get(model, 0) + 1
        if model == SONNET:
            await asyncio.sleep(60)
        message = {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "hello"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 5,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        if request.get("stream"):
            payload = b"".join(event.encode() for event in message_events(message))
            content_type = b"text/event-stream"
        else:
            payload, content_type = orjson.dumps(message), b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_sends_no_first_byte_falls_back(tmp_path: Path, stream: bool) -> None:
    upstream = HangsOnSonnet()
    with (
        BackgroundServer(upstream) as server,
        running_gateway(
            tmp_path,
            server.base_url,
            upstream_options={"first_byte_timeout_s": 0.5, "slowest_tokens_per_s": 1000},
        ) as gateway,
        gateway.client(timeout=20) as client,
    ):
        answer: anthropic.types.Message
        if stream:
            with client.messages.stream(model=SONNET, max_tokens=20, messages=user("hi")) as s:
                answer = s.get_final_message()
        else:
            answer = client.messages.create(model=SONNET, max_tokens=20, messages=user("hi"))
        assert answer.model == HAIKU
        # The hung model is not retried: a model that hangs is likely to hang again.
        assert upstream.calls == {SONNET: 1, HAIKU: 1}
        [row] = gateway.rows()
        assert row["model"] == HAIKU and row["tiers_tried"] == f"{SONNET},{HAIKU}"


def test_after_the_gateways_own_retries_the_client_is_told_not_to_retry(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    with running_gateway(tmp_path, emulator.base_url) as gateway:
        # The SDK's own retries on: only x-should-retry: false keeps it from multiplying them.
        with (
            gateway.client(max_retries=2, default_headers={"x-tiergate-fault": "529"}) as client,
            pytest.raises(anthropic.InternalServerError) as caught,
        ):
            client.messages.create(model=SONNET, max_tokens=20, messages=user("hi"))
        assert caught.value.status_code == 529
        assert caught.value.response.headers["x-should-retry"] == "false"
        # One client call, one gateway request: 3 attempts on Sonnet, then 3 on Haiku.
        [row] = gateway.rows()
        assert row["outcome"] == "upstream_error" and row["tiers_tried"] == f"{SONNET},{HAIKU}"
        health = httpx2.get(gateway.base_url + "/healthz").json()
        assert health["status"] == "degraded"
        assert health["upstream"]["healthy"] is False
        assert health["upstream"]["failures_in_a_row"] == 6
        assert "529" in health["upstream"]["last_failure"]
        with gateway.client() as client:
            client.messages.create(model=HAIKU, max_tokens=20, messages=user("hi"))
        health = httpx2.get(gateway.base_url + "/healthz").json()
        assert health["status"] == "ok" and health["upstream"]["failures_in_a_row"] == 0


def test_an_unreachable_upstream_is_final_too(tmp_path: Path) -> None:
    options = {"max_retries": 0, "connect_timeout_s": 1}
    with running_gateway(tmp_path, "http://127.0.0.1:9", upstream_options=options) as gateway:
        with (
            gateway.client(max_retries=2) as client,
            pytest.raises(anthropic.InternalServerError) as caught,
        ):
            client.messages.create(model=HAIKU, max_tokens=20, messages=user("hi"))
        assert caught.value.status_code == 502
        assert caught.value.response.headers["x-should-retry"] == "false"
        [row] = gateway.rows()  # the SDK did not retry it
        assert row["outcome"] == "upstream_unavailable"


def test_the_organisations_refused_key_is_a_configuration_error(
    tmp_path: Path, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        running_gateway(tmp_path, emulator.base_url, upstream_options={"api_key": ""}) as gateway,
        gateway.client() as client,
        pytest.raises(anthropic.InternalServerError) as caught,
    ):
        client.messages.create(model=HAIKU, max_tokens=20, messages=user("hi"))
    # Not AuthenticationError: the client's key is fine, the gateway's config is not.
    assert caught.value.status_code == 500
    assert "misconfigured" in caught.value.message
    assert "not about your key" in caught.value.message
    assert "invalid x-api-key" not in caught.value.message
    assert any("refused the gateway's own API key" in r.getMessage() for r in caplog.records)


def test_a_call_without_a_first_byte_deadline_keeps_the_sessions_timeouts() -> None:
    """The engine's tiers set no first-byte deadline: the read timeout still holds them."""
    from tiergate.transports.base import ApiCall, Unreachable
    from tiergate.transports.http import HttpSettings, HttpTransport

    async def attempt(base_url: str) -> None:
        transport = HttpTransport(HttpSettings(base_url, "sk-test-not-real", read_timeout_s=0.3))
        body = {"model": SONNET, "max_tokens": 8, "messages": user("hi")}
        try:
            with pytest.raises(Unreachable) as caught:
                await transport.send(ApiCall("/v1/messages", body))
            assert "SocketTimeoutError" in str(caught.value)
        finally:
            await transport.aclose()

    with BackgroundServer(HangsOnSonnet()) as server:
        asyncio.run(attempt(server.base_url))
