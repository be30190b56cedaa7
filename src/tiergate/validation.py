"""One way to say what is wrong with a file: its name, the field, and what was expected.

Routes, the gateway configuration and the price book are validated with pydantic v2 models on
load; a bad file raises one error whose message names the file, the field (dotted path) and
what the field should be, e.g. ``route.yaml: error_budget: Input should be less than 1 (got
1.5)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tiergate.errors import TiergateError

Model = TypeVar("Model", bound=BaseModel)


def field_path(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top level)"


def describe(error: ValidationError, source: str | Path) -> str:
    """``source: field: what was expected (got value)`` for the first problem, and a count."""
    problems = error.errors(include_url=False)
    first = problems[0]
    got = first.get("input")
    shown = "" if first["type"] in ("missing", "extra_forbidden") else f" (got {got!r})"
    message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    text = f"{source}: {field_path(tuple(first['loc']))}: {message}{shown}"
    if len(problems) > 1:
        text += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return text


def validated(
    model: type[Model],
    raw: Mapping[str, Any],
    source: str | Path,
    error: type[Exception] = TiergateError,
) -> Model:
    """``model`` from ``raw``, or ``error`` naming ``source``, the field and what was wrong."""
    try:
        return model.model_validate(raw)
    except ValidationError as problem:
        raise error(describe(problem, source)) from None
