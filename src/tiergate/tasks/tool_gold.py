"""Tool-call gold in BFCL's "possible answer" format, and the checker that scores a decision.

A decision is a list of calls ``{"name": NAME, "arguments": {...}}`` (empty: no call). Gold is
``{"category", "calls", "signatures"}``: ``calls`` is BFCL's list of one-key objects
``{function: {param: [acceptable values...]}}`` (``[]``: no call is right; ``None``: any call
is right), ``signatures`` each offered function's required parameters and declared BFCL types
(kept apart from the JSON Schema sent to the API, which maps them). The rules are those of
``../shared/data/tools/DATA.md`` (BFCL's AST checker): the number of calls, names (``.`` and
``_`` alike), required parameters present, no parameter outside the gold, every value one of
the acceptable ones (strings normalised, an int accepted for a float, lists element by element,
dicts key by key, ``""`` meaning "may be omitted").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Call = Mapping[str, Any]  # {"name": str, "arguments": dict}
OMITTED = ""
# The characters BFCL's checker deletes before comparing strings.
_STRIP = re.compile(r"[ ,./\-_*^]")
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "float": (int, float),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "tuple": (list,),
    "dict": (dict,),
    "object": (dict,),
    "any": (str,),
}


def api_name(name: str) -> str:
    """A function name as the Claude API allows it (``^[a-zA-Z0-9_-]{1,64}$``)."""
    return name.replace(".", "_")


def normalize_string(value: str) -> str:
    return _STRIP.sub("", value).lower().replace("'", '"')


def decision_correct(calls: Sequence[Call], gold: Mapping[str, Any]) -> bool:
    """Whether a decision matches the gold by BFCL's possible-answer rules."""
    expected = gold.get("calls")
    if expected is None:  # live_relevance: some call is due, any call counts
        return len(calls) >= 1
    if len(calls) != len(expected):
        return False
    signatures: Mapping[str, Any] = gold.get("signatures") or {}
    return _matched(list(calls), list(expected), signatures)


def _matched(calls: list[Call], expected: list[Mapping[str, Any]], signatures: Any) -> bool:
    """Each gold call matched by a different call, in any order (backtracking; n <= 8)."""
    if not expected:
        return True
    first, rest = expected[0], expected[1:]
    for index, call in enumerate(calls):
        if call_matches(call, first, signatures) and _matched(
            calls[:index] + calls[index + 1 :], rest, signatures
        ):
            return True
    return False


def call_matches(call: Call, gold_call: Mapping[str, Any], signatures: Mapping[str, Any]) -> bool:
    (function, params), *_ = gold_call.items()
    if api_name(str(call.get("name", ""))) != api_name(function):
        return False
    arguments = call.get("arguments")
    if not isinstance(arguments, Mapping):
        return False
    signature = signatures.get(function) or {}
    types: Mapping[str, str] = signature.get("types") or {}
    if any(name not in arguments for name in signature.get("required") or ()):
        return False
    for name, value in arguments.items():
        if name not in params or not value_matches(value, params[name], types.get(name)):
            return False
    return all(name in arguments or OMITTED in accepted for name, accepted in params.items())


def value_matches(value: Any, accepted: Sequence[Any], declared: str | None) -> bool:
    """One passed value against its list of acceptable values and its declared type."""
    if declared is not None and not _typed(value, declared):
        return False
    return any(_equal(value, option) for option in accepted if not _is_omitted(option))


def _is_omitted(option: Any) -> bool:
    return isinstance(option, str) and option == OMITTED


def _typed(value: Any, declared: str) -> bool:
    allowed = _PYTHON_TYPES.get(declared)
    if allowed is None:
        return True
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


def _equal(value: Any, option: Any) -> bool:
    if isinstance(value, str) and isinstance(option, str):
        return normalize_string(value) == normalize_string(option)
    if isinstance(value, bool) or isinstance(option, bool):
        return isinstance(value, bool) and isinstance(option, bool) and value == option
    if isinstance(value, int | float) and isinstance(option, int | float):
        return float(value) == float(option)
    if isinstance(value, list) and isinstance(option, list):
        return len(value) == len(option) and all(
            _equal(item, expected) for item, expected in zip(value, option, strict=True)
        )
    if isinstance(value, dict) and isinstance(option, dict):
        return _dict_matches(value, option)
    return bool(value == option)


def _dict_matches(value: Mapping[str, Any], option: Mapping[str, Any]) -> bool:
    """Every passed key exists in the acceptable dict with a matching value; keys left out
    must allow omission. An acceptable dict's values are lists of acceptable values."""
    for key, item in value.items():
        if key not in option:
            return False
        choices = option[key]
        if isinstance(choices, list):
            if not any(_equal(item, choice) for choice in choices if not _is_omitted(choice)):
                return False
        elif not _equal(item, choices):
            return False
    return all(
        key in value or (isinstance(choices, list) and OMITTED in choices)
        for key, choices in option.items()
    )


def canonical_answer(gold: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A decision the gold accepts: the first acceptable value of each parameter that must or
    may be given (left out where omission is the only choice), names as the API spells them."""
    return [
        {"name": api_name(function), "arguments": _chosen(params)}
        for call in gold.get("calls") or []
        for function, params in call.items()
    ]


def _chosen(params: Mapping[str, Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for name, accepted in params.items():
        # None stands for "the default" in BFCL's gold: a model leaves such a parameter out.
        given = [o for o in accepted if not _is_omitted(o) and o is not None]
        if given:
            arguments[name] = _plain(given[0])
    return arguments


def _plain(option: Any) -> Any:
    """An acceptable value as a model would pass it (a gold dict holds lists of choices)."""
    if isinstance(option, dict):
        return _chosen({k: v if isinstance(v, list) else [v] for k, v in option.items()})
    if isinstance(option, list):
        return [_plain(item) for item in option]
    return option
