"""Checking a Messages request the way the API does, into a typed view of what was asked.

Model capabilities (forced tool choice, structured output, context window) come from the price
book row, never from model names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiergate.core.prices import ModelPrice, PriceBook
from tiergate.emulator.errors import ApiError, invalid
from tiergate.emulator.prompt import Prompt, flatten

# Versions the API accepts; from the newest on, sampling parameters are gone.
KNOWN_VERSIONS = ("2023-01-01", "2023-06-01", "2026-10-21")
NO_SAMPLING_FROM = "2026-10-21"
SAMPLING_PARAMETERS = ("temperature", "top_p", "top_k")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_ROLES = ("user", "assistant")
_TOOL_CHOICES = ("auto", "any", "tool", "none")
FORCED_TOOL_CHOICE_REJECTED = 'tool_choice: type "tool" and "any" are not supported for this model'


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    body: Mapping[str, Any]
    model: ModelPrice
    max_tokens: int
    stream: bool
    stop_sequences: tuple[str, ...]
    tools: tuple[Mapping[str, Any], ...]
    tool_choice: str
    tool_name: str | None
    output_schema: Mapping[str, Any] | None
    prompt: Prompt


def check_version(version: str | None) -> str:
    if version is None:
        raise invalid("anthropic-version: header is required")
    if version not in KNOWN_VERSIONS:
        raise invalid(f"anthropic-version: unknown version {version!r}")
    return version


def parse_messages(
    body: Any, book: PriceBook, version: str, *, count_only: bool = False
) -> MessagesRequest:
    """Validate a ``/v1/messages`` (or ``count_tokens``) body; raise :class:`ApiError` if bad."""
    if not isinstance(body, Mapping):
        raise invalid("request body must be a JSON object")
    model = _model(body, book)
    max_tokens = 0
    if not count_only:
        max_tokens = _max_tokens(body)
    _messages(body.get("messages"))
    _system(body.get("system"))
    _sampling(body, version)
    stop_sequences = _stop_sequences(body.get("stop_sequences"))
    tools = _tools(body.get("tools"))
    choice, tool_name = _tool_choice(body.get("tool_choice"), tools, model)
    schema = _output_schema(body.get("output_config"), model)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream: Input should be a valid boolean")
    prompt = flatten(body)
    if prompt.total_tokens > model.context_window:
        raise invalid(
            f"prompt is too long: {prompt.total_tokens} tokens > {model.context_window} maximum"
        )
    return MessagesRequest(
        body=body,
        model=model,
        max_tokens=max_tokens,
        stream=stream,
        stop_sequences=stop_sequences,
        tools=tools,
        tool_choice=choice,
        tool_name=tool_name,
        output_schema=schema,
        prompt=prompt,
    )


def _model(body: Mapping[str, Any], book: PriceBook) -> ModelPrice:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise invalid("model: Field required")
    if name not in book:
        raise ApiError(404, f"model: {name}")
    return book.get(name)


def _max_tokens(body: Mapping[str, Any]) -> int:
    if "max_tokens" not in body:
        raise invalid("max_tokens: Field required")
    value = body["max_tokens"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise invalid("max_tokens: Input should be a positive integer")
    return value


def _messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise invalid("messages: Field required")
    if not messages:
        raise invalid("messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise invalid(f"messages.{index}: Input should be an object")
        if message.get("role") not in _ROLES:
            raise invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise invalid(f"messages.{index}.content: Field required")
        for position, block in enumerate(content):
            if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
                raise invalid(f"messages.{index}.content.{position}.type: Field required")
            if block["type"] == "text" and not isinstance(block.get("text"), str):
                raise invalid(f"messages.{index}.content.{position}.text: Field required")


def _system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise invalid("system: Input should be a valid string or list of text blocks")
    for index, block in enumerate(system):
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise invalid(f"system.{index}.type: Input should be 'text'")
        if not isinstance(block.get("text"), str):
            raise invalid(f"system.{index}.text: Field required")


def _sampling(body: Mapping[str, Any], version: str) -> None:
    for name in SAMPLING_PARAMETERS:
        if name not in body:
            continue
        if version >= NO_SAMPLING_FROM:
            raise invalid(f"{name}: not supported with anthropic-version {version}")
        value = body[name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise invalid(f"{name}: Input should be a valid number")
        if name == "temperature" and not 0.0 <= value <= 1.0:
            raise invalid("temperature: Input should be between 0 and 1")


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise invalid("stop_sequences: Input should be a list of non-empty strings")
    return tuple(value)


def _tools(value: Any) -> tuple[Mapping[str, Any], ...]:
    """The custom (client) tools; server tools are accepted and otherwise ignored."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid("tools: Input should be a valid list")
    custom: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for index, tool in enumerate(value):
        if not isinstance(tool, Mapping):
            raise invalid(f"tools.{index}: Input should be an object")
        if tool.get("type", "custom") != "custom":
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise invalid(
                f"tools.{index}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )
        if name in seen:
            raise invalid(f"tools: Tool names must be unique. Found duplicate: {name}")
        seen.add(name)
        schema = tool.get("input_schema")
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            raise invalid(f"tools.{index}.input_schema.type: Input should be 'object'")
        custom.append(tool)
    return tuple(custom)


def _tool_choice(
    value: Any, tools: tuple[Mapping[str, Any], ...], model: ModelPrice
) -> tuple[str, str | None]:
    if value is None:
        return ("auto", None)
    if not isinstance(value, Mapping) or value.get("type") not in _TOOL_CHOICES:
        raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    choice = str(value["type"])
    if choice in ("any", "tool") and not tools:
        raise invalid("tool_choice: may only be specified while providing tools")
    if choice in ("any", "tool") and not model.forced_tool_choice:
        raise invalid(FORCED_TOOL_CHOICE_REJECTED)
    name = None
    if choice == "tool":
        name = value.get("name")
        if not any(tool["name"] == name for tool in tools):
            raise invalid(f"tool_choice.name: no tool named {name!r} in tools")
    return (choice, name)


def _output_schema(value: Any, model: ModelPrice) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise invalid("output_config: Input should be an object")
    output_format = value.get("format")
    if output_format is None:
        return None
    if not isinstance(output_format, Mapping) or output_format.get("type") != "json_schema":
        raise invalid("output_config.format.type: Input should be 'json_schema'")
    schema = output_format.get("schema")
    if not isinstance(schema, Mapping):
        raise invalid("output_config.format.schema: Field required")
    if not model.structured_output:
        raise invalid("output_config.format: structured outputs are not supported for this model")
    return schema
