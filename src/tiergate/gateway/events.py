"""A complete Messages response as the API's server-sent event sequence.

For answers the gateway holds whole before the client sees them (a classification, an agent
turn the cheap tier answered), sent to clients that asked for a stream: ``message_start``, per
content block ``content_block_start`` / one delta / ``content_block_stop`` (text as a
``text_delta``, a tool call's input as one ``input_json_delta``), ``message_delta`` with the stop
reason and usage, ``message_stop``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def message_events(message: Mapping[str, Any]) -> bytes:
    usage = dict(message.get("usage") or {})
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 0},
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(message.get("content") or []):
        opened, delta = _split(block)
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opened},
            )
        )
        if delta is not None:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message.get("stop_reason"),
                    "stop_sequence": message.get("stop_sequence"),
                },
                "usage": usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return b"".join(
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        for name, data in events
    )


def _split(block: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A block as it opens, and the one delta that fills it (None: it opens whole)."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": ""}, {"type": "text_delta", "text": block.get("text", "")}
    if kind == "tool_use":
        opened: dict[str, Any] = {
            "type": "tool_use",
            "id": block.get("id"),
            "name": block.get("name"),
            "input": {},
        }
        partial = orjson.dumps(block.get("input") or {}).decode()
        return opened, {"type": "input_json_delta", "partial_json": partial}
    return dict(block), None
