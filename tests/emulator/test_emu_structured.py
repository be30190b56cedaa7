"""Tool calls and structured output are valid against their schemas; capabilities from data."""

from __future__ import annotations

import random
from typing import Any

import anthropic
import jsonschema
import pytest
from conftest import HAIKU, body_of, text_of, tool_input, user
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tiergate.emulator.schema_values import sample

TICKET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["card_arrival", "lost_or_stolen_card", "refund"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "urgent": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        "customer": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}},
            "required": ["name"],
        },
    },
    "required": ["label", "confidence", "priority"],
    "additionalProperties": False,
}
ROUTE_TOOL: Any = {
    "name": "route_ticket",
    "description": "Route a support ticket",
    "input_schema": TICKET_SCHEMA,
}
OTHER_TOOL: Any = {
    "name": "lookup_order",
    "description": "Find an order",
    "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}


def test_forced_tool_call_is_schema_valid(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=HAIKU,
        max_tokens=500,
        tools=[OTHER_TOOL, ROUTE_TOOL],
        tool_choice={"type": "tool", "name": "route_ticket"},
        messages=user("<ticket>Where is my card?</ticket>"),
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "route_ticket"
    assert block.id.startswith("toolu_")
    jsonschema.validate(block.input, TICKET_SCHEMA)


def test_auto_calls_a_tool_then_answers_its_result_in_text(client: anthropic.Anthropic) -> None:
    tools: list[Any] = [ROUTE_TOOL, OTHER_TOOL]
    first = client.messages.create(
        model=HAIKU, max_tokens=500, tools=tools, messages=user("Please lookup_order 42")
    )
    call = first.content[0]
    assert call.type == "tool_use" and call.name == "lookup_order"
    second = client.messages.create(
        model=HAIKU,
        max_tokens=500,
        tools=tools,
        messages=[
            {"role": "user", "content": "Please lookup_order 42"},
            {"role": "assistant", "content": [call]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "shipped"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"


def test_streamed_tool_call_matches_plain_one(client: anthropic.Anthropic) -> None:
    arguments: dict[str, Any] = {
        "model": HAIKU,
        "max_tokens": 500,
        "tools": [ROUTE_TOOL],
        "tool_choice": {"type": "any"},
        "messages": user("Route: my card is late"),
    }
    plain = client.messages.create(**arguments)
    with client.messages.stream(**arguments) as stream:
        final = stream.get_final_message()
    assert tool_input(final) == tool_input(plain)
    assert final.stop_reason == "tool_use"
    jsonschema.validate(tool_input(final), TICKET_SCHEMA)


def test_output_config_json_schema(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=HAIKU,
        max_tokens=500,
        output_config={"format": {"type": "json_schema", "schema": TICKET_SCHEMA}},
        messages=user("Classify: refund please"),
    )
    import json

    jsonschema.validate(json.loads(text_of(message)), TICKET_SCHEMA)


class Customer(BaseModel):
    name: str
    tier: int


class Ticket(BaseModel):
    label: str
    customer: Customer
    scores: list[float]


def test_sdk_parse_with_a_pydantic_model(client: anthropic.Anthropic) -> None:
    parsed = client.messages.parse(
        model=HAIKU, max_tokens=500, output_format=Ticket, messages=user("Parse this")
    )
    assert isinstance(parsed.parsed_output, Ticket)
    assert isinstance(parsed.parsed_output.customer, Customer)


def test_forced_tool_choice_rejected_where_the_price_book_says_so(
    client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=100,
            tools=[ROUTE_TOOL],
            tool_choice={"type": "any"},
            messages=user("Route it"),
        )
    assert body_of(caught.value)["error"]["message"] == (
        'tool_choice: type "tool" and "any" are not supported for this model'
    )
    allowed = client.messages.create(
        model="claude-sonnet-5-5",
        max_tokens=500,
        tools=[ROUTE_TOOL],
        messages=user("Route it"),
    )
    assert allowed.stop_reason == "tool_use"


def test_too_small_max_tokens_cuts_a_tool_call(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=HAIKU,
        max_tokens=3,
        tools=[ROUTE_TOOL],
        tool_choice={"type": "any"},
        messages=user("Route it"),
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


_LEAF = st.sampled_from(
    [
        {"type": "string", "minLength": 3, "maxLength": 8},
        {"type": "integer", "minimum": -5, "maximum": 5},
        {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        {"type": "number", "multipleOf": 0.5, "minimum": 1, "maximum": 3},
        {"type": "boolean"},
        {"type": "null"},
        {"enum": ["a", "b", 3]},
        {"type": ["string", "null"], "format": "date-time"},
        {"const": "fixed"},
    ]
)
_SCHEMAS = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.builds(
            lambda props: {
                "type": "object",
                "properties": props,
                "required": sorted(props)[:1],
                "additionalProperties": False,
            },
            st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=4),
        ),
        st.builds(
            lambda items: {"type": "array", "items": items, "minItems": 2, "maxItems": 4},
            inner,
        ),
        st.builds(lambda first: {"anyOf": [first, {"type": "null"}]}, inner),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(_SCHEMAS, st.integers(0, 2**32))
def test_sampled_values_validate(schema: dict[str, Any], seed: int) -> None:
    jsonschema.validate(sample(schema, random.Random(seed)), schema)


def test_refs_resolve_as_pydantic_writes_them() -> None:
    schema = Ticket.model_json_schema()
    assert "$defs" in schema
    jsonschema.validate(sample(schema, random.Random(1)), schema)
