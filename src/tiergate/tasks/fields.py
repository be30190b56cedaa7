"""Fields of a structured answer and how two values of a field compare.

An answer is a JSON object; its *fields* are its leaves, named by their dotted path
(``intent``, ``slots.city``): nested objects are walked, anything else (a string, a number, a
list) is a value. A route says per field how values compare, by path or glob (``slots.*``):

- ``exact``: equal as JSON;
- ``casefold``: equal after folding case and collapsing whitespace (the default);
- ``number``: equal as numbers (``"1,200"``, ``1200`` and ``"1200.0"`` agree);
- ``date``: equal as calendar dates (``2024-03-05``, ``05/03/2024`` day first, ``March 5, 2024``);
- ``set``: equal as sets of case-folded items (a list, or a comma-separated string).

A list compared by anything but ``set`` compares item by item, in order. A value that will not
parse as a number or a date is compared as ``casefold``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

Comparison = Literal["exact", "casefold", "number", "date", "set"]
COMPARISONS: tuple[Comparison, ...] = ("exact", "casefold", "number", "date", "set")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%B %d, %Y", "%b %d, %Y", "%d %B %Y")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """The leaves of a JSON object by dotted path (an empty object has none)."""
    if not isinstance(value, Mapping):
        return {prefix: value} if prefix else {}
    leaves: dict[str, Any] = {}
    for key, inner in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(inner, Mapping):
            leaves.update(flatten(inner, path))
        else:
            leaves[path] = inner
    return leaves


def comparison_for(path: str, rules: Mapping[str, Comparison], default: Comparison) -> Comparison:
    """The rule for a field: its exact path first, then the first glob that matches."""
    if path in rules:
        return rules[path]
    for pattern, rule in rules.items():
        if fnmatch.fnmatchcase(path, pattern):
            return rule
    return default


def same(rule: Comparison, first: Any, second: Any) -> bool:
    """Whether two values of a field agree under ``rule``."""
    if rule == "set":
        return _as_set(first) == _as_set(second)
    if isinstance(first, list) or isinstance(second, list):
        if not (isinstance(first, list) and isinstance(second, list)):
            return False
        return len(first) == len(second) and all(
            same(rule, a, b) for a, b in zip(first, second, strict=True)
        )
    if rule == "exact":
        return bool(first == second) and type(first) is type(second)
    if rule == "number":
        a, b = as_number(first), as_number(second)
        if a is not None and b is not None:
            return a == b
    if rule == "date":
        x, y = as_date(first), as_date(second)
        if x is not None and y is not None:
            return x == y
    return folded(first) == folded(second)


def folded(value: Any) -> str:
    return " ".join(str(value).split()).casefold()


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = re.sub(r"[\s,_]", "", str(value))
    try:
        return float(text)
    except ValueError:
        return None


def as_date(value: Any) -> date | None:
    text = " ".join(str(value).split())
    for form in DATE_FORMATS:
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    return None


def _as_set(value: Any) -> frozenset[str]:
    items = value if isinstance(value, list) else str(value).split(",")
    return frozenset(folded(item) for item in items if folded(item))
