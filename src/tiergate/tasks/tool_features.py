"""Confidence features of a tool decision that need no model: argument validity against each
tool's input schema, and a lexical query-to-tool similarity.

Validity catches what a model gets visibly wrong (a required argument left out, a value of the
wrong type or outside an enum, an argument the tool does not take). Similarity says whether the
tools called are the ones the request talks about, and whether declining to call was wise when
some tool matches the request well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|\d+")
# Words too common in requests and tool descriptions to say which tool is meant.
STOP_WORDS = (
    "a an and are as at be by can could do does for from get give how i in into is it its me my "
    "of on or please set show the this to use using what when which will with would you your "
    "given specified specific"
)
_STOP = frozenset(STOP_WORDS.split())
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def words(text: str) -> set[str]:
    """Lower-case content words, with ``snake_case`` and ``camelCase`` names split."""
    return {word.lower() for word in _WORD.findall(text)} - _STOP


def tool_words(tool: Mapping[str, Any]) -> set[str]:
    return words(str(tool.get("name", "")).replace("_", " ")) | words(
        str(tool.get("description", ""))
    )


def similarity(query: set[str], tool: set[str]) -> float:
    """Share of the tool's words the query uses, damped for long descriptions."""
    if not query or not tool:
        return 0.0
    return len(query & tool) / min(len(tool), max(len(query), 1))


def similarity_features(
    query: str, tools: Sequence[Mapping[str, Any]], called: Iterable[str]
) -> dict[str, float]:
    asked = words(query)
    scores = {str(tool.get("name")): similarity(asked, tool_words(tool)) for tool in tools}
    chosen = set(called)
    mine = [scores[name] for name in chosen if name in scores]
    others = [score for name, score in scores.items() if name not in chosen]
    chosen_score = min(mine) if mine else 0.0
    best_other = max(others) if others else 0.0
    return {
        "called_similarity": chosen_score,
        "best_other_similarity": best_other,
        "similarity_margin": chosen_score - best_other if mine else -best_other,
    }


def argument_problems(arguments: Any, schema: Mapping[str, Any]) -> int:
    """How many ways ``arguments`` break the tool's input schema (0: valid)."""
    if not isinstance(arguments, Mapping):
        return 1
    properties: Mapping[str, Any] = schema.get("properties") or {}
    problems = sum(1 for name in schema.get("required") or () if name not in arguments)
    for name, value in arguments.items():
        part = properties.get(name)
        if part is None:
            problems += 1 if properties else 0
        elif isinstance(part, Mapping):
            problems += _value_problems(value, part)
    return problems


def _value_problems(value: Any, schema: Mapping[str, Any]) -> int:
    enum = schema.get("enum")
    if enum and value not in enum:
        return 1
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _JSON_TYPES:
        allowed = _JSON_TYPES[kind]
        if isinstance(value, bool) and bool not in allowed:
            return 1
        if not isinstance(value, allowed):
            return 1
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return sum(_value_problems(item, schema["items"]) for item in value)
    if isinstance(value, dict) and isinstance(schema.get("properties"), Mapping):
        return argument_problems(value, schema)
    return 0


def validity_features(
    calls: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    schemas = {str(tool.get("name")): tool.get("input_schema") or {} for tool in tools}
    problems = [
        argument_problems(call.get("arguments"), schemas.get(str(call.get("name")), {}))
        for call in calls
    ]
    invalid = sum(1 for count in problems if count)
    return {
        "invalid_calls": float(invalid),
        "invalid_share": invalid / len(calls) if calls else 0.0,
        "argument_problems": float(sum(problems)),
    }
