"""The server-sent events of a streamed message, in the API's order.

``message_start`` (content empty, stop_reason null) · ``ping`` · per block:
``content_block_start``, ``content_block_delta`` (``text_delta``, ``input_json_delta``, or for
a thinking block ``thinking_delta`` then one ``signature_delta``), ``content_block_stop`` ·
``message_delta`` (stop reason, cumulative usage) · ``message_stop``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from tiergate import sse
from tiergate.emulator.tokens import count_text

WORDS_PER_TEXT_DELTA = 3
CHARS_PER_JSON_DELTA = 24
_WORD_RUNS = re.compile(r"\s*\S+")


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: dict[str, Any]
    tokens: int = 0  # output tokens this event carries, for pacing

    def encode(self) -> bytes:
        return sse.event(self.name, self.data)

    @property
    def is_delta(self) -> bool:
        return self.name == "content_block_delta"


def error_event(error_type: str, message: str) -> Event:
    return Event("error", {"type": "error", "error": {"type": error_type, "message": message}})


def message_events(message: dict[str, Any]) -> Iterator[Event]:
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": 1}
    yield Event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                **message,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
    )
    yield Event("ping", {"type": "ping"})
    thinking_tokens = (usage.get("output_tokens_details") or {}).get("thinking_tokens", 0)
    for index, block in enumerate(message["content"]):
        yield from _block_events(index, block, thinking_tokens)
    yield Event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": message["stop_reason"],
                "stop_sequence": message["stop_sequence"],
            },
            "usage": {
                "input_tokens": usage["input_tokens"],
                "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                "cache_read_input_tokens": usage["cache_read_input_tokens"],
                "output_tokens": usage["output_tokens"],
                **(
                    {"output_tokens_details": usage["output_tokens_details"]}
                    if "output_tokens_details" in usage
                    else {}
                ),
            },
        },
    )
    yield Event("message_stop", {"type": "message_stop"})


def _block_events(index: int, block: dict[str, Any], thinking_tokens: int) -> Iterator[Event]:
    empty = {
        "thinking": {"type": "thinking", "thinking": "", "signature": ""},
        "tool_use": {**block, "input": {}},
        "text": {"type": "text", "text": ""},
    }[block["type"]]
    yield Event(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": empty},
    )
    if block["type"] == "tool_use":
        text = orjson.dumps(block["input"]).decode()
        chunks = [""] + [
            text[at : at + CHARS_PER_JSON_DELTA] for at in range(0, len(text), CHARS_PER_JSON_DELTA)
        ]
        for chunk in chunks:
            delta = {"type": "input_json_delta", "partial_json": chunk}
            yield _delta(index, delta, count_text(chunk))
    elif block["type"] == "thinking":
        yield from _word_deltas(index, block["thinking"], "thinking_delta", "thinking")
        # A thought whose text is omitted still took its time: the signature carries its tokens.
        unstreamed = max(0, thinking_tokens - count_text(block["thinking"]))
        signature = {"type": "signature_delta", "signature": block["signature"]}
        yield _delta(index, signature, unstreamed)
    else:
        yield from _word_deltas(index, block["text"], "text_delta", "text")
    yield Event("content_block_stop", {"type": "content_block_stop", "index": index})


def _word_deltas(index: int, text: str, kind: str, field: str) -> Iterator[Event]:
    words = _WORD_RUNS.findall(text)
    for at in range(0, len(words), WORDS_PER_TEXT_DELTA):
        chunk = "".join(words[at : at + WORDS_PER_TEXT_DELTA])
        yield _delta(index, {"type": kind, field: chunk}, count_text(chunk))
    trailing = text[len("".join(words)) :]
    if trailing:
        yield _delta(index, {"type": kind, field: trailing}, 0)


def _delta(index: int, delta: dict[str, Any], tokens: int) -> Event:
    return Event(
        "content_block_delta",
        {"type": "content_block_delta", "index": index, "delta": delta},
        tokens,
    )
