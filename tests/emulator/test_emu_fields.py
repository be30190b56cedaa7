"""What the API accepts and refuses at the top of a request: unknown fields, beta fields,
metadata, system turns inside ``messages``, beta headers, and the path before the version."""

from __future__ import annotations

import json
import typing
import urllib.error
import urllib.request
from typing import Any

import anthropic
import pytest
from anthropic.types import message_create_params
from anthropic.types.beta import message_create_params as beta_create_params
from conftest import FAKE_KEY, HAIKU, body_of, text_of, user

from tiergate.emulator import EmulatorServer
from tiergate.emulator.validation import (
    BETA_FIELDS,
    COUNT_TOKENS_BETA_FIELDS,
    COUNT_TOKENS_FIELDS,
    MESSAGE_FIELDS,
    MID_CONVERSATION_SYSTEM_BETA,
)

SONNET_5 = "claude-sonnet-5-5"
# Parameters of the SDK's create() that it sends as headers, not in the body.
HEADERS_NOT_BODY = {"user_profile_id", "workspace_id", "betas"}
SYSTEM_TURN: list[Any] = [
    {"role": "user", "content": "Hello"},
    {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
]


def _fields(params: Any) -> set[str]:
    return set(typing.get_type_hints(params.MessageCreateParamsNonStreaming)) | {"stream"}


def test_every_field_the_sdk_may_send_is_known() -> None:
    """If an SDK upgrade adds a body field, this fails instead of the emulator refusing it."""
    assert _fields(message_create_params) - HEADERS_NOT_BODY <= MESSAGE_FIELDS
    beta_only = _fields(beta_create_params) - HEADERS_NOT_BODY - MESSAGE_FIELDS
    assert beta_only <= set(BETA_FIELDS), beta_only


def test_count_tokens_fields_match_the_sdk() -> None:
    from anthropic.types import message_count_tokens_params as count_params
    from anthropic.types.beta import message_count_tokens_params as beta_count_params

    fields = set(typing.get_type_hints(count_params.MessageCountTokensParams))
    assert fields - HEADERS_NOT_BODY <= COUNT_TOKENS_FIELDS
    beta = set(typing.get_type_hints(beta_count_params.MessageCountTokensParams))
    assert beta - HEADERS_NOT_BODY - COUNT_TOKENS_FIELDS <= set(COUNT_TOKENS_BETA_FIELDS)


def test_an_unknown_field_is_refused_by_name(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=HAIKU, max_tokens=5, messages=user("Hi"), extra_body={"no_such_param": 1}
        )
    error = body_of(caught.value)["error"]
    assert error == {
        "type": "invalid_request_error",
        "message": "no_such_param: Extra inputs are not permitted",
    }


def test_output_format_needs_the_structured_outputs_beta(client: anthropic.Anthropic) -> None:
    """LiteLLM's ``output_format``: refused without its beta, a JSON schema with it."""
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    output_format = {"output_format": {"type": "json_schema", "schema": schema}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=HAIKU, max_tokens=50, messages=user("Where?"), extra_body=output_format
        )
    assert body_of(caught.value)["error"]["message"].startswith("output_format: Extra inputs")
    message = client.messages.create(
        model=HAIKU,
        max_tokens=50,
        messages=user("Where?"),
        extra_body=output_format,
        extra_headers={"anthropic-beta": "structured-outputs-2025-11-13"},
    )
    assert set(json.loads(text_of(message))) == {"city"}


def test_beta_fields_come_with_their_beta(client: anthropic.Anthropic) -> None:
    edits: Any = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=HAIKU, max_tokens=5, messages=user("Hi"), extra_body={"context_management": edits}
        )
    assert "context_management: Extra inputs" in body_of(caught.value)["error"]["message"]
    beta = client.beta.messages.create(
        model=HAIKU,
        max_tokens=5,
        messages=[{"role": "user", "content": "Hi"}],
        context_management=edits,
        betas=["context-management-2025-06-27"],
    )
    assert beta.content


def test_sdk_parameters_are_accepted(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=HAIKU,
        max_tokens=20,
        messages=user("Hi"),
        metadata={"user_id": "user-123"},
        service_tier="standard_only",
        inference_geo="us",
        speed="standard",
        output_config={"effort": "low"},
        cache_control={"type": "ephemeral"},
    )
    assert message.content


def test_metadata_takes_only_user_id(client: anthropic.Anthropic) -> None:
    """What the gateway's rules route relies on when it strips its own marks."""
    metadata: Any = {"user_id": "u", "tiergate_mark": "hard"}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=HAIKU, max_tokens=5, messages=user("Hi"), metadata=metadata)
    assert "metadata.tiergate_mark: Extra inputs" in body_of(caught.value)["error"]["message"]


def test_count_tokens_refuses_fields_of_create(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.count_tokens(
            model=HAIKU, messages=user("Hi"), extra_body={"max_tokens": 10}
        )
    assert "max_tokens: Extra inputs" in body_of(caught.value)["error"]["message"]


def test_system_turns_need_the_beta_on_older_models(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=HAIKU, max_tokens=20, messages=SYSTEM_TURN)
    assert body_of(caught.value)["error"]["message"] == (
        "messages.1.role: Input should be 'user' or 'assistant'"
    )
    message = client.messages.create(
        model=HAIKU,
        max_tokens=20,
        messages=SYSTEM_TURN,
        extra_headers={
            "anthropic-beta": f"some-future-beta-2027-01-01,{MID_CONVERSATION_SYSTEM_BETA}"
        },
    )
    assert message.content


def test_models_that_take_system_turns_need_no_beta(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=SONNET_5, max_tokens=20, messages=SYSTEM_TURN)
    assert message.stop_reason in ("end_turn", "max_tokens")
    system_tools: list[Any] = [{"role": "system", "content": [{"type": "image", "source": {}}]}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=SONNET_5, max_tokens=20, messages=[*user("Hi"), *system_tools])
    assert "system messages may only hold text blocks" in body_of(caught.value)["error"]["message"]


def test_a_tool_loop_ends_when_a_system_turn_follows_the_results(
    client: anthropic.Anthropic,
) -> None:
    tools: list[Any] = [{"name": "lookup", "input_schema": {"type": "object"}}]
    first = client.messages.create(model=SONNET_5, max_tokens=100, tools=tools, messages=user("Go"))
    call = first.content[0]
    assert call.type == "tool_use"
    messages: list[Any] = [
        *user("Go"),
        {"role": "assistant", "content": [call.model_dump()]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "42"}],
        },
        {"role": "system", "content": "Reminder: be brief."},
    ]
    second = client.messages.create(model=SONNET_5, max_tokens=100, tools=tools, messages=messages)
    assert second.content[0].type == "text"


def test_unknown_betas_are_accepted(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=HAIKU,
        max_tokens=5,
        messages=user("Hi"),
        extra_headers={"anthropic-beta": "not-a-real-beta-2099-01-01"},
    )
    assert message.content


def test_an_unknown_path_is_404_before_the_version_is_checked(emulator: EmulatorServer) -> None:
    request = urllib.request.Request(f"{emulator.base_url}/v1/nowhere", headers={})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 404
    assert json.loads(caught.value.read())["error"]["type"] == "not_found_error"
    known = urllib.request.Request(
        f"{emulator.base_url}/v1/models", headers={"x-api-key": FAKE_KEY}
    )
    with pytest.raises(urllib.error.HTTPError) as missing_version:
        urllib.request.urlopen(known)
    assert missing_version.value.code == 400
