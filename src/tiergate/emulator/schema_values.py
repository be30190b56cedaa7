"""Values that validate against a JSON schema, drawn from a seeded random source.

Covers what structured output and tool inputs use in practice: ``type`` (one or a list),
``enum``/``const``, objects (``properties``, ``required``, ``additionalProperties``), arrays
(``items``, ``minItems``/``maxItems``), strings (``minLength``/``maxLength``, common ``format``s),
numbers and integers (``minimum``/``maximum`` and the exclusive forms, ``multipleOf``),
booleans, null, ``anyOf``/``oneOf`` (first branch), ``allOf`` (merged) and local ``$ref``
(``#/$defs/...``, ``#/definitions/...``, as pydantic writes them). ``pattern`` is not honoured.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

_WORDS = (
    "account card transfer payment refund balance limit order update status review",
    "request service support pending ready active issue note summary detail",
)
_VOCABULARY = " ".join(_WORDS).split()
MAX_DEPTH = 12


def sample(schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A value valid against ``schema`` (whose ``$defs``/``definitions`` resolve local refs)."""
    return _Sampler(schema, rng).value(schema, 0)


class _Sampler:
    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def value(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, Mapping) or depth > MAX_DEPTH:
            return None if depth > MAX_DEPTH else "value"
        if "$ref" in schema:
            return self.value(self._resolve(str(schema["$ref"])), depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self.rng.choice(list(schema["enum"]))
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged = _merge(merged, self._deref(part))
            rest = {key: item for key, item in schema.items() if key != "allOf"}
            return self.value(_merge(merged, rest), depth + 1)
        for union in ("anyOf", "oneOf"):
            if schema.get(union):
                return self.value(schema[union][0], depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            concrete = [name for name in kind if name != "null"]
            kind = concrete[0] if concrete else "null"
        if kind is None:
            kind = _guess_type(schema)
        return self._typed(str(kind), schema, depth)

    def _typed(self, kind: str, schema: Mapping[str, Any], depth: int) -> Any:
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "string":
            return self._string(schema)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return "value"

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        result = {name: self.value(sub, depth + 1) for name, sub in properties.items()}
        for name in schema.get("required") or ():
            if name not in result:
                extra = schema.get("additionalProperties")
                result[name] = self.value(extra if isinstance(extra, Mapping) else {}, depth + 1)
        return result

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        low = int(schema.get("minItems", 1))
        high = int(schema.get("maxItems", max(low, 3)))
        count = self.rng.randint(low, max(low, high))
        items = schema.get("items") or {}
        values = [self.value(items, depth + 1) for _ in range(count)]
        if schema.get("uniqueItems"):
            unique: list[Any] = []
            for item in values:
                if item not in unique:
                    unique.append(item)
            values = unique if len(unique) >= low else values
        return values

    def _string(self, schema: Mapping[str, Any]) -> str:
        formatted = _FORMATS.get(str(schema.get("format", "")))
        if formatted is not None:
            return formatted
        low = int(schema.get("minLength", 0))
        high = int(schema.get("maxLength", max(low, 40)))
        words = [self.rng.choice(_VOCABULARY) for _ in range(self.rng.randint(1, 4))]
        text = " ".join(words)
        while len(text) < low:
            text += " " + self.rng.choice(_VOCABULARY)
        return text[:high] if high >= low else text

    def _bounds(self, schema: Mapping[str, Any], step: float) -> tuple[float, float]:
        low = float(schema.get("minimum", -math.inf))
        high = float(schema.get("maximum", math.inf))
        if "exclusiveMinimum" in schema:
            low = max(low, float(schema["exclusiveMinimum"]) + step)
        if "exclusiveMaximum" in schema:
            high = min(high, float(schema["exclusiveMaximum"]) - step)
        if math.isinf(low) and math.isinf(high):
            low, high = 0.0, 100.0
        elif math.isinf(low):
            low = high - 100.0
        elif math.isinf(high):
            high = low + 100.0
        return low, high

    def _integer(self, schema: Mapping[str, Any]) -> int:
        low, high = self._bounds(schema, 1.0)
        multiple = int(schema.get("multipleOf", 1)) or 1
        first, last = math.ceil(low / multiple), math.floor(high / multiple)
        return self.rng.randint(first, max(first, last)) * multiple

    def _number(self, schema: Mapping[str, Any]) -> float:
        if "multipleOf" in schema:
            return self._multiple(schema)
        low, high = self._bounds(schema, 1e-6)
        return round(self.rng.uniform(low, high), 4) if high > low else low

    def _multiple(self, schema: Mapping[str, Any]) -> float:
        step = float(schema["multipleOf"])
        low, high = self._bounds(schema, step)
        first, last = math.ceil(low / step), math.floor(high / step)
        return self.rng.randint(first, max(first, last)) * step

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            return {}
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if node else {}
        return node

    def _deref(self, schema: Any) -> Mapping[str, Any]:
        if isinstance(schema, Mapping) and "$ref" in schema:
            return self._deref(self._resolve(str(schema["$ref"])))
        return schema if isinstance(schema, Mapping) else {}


_FORMATS = {
    "date-time": "2026-11-24T10:00:00Z",
    "date": "2026-11-24",
    "time": "10:00:00",
    "email": "someone@example.com",
    "uri": "https://example.com/item",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
}


def _guess_type(schema: Mapping[str, Any]) -> str:
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema:
        return "array"
    if "minimum" in schema or "maximum" in schema:
        return "number"
    return "string"


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties":
            merged[key] = {**merged.get(key, {}), **value}
        elif key == "required":
            merged[key] = [*merged.get(key, []), *value]
        else:
            merged[key] = value
    return merged
