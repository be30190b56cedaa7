"""One way to say what is wrong with a file: its name, the field, and what was expected.

Routes, the gateway configuration and the price book are validated with pydantic v2 models on
load; a bad file raises one error whose message names the file, the field (dotted path) and
what the field should be, e.g. ``route.yaml: error_budget: Input should be less than 1 (got
1.5)``. An unknown key is an error too, with the closest known name when one is near
(``error_budjet: unknown field (did you mean error_budget?)``).

:func:`read_yaml` reads such a file: a file that cannot be read, is not YAML, is not a mapping,
or gives a key twice (which YAML would otherwise let the last one win) fails the same way.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tiergate.errors import TiergateError

Model = TypeVar("Model", bound=BaseModel)
Location = tuple[int | str, ...]
# How close an unknown key must be to a known one to be suggested.
SUGGEST_CUTOFF = 0.6
# Error types whose input is not worth showing (the key itself, or the whole mapping).
_NO_INPUT = ("missing", "extra_forbidden", "value_error", "assertion_error")


class FieldProblem(ValueError):
    """Raised inside a model validator to point below the model: ``at`` is the rest of the
    field path (``("rules", 0, "tier")``), the message says what was expected."""

    def __init__(self, at: Location, message: str) -> None:
        super().__init__(message)
        self.at = at


def field_path(location: Location) -> str:
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top level)"


def describe(
    error: ValidationError,
    source: str | Path,
    model: type[BaseModel] | None = None,
    at: Location = (),
) -> str:
    """``source: field: what was expected (got value)`` for the first problem, and a count.

    With ``model``, an unknown key is compared with the names its mapping takes; ``at`` is
    where the validated mapping sits in the file.
    """
    problems = error.errors(include_url=False)
    first = problems[0]
    location: Location = tuple(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        location += cause.at
    if first["type"] == "extra_forbidden":
        message = "unknown field" + _did_you_mean(model, location)
    elif first["type"] == "missing":
        message = "required field missing"
    location = at + location
    got = first.get("input")
    shown = "" if first["type"] in _NO_INPUT or isinstance(got, dict | list) else f" (got {got!r})"
    text = f"{source}: {field_path(location)}: {message}{shown}"
    if len(problems) > 1:
        text += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return text


def validated(
    model: type[Model],
    raw: Mapping[str, Any],
    source: str | Path,
    error: type[Exception] = TiergateError,
    *,
    at: Location = (),
    context: Mapping[str, Any] | None = None,
) -> Model:
    """``model`` from ``raw``, or ``error`` naming ``source``, the field and what was wrong.

    ``at``: where ``raw`` sits in its file (``("routes", "auto")``), prefixed to field paths;
    ``context``: passed to the model's validators (a base folder, the environment).
    """
    try:
        return model.model_validate(raw, context=dict(context or {}))
    except ValidationError as problem:
        raise error(describe(problem, source, model, at)) from None


def did_you_mean(name: str, known: typing.Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``known``, or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=SUGGEST_CUTOFF)
    return f" (did you mean {close[0]}?)" if close else ""


def read_yaml(path: Path, error: type[Exception], what: str = "file") -> dict[str, Any]:
    """The top-level mapping of a YAML file, or ``error`` in one line naming the file."""
    try:
        text = path.read_text("utf-8")
    except OSError as problem:
        raise error(f"cannot read {what} {path}: {problem.strerror}") from None
    return parse_yaml(text, path, error, what)


def parse_yaml(text: str, source: str | Path, error: type[Exception], what: str) -> dict[str, Any]:
    try:
        loaded = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as problem:
        raise error(f"{source}: {problem}") from None
    except yaml.YAMLError as problem:
        raise error(f"{source}: not valid YAML: {yaml_problem(problem)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise error(f"{source}: a {what} must be a mapping of fields, got {type(loaded).__name__}")
    return loaded


class _DuplicateKey(yaml.YAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise _DuplicateKey(
                    f"line {line}: {key!r} is given twice in one mapping (first on line "
                    f"{seen[key]}); keep one"
                )
            if isinstance(key, Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def yaml_problem(problem: yaml.YAMLError) -> str:
    """The parser's complaint on one line, with where it is."""
    if isinstance(problem, yaml.MarkedYAMLError):
        mark = problem.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return f"{where}{problem.problem or problem.context or 'cannot parse'}"
    return " ".join(str(problem).split())


def _did_you_mean(model: type[BaseModel] | None, location: Location) -> str:
    if model is None or not location:
        return ""
    known = _names_at(model, location[:-1])
    return did_you_mean(str(location[-1]), known) if known else ""


def _names_at(model: type[BaseModel], location: Location) -> list[str]:
    """The keys the mapping at ``location`` inside ``model`` takes (empty if unknown)."""
    current: Any = model
    for part in location:
        current = _step(current, part)
        if current is None:
            return []
    current = _model_in(current)
    if current is None:
        return []
    return [field.alias or name for name, field in current.model_fields.items()]


def _step(annotation: Any, part: int | str) -> Any:
    found = _model_in(annotation)
    if found is not None and isinstance(part, str):
        for name, field in found.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    for candidate in _options(annotation):
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if isinstance(part, int) and origin in (list, tuple) and args:
            return args[0]
        if isinstance(part, str) and origin in (dict, Mapping) and len(args) == 2:
            return args[1]
    return None


def _options(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in _options(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
