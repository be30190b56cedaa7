"""Checking a Messages request the way the API does, into a typed view of what was asked.

Model capabilities (forced tool choice, structured output, context window, system turns inside
``messages``) come from the price book row, never from model names. Top-level fields the API
does not know are refused, naming the field, as the API words it (``Extra inputs are not
permitted``); fields of the beta API are accepted only with a beta that brings them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiergate.core.prices import ModelPrice, PriceBook
from tiergate.emulator.errors import ApiError, invalid
from tiergate.emulator.prompt import Prompt, flatten
from tiergate.emulator.thinking import (
    EFFORT_SCALE,
    ThinkingConfig,
    parse_thinking,
    signature_matches,
)

# Versions the API accepts; from the newest on, sampling parameters are gone.
KNOWN_VERSIONS = ("2023-01-01", "2023-06-01", "2026-10-21")
NO_SAMPLING_FROM = "2026-10-21"
SAMPLING_PARAMETERS = ("temperature", "top_p", "top_k")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_ROLES = ("user", "assistant")
MID_CONVERSATION_SYSTEM_BETA = "mid-conversation-system-2026-04-07"
STRUCTURED_OUTPUTS_BETA = "structured-outputs-2025-11-13"
# The body of POST /v1/messages as the SDK's MessageCreateParams has it (anthropic 2.15);
# workspace and user profile travel as headers.
MESSAGE_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "cache_control",
        "container",
        "diagnostics",
        "inference_geo",
        "metadata",
        "output_config",
        "service_tier",
        "speed",
        "stop_sequences",
        "stream",
        "system",
        "thinking",
        "tool_choice",
        "tools",
        *SAMPLING_PARAMETERS,
    }
)
COUNT_TOKENS_FIELDS = frozenset(
    {
        "model",
        "messages",
        "cache_control",
        "output_config",
        "speed",
        "system",
        "thinking",
        "tool_choice",
        "tools",
    }
)
# Fields only the beta API takes (the SDK's client.beta.messages), each with the betas that
# bring it; without one of them the API refuses the field as unknown.
BETA_FIELDS: dict[str, tuple[str, ...]] = {
    "context_management": ("context-management-2025-06-27",),
    "mcp_servers": ("mcp-client-2025-04-04", "mcp-client-2025-11-20", "mcp-client-2026-09-15"),
    "compaction": ("compact-2026-01-12", "compact-2026-09-04"),
    "thread": ("message-threads-2026-08-12",),
    "fallbacks": ("server-side-fallback-2026-06-01", "server-side-fallback-2026-07-01"),
    "fallback_credit_token": ("fallback-credit-2026-06-01", "fallback-credit-2026-07-01"),
    "billing_policy": (
        "user-profiles-2026-03-24",
        "user-profiles-2026-08-18",
        "user-profiles-2026-09-04",
    ),
    "output_format": (STRUCTURED_OUTPUTS_BETA,),
}
COUNT_TOKENS_BETA_FIELDS = (
    "context_management",
    "mcp_servers",
    "compaction",
    "billing_policy",
    "output_format",
)
METADATA_FIELDS = ("user_id",)
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
    thinking: ThinkingConfig | None = None
    effort: str = "high"


def check_version(version: str | None) -> str:
    if version is None:
        raise invalid("anthropic-version: header is required")
    if version not in KNOWN_VERSIONS:
        raise invalid(f"anthropic-version: unknown version {version!r}")
    return version


def parse_messages(
    body: Any,
    book: PriceBook,
    version: str,
    *,
    betas: frozenset[str] = frozenset(),
    count_only: bool = False,
) -> MessagesRequest:
    """Validate a ``/v1/messages`` (or ``count_tokens``) body; raise :class:`ApiError` if bad.

    ``betas``: the values of the request's ``anthropic-beta`` header(s).
    """
    if not isinstance(body, Mapping):
        raise invalid("request body must be a JSON object")
    _known_fields(body, betas, count_only)
    model = _model(body, book)
    max_tokens = 0
    if not count_only:
        max_tokens = _max_tokens(body)
    system_turns = model.mid_conversation_system or MID_CONVERSATION_SYSTEM_BETA in betas
    _messages(body.get("messages"), system_turns)
    _system(body.get("system"))
    _metadata(body.get("metadata"))
    thinking = parse_thinking(body.get("thinking"), max_tokens, betas, count_only=count_only)
    _sampling(body, version, thinking)
    stop_sequences = _stop_sequences(body.get("stop_sequences"))
    tools = _tools(body.get("tools"))
    choice, tool_name = _tool_choice(body.get("tool_choice"), tools, model)
    if thinking is not None and thinking.thinks and choice in ("any", "tool"):
        raise invalid("Thinking may not be enabled when tool_choice forces tool use.")
    schema, effort = _output_config(body.get("output_config"), model)
    if "output_format" in body:
        schema = _output_format(body["output_format"], schema, model)
    if thinking is not None and thinking.kind == "enabled":
        _thinking_leads_tool_loop(body["messages"])
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
        thinking=thinking,
        effort=effort,
    )


def _known_fields(body: Mapping[str, Any], betas: frozenset[str], count_only: bool) -> None:
    known = COUNT_TOKENS_FIELDS if count_only else MESSAGE_FIELDS
    for name in body:
        if name in known:
            continue
        brought_by = BETA_FIELDS.get(name, ())
        if count_only and name not in COUNT_TOKENS_BETA_FIELDS:
            brought_by = ()
        if not any(beta in betas for beta in brought_by):
            raise invalid(f"{name}: Extra inputs are not permitted")


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


def _messages(messages: Any, system_turns: bool) -> None:
    if not isinstance(messages, list):
        raise invalid("messages: Field required")
    if not messages:
        raise invalid("messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise invalid(f"messages.{index}: Input should be an object")
        role = message.get("role")
        if role not in _ROLES and not (role == "system" and system_turns):
            raise invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise invalid(f"messages.{index}.content: Field required")
        for position, block in enumerate(content):
            where = f"messages.{index}.content.{position}"
            if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
                raise invalid(f"{where}.type: Field required")
            kind = block["type"]
            if kind == "text" and not isinstance(block.get("text"), str):
                raise invalid(f"{where}.text: Field required")
            if role == "system" and kind != "text":
                raise invalid(f"{where}.type: system messages may only hold text blocks")
            if kind in ("thinking", "redacted_thinking"):
                _thinking_block(block, where, role)


def _thinking_block(block: Mapping[str, Any], where: str, role: Any) -> None:
    """A thinking block sent back: only in assistant turns, and exactly as it was received."""
    if role != "assistant":
        raise invalid(f"{where}.type: thinking blocks may only appear in assistant messages")
    if block["type"] == "redacted_thinking":
        if not isinstance(block.get("data"), str):
            raise invalid(f"{where}.data: Field required")
        return
    thinking, signature = block.get("thinking"), block.get("signature")
    if not isinstance(thinking, str):
        raise invalid(f"{where}.thinking: Field required")
    if not isinstance(signature, str):
        raise invalid(f"{where}.signature: Field required")
    if not signature_matches(thinking, signature):
        raise invalid(f"{where}: Invalid `signature` in `thinking` block")


def _thinking_leads_tool_loop(messages: list[Mapping[str, Any]]) -> None:
    """With thinking enabled, the assistant turn whose tool calls are being answered must
    start with its thinking block (the API's rule for tool loops)."""
    turns = [
        (index, message) for index, message in enumerate(messages) if message["role"] != "system"
    ]
    if len(turns) < 2 or not _has_block(turns[-1][1], "tool_result"):
        return
    index, assistant = turns[-2]
    if assistant["role"] != "assistant" or not _has_block(assistant, "tool_use"):
        return
    content = assistant["content"]
    first = content[0].get("type") if isinstance(content, list) and content else "text"
    if first not in ("thinking", "redacted_thinking"):
        raise invalid(
            f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
            f"found `{first}`. When `thinking` is enabled, a final `assistant` message must "
            "start with a thinking block (preceding the lastmost set of `tool_use` and "
            "`tool_result` blocks). To avoid this requirement, disable `thinking`."
        )


def _has_block(message: Mapping[str, Any], kind: str) -> bool:
    content = message["content"]
    return isinstance(content, list) and any(block.get("type") == kind for block in content)


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


def _metadata(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise invalid("metadata: Input should be a valid dictionary")
    for name in value:
        if name not in METADATA_FIELDS:
            raise invalid(f"metadata.{name}: Extra inputs are not permitted")
    user_id = value.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise invalid("metadata.user_id: Input should be a valid string")


def _sampling(body: Mapping[str, Any], version: str, thinking: ThinkingConfig | None) -> None:
    thinks = thinking is not None and thinking.thinks
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
        if thinks and name == "temperature" and value != 1:
            raise invalid("temperature: may only be set to 1 when thinking is enabled")
        if thinks and name == "top_k":
            raise invalid("top_k: is not supported when thinking is enabled")
        if thinks and name == "top_p" and not 0.95 <= value <= 1.0:
            raise invalid("top_p: must be between 0.95 and 1 when thinking is enabled")


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


def _output_config(value: Any, model: ModelPrice) -> tuple[Mapping[str, Any] | None, str]:
    """The JSON schema of ``output_config.format`` (if any) and the effort."""
    if value is None:
        return None, "high"
    if not isinstance(value, Mapping):
        raise invalid("output_config: Input should be an object")
    effort = value.get("effort")
    if effort is not None and effort not in EFFORT_SCALE:
        raise invalid(
            "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
        )
    output_format = value.get("format")
    if output_format is None:
        return None, str(effort or "high")
    return _json_schema(output_format, "output_config.format", model), str(effort or "high")


def _output_format(
    value: Any, schema: Mapping[str, Any] | None, model: ModelPrice
) -> Mapping[str, Any] | None:
    """The structured-outputs beta's older spelling of ``output_config.format``."""
    if value is None:
        return schema
    if schema is not None:
        raise invalid("output_format: cannot be combined with output_config.format")
    return _json_schema(value, "output_format", model)


def _json_schema(output_format: Any, where: str, model: ModelPrice) -> Mapping[str, Any]:
    if not isinstance(output_format, Mapping) or output_format.get("type") != "json_schema":
        raise invalid(f"{where}.type: Input should be 'json_schema'")
    schema = output_format.get("schema")
    if not isinstance(schema, Mapping):
        raise invalid(f"{where}.schema: Field required")
    if not model.structured_output:
        raise invalid(f"{where}: structured outputs are not supported for this model")
    return schema
