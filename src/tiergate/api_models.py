"""The Models API's objects (``GET /v1/models``), built from price book rows.

Shared by the emulator and the gateway. The price book has no release dates: ``created_at``
comes from a dated alias (``claude-haiku-4-5-20251001``) when a row has one, else the epoch, as
the API itself does when a date is unknown. The list is ordered by id, descending, which puts
the newer version of a family first (the API lists newest first).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from tiergate.api_errors import AnthropicError
from tiergate.api_lists import ListQuery, page_body, select
from tiergate.core.prices import ModelPrice, PriceBook

EPOCH = "1970-01-01T00:00:00Z"
LIFECYCLES = ("active", "deprecated", "retired")
# The price book's ``status`` as the API's ``lifecycle``; current and legacy models are active.
_LIFECYCLE_OF_STATUS = {"deprecated": "deprecated", "retired": "retired"}
DEFAULT_LIFECYCLES = ("active", "deprecated")
_DATE_SUFFIX = re.compile(r"-(\d{4})(\d{2})(\d{2})$")


def model_info(row: ModelPrice) -> dict[str, Any]:
    """One row as the API's ``ModelInfo``."""
    return {
        "type": "model",
        "id": row.name,
        "display_name": display_name(row.name),
        "created_at": released(row),
        "lifecycle": lifecycle(row),
        "line": row.family or None,
        "max_input_tokens": row.context_window,
    }


def display_name(model_id: str) -> str:
    """``claude-haiku-4-5`` -> ``Claude Haiku 4.5``: words capitalised, version digits dotted."""
    parts: list[str] = []
    for word in model_id.split("-"):
        if word.isdigit() and parts and parts[-1][-1:].isdigit():
            parts[-1] += "." + word
        else:
            parts.append(word.capitalize() if word.isalpha() else word)
    return " ".join(parts)


def released(row: ModelPrice) -> str:
    for alias in row.aliases:
        dated = _DATE_SUFFIX.search(alias)
        if dated is not None:
            return f"{dated[1]}-{dated[2]}-{dated[3]}T00:00:00Z"
    return EPOCH


def lifecycle(row: ModelPrice) -> str:
    return _LIFECYCLE_OF_STATUS.get(row.status, "active")


def retrieve(book: PriceBook, model_id: str) -> dict[str, Any]:
    """``GET /v1/models/{id}``: an alias finds its model; an unknown id is a 404."""
    if model_id not in book:
        raise AnthropicError(404, f"model: {model_id}")
    return model_info(book.get(model_id))


def listing(
    book: PriceBook, query: ListQuery, first: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """``GET /v1/models``: ``first`` (the gateway's routes), then the book's models, paged."""
    wanted = _lifecycles(query)
    rows = sorted(book.models.values(), key=lambda row: row.name, reverse=True)
    objects = [*first, *(model_info(row) for row in rows)]
    objects = [item for item in objects if item.get("lifecycle", "active") in wanted]
    data, has_more = select(objects, lambda item: str(item["id"]), query)
    return page_body(data, has_more)


def _lifecycles(query: ListQuery) -> Iterable[str]:
    asked = query.values("lifecycle")
    unknown = sorted(set(asked) - set(LIFECYCLES))
    if unknown:
        raise AnthropicError(
            400,
            f"lifecycle: Input should be 'active', 'deprecated' or 'retired', got {unknown[0]!r}",
        )
    return set(asked) if asked else set(DEFAULT_LIFECYCLES)
