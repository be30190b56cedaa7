"""BFCL rows (``../shared/data/tools``) as tool-decision examples for the Claude API.

BFCL's parameter schemas are not strict JSON Schema and many function names have dots, which
the API refuses. Converted, a row is ``{"id", "category", "text", "request", "label"}``:
``request`` is the Messages request a client would send (``messages``, ``tools`` with
``input_schema`` in JSON Schema, names with ``.`` as ``_``, a leading system message moved to
``system``), ``label`` the gold (:mod:`tiergate.tasks.tool_gold`) with the original names and
types kept for scoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiergate.tasks.tool_gold import api_name

# BFCL type -> JSON Schema type (None: no type constraint).
SCHEMA_TYPES: dict[str, str | None] = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "any": None,
}
# Keys BFCL uses that are not JSON Schema.
DROPPED_KEYS = ("optional",)


def json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A BFCL parameter schema as JSON Schema (types mapped, recursively)."""
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DROPPED_KEYS:
            continue
        if key == "type" and isinstance(value, str):
            mapped = SCHEMA_TYPES.get(value, value)
            if mapped is not None:
                result["type"] = mapped
        elif key == "properties" and isinstance(value, Mapping):
            result["properties"] = {
                name: json_schema(part) if isinstance(part, Mapping) else part
                for name, part in value.items()
            }
        elif key == "items" and isinstance(value, Mapping):
            result["items"] = json_schema(value)
        else:
            result[key] = value
    return result


def api_tool(function: Mapping[str, Any]) -> dict[str, Any]:
    schema = json_schema(function.get("parameters") or {"type": "dict", "properties": {}})
    schema["type"] = "object"
    return {
        "name": api_name(str(function["name"])),
        "description": str(function.get("description") or ""),
        "input_schema": schema,
    }


def signature(function: Mapping[str, Any]) -> dict[str, Any]:
    parameters = function.get("parameters") or {}
    properties = parameters.get("properties") or {}
    return {
        "required": list(parameters.get("required") or []),
        "types": {
            name: str(part.get("type"))
            for name, part in properties.items()
            if isinstance(part, Mapping) and part.get("type")
        },
    }


def convert_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One BFCL row as a tool-decision example row."""
    messages = [dict(message) for message in row["question"]]
    system = [m for m in messages if m.get("role") == "system"]
    turns = [m for m in messages if m.get("role") != "system"]
    request: dict[str, Any] = {
        "messages": [{"role": m["role"], "content": m["content"]} for m in turns],
        "tools": [api_tool(function) for function in row["functions"]],
    }
    if system:
        request["system"] = "\n\n".join(str(m["content"]) for m in system)
    text = next(
        (str(m["content"]) for m in reversed(turns) if m.get("role") == "user"),
        "",
    )
    return {
        "id": row["id"],
        "category": row["category"],
        "text": text,
        "request": request,
        "label": {
            "category": row["category"],
            "calls": row["gold"],
            "signatures": {str(f["name"]): signature(f) for f in row["functions"]},
        },
    }
