"""A complete Messages response as the API's server-sent event sequence.

For answers the gateway holds whole before the client sees them (a classification, an agent
turn the cheap tier answered), sent to clients that asked for a stream: ``message_start``, per
content block ``content_block_start`` / its deltas / ``content_block_stop`` (text as a
``text_delta``, a tool call's input as one ``input_json_delta``), ``message_delta`` with the stop
reason and usage, ``message_stop``. A thinking block streams as a ``thinking_delta`` and a
``signature_delta``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tiergate import sse


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
        opened, deltas = _split(block)
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opened},
            )
        )
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
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
    return b"".join(sse.event(name, data) for name, data in events)


def _split(block: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A block as it opens, and the deltas that fill it (none: it opens whole, as a redacted
    thinking block or a server tool's result does)."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": ""}, [{"type": "text_delta", "text": block.get("text", "")}]
    if kind == "tool_use":
        opened: dict[str, Any] = {
            "type": "tool_use",
            "id": block.get("id"),
            "name": block.get("name"),
            "input": {},
        }
        partial = orjson.dumps(block.get("input") or {}).decode()
        return opened, [{"type": "input_json_delta", "partial_json": partial}]
    if kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}, [
            {"type": "thinking_delta", "thinking": block.get("thinking", "")},
            {"type": "signature_delta", "signature": block.get("signature", "")},
        ]
    return dict(block), []
