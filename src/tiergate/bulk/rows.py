"""Input rows, streamed from JSONL with their line numbers; a bad line is an error, not a stop."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tiergate.tasks.base import Item


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # 1-based line in the input file: the row's place in the output order
    id: str
    text: str
    label: Any = None  # a gold answer, if the row has one (the emulator's scenario uses it)
    request: Mapping[str, Any] | None = None  # the whole request, for tasks that need it

    @property
    def item(self) -> Item:
        return Item(self.text, self.id, self.request)


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    id: str | None
    reason: str


def parse_row(line_number: int, raw: bytes) -> Row | RowError:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return RowError(line_number, None, f"not valid JSON: {error}")
    if not isinstance(body, dict):
        return RowError(line_number, None, f"not a JSON object but {type(body).__name__}")
    raw_id = body.get("id", line_number)
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        return RowError(line_number, None, f"id must be a string or an integer, got {raw_id!r}")
    row_id = str(raw_id)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return RowError(line_number, row_id, "text is missing, empty or not a string")
    request = body.get("request")
    if request is not None and not isinstance(request, dict):
        return RowError(line_number, row_id, f"request must be an object, got {request!r}")
    return Row(line_number, row_id, text, body.get("label"), request)


def read_rows(path: Path, *, after_line: int = 0) -> Iterator[Row | RowError]:
    """Rows (or errors) in file order, skipping blank lines and lines up to ``after_line``."""
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            if line_number <= after_line or not raw.strip():
                continue
            yield parse_row(line_number, raw)


def count_rows(path: Path, *, up_to_line: int | None = None) -> int:
    """Non-blank lines (up to a line), for the progress bar (a fast pass, no parsing)."""
    with path.open("rb") as handle:
        return sum(
            1
            for line_number, raw in enumerate(handle, start=1)
            if raw.strip() and (up_to_line is None or line_number <= up_to_line)
        )
