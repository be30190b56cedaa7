"""Usage read off a relayed stream, without re-encoding it.

The bytes go to the client untouched; only the few events that carry usage (``message_start``,
``message_delta``) and the content deltas are parsed. ``message_delta`` carries cumulative
counts, so the last one wins, field by field. When the stream is cut short (the client left,
the upstream broke), the output tokens so far are estimated from the delta text: the API reports
them only at the end.
"""

from __future__ import annotations

from typing import Any

import orjson

from tiergate.core.tokens import tokens_for_characters
from tiergate.core.usage import Usage


class StreamMeter:
    def __init__(self) -> None:
        self._tail = b""
        self._usage: dict[str, Any] = {}
        self.model: str | None = None
        self.output_chars = 0
        self.finished = False
        self.errored = False

    def feed(self, chunk: bytes) -> None:
        lines = (self._tail + chunk).split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            if line.startswith(b"data: "):
                self._data(line)

    def _data(self, line: bytes) -> None:
        if b'"content_block_delta"' in line:
            delta = orjson.loads(line[6:]).get("delta") or {}
            self.output_chars += len(delta.get("text") or delta.get("partial_json") or "")
        elif b'"message_start"' in line:
            message = orjson.loads(line[6:]).get("message") or {}
            self.model = message.get("model")
            self._merge(message.get("usage") or {})
        elif b'"message_delta"' in line:
            self._merge(orjson.loads(line[6:]).get("usage") or {})
        elif b'"message_stop"' in line:
            self.finished = True
        elif b'"error"' in line:
            self.errored = True

    def _merge(self, usage: dict[str, Any]) -> None:
        for name, value in usage.items():
            if value is not None:
                self._usage[name] = value

    def usage(self) -> Usage:
        """Exact when the stream finished; otherwise input exact, output estimated."""
        usage = Usage.from_api(self._usage)
        if self.finished:
            return usage
        estimated = tokens_for_characters(self.output_chars)
        return Usage(
            input_tokens=usage.input_tokens,
            output_tokens=max(usage.output_tokens, estimated),
            cache_write_5m_tokens=usage.cache_write_5m_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            cache_read_tokens=usage.cache_read_tokens,
        )
