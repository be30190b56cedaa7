"""Authentication, API versions, headers and error shapes, as the SDK sees them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import anthropic
import pytest
from conftest import FAKE_KEY, HAIKU, Serve, body_of, user

from tiergate.emulator import EmulatorServer


def test_wrong_key_is_an_authentication_error(serve: Serve) -> None:
    with serve(api_keys=frozenset({"sk-test-the-right-one"})) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        with pytest.raises(anthropic.AuthenticationError) as caught:
            sdk.messages.create(model=HAIKU, max_tokens=5, messages=user("Hi"))
        assert body_of(caught.value)["error"]["type"] == "authentication_error"
        right = anthropic.Anthropic(api_key="sk-test-the-right-one", base_url=running.base_url)
        assert right.messages.create(model=HAIKU, max_tokens=5, messages=user("Hi")).content


def test_missing_key_is_401_and_x_api_key_is_accepted(emulator: EmulatorServer) -> None:
    body = json.dumps({"model": HAIKU, "max_tokens": 5, "messages": user("Hi")}).encode()
    headers = {"anthropic-version": "2026-10-21", "content-type": "application/json"}
    request = urllib.request.Request(f"{emulator.base_url}/v1/messages", body, headers)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 401
    assert caught.value.headers["request-id"].startswith("req_")
    error = json.loads(caught.value.read())
    assert error["error"]["type"] == "authentication_error"
    request.add_header("x-api-key", FAKE_KEY)
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def test_sdk_sends_bearer_auth(emulator: EmulatorServer) -> None:
    sdk = anthropic.Anthropic(auth_token=FAKE_KEY, api_key=None, base_url=emulator.base_url)
    assert sdk.messages.create(model=HAIKU, max_tokens=5, messages=user("Hi")).content


def test_new_version_rejects_sampling_parameters(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=HAIKU, max_tokens=5, messages=user("Hi"), extra_body={"temperature": 0.2}
        )
    assert "temperature" in body_of(caught.value)["error"]["message"]
    for name in ("top_p", "top_k"):
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(
                model=HAIKU, max_tokens=5, messages=user("Hi"), extra_body={name: 1}
            )


def test_older_version_accepts_temperature(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=HAIKU,
        max_tokens=5,
        messages=user("Hi"),
        extra_body={"temperature": 0.2},
        extra_headers={"anthropic-version": "2023-06-01"},
    )
    assert message.content


def test_unknown_version_is_rejected(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=HAIKU,
            max_tokens=5,
            messages=user("Hi"),
            extra_headers={"anthropic-version": "1999-01-01"},
        )
    assert "anthropic-version" in body_of(caught.value)["error"]["message"]


def test_unknown_path_is_not_found_with_request_id(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.get("/v1/nowhere", cast_to=object)
    assert caught.value.response.headers["request-id"].startswith("req_")
    assert caught.value.response.headers["x-tiergate-emulated"] == "true"


def test_models_come_from_the_price_book(client: anthropic.Anthropic) -> None:
    names = {model.id for model in client.models.list()}
    assert {"claude-haiku-4-5", "claude-sonnet-4-6", "claude-sonnet-5-5"} <= names
    assert client.models.retrieve("claude-haiku-4-5-20251001").id == "claude-haiku-4-5"
