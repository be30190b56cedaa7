"""Free-form routes: pick a tier for a Messages request by declarative rules.

Rules are tried in order and the first that holds picks the tier; none holding leaves the
route's default. Conditions:

- ``input_tokens_over: N``: the prompt (system, messages, tools) is estimated above N tokens;
- ``marked: WORD``: the client marked the request, by the ``x-tiergate-mark`` header
  (comma-separated) or ``metadata.tiergate_mark`` in the body (removed before it goes
  upstream, since the API accepts only ``user_id`` there), e.g. ``hard`` or ``autocomplete``;
- ``max_tokens_at_most: N``: a short answer was asked for;
- ``assistant_prefill: true``: the last message is the assistant's (completion-style requests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tiergate.core.tokens import tokens_for_characters
from tiergate.gateway.config import Rule, RulesRoute
from tiergate.gateway.errors import GatewayError

MARK_FIELD = "tiergate_mark"


@dataclass(frozen=True, slots=True)
class Choice:
    tier: str
    model: str
    reason: str
    headers: tuple[tuple[str, str], ...] = ()  # for the answer (a learned route's score)


def marks_of(header_value: bytes | None, body: dict[str, Any]) -> set[str]:
    marks: set[str] = set()
    if header_value:
        try:
            text = header_value.decode("ascii")
        except UnicodeDecodeError:
            raise GatewayError(400, "x-tiergate-mark: expected comma-separated words") from None
        marks.update(part.strip().lower() for part in text.split(","))
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and MARK_FIELD in metadata:
        value = metadata[MARK_FIELD]
        values = value if isinstance(value, list) else [value]
        marks.update(str(part).strip().lower() for part in values)
    marks.discard("")
    return marks


def strip_marks(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the upstream accepts it: gateway-only metadata removed."""
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or MARK_FIELD not in metadata:
        return body
    rest = {name: value for name, value in metadata.items() if name != MARK_FIELD}
    stripped = {**body, "metadata": rest}
    if not rest:
        del stripped["metadata"]
    return stripped


def estimate_input_tokens(body: dict[str, Any]) -> int:
    characters = sum(len(text) for text in _texts(body.get("system")))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            characters += sum(len(text) for text in _texts(message.get("content")))
    for tool in body.get("tools") or []:
        characters += len(str(tool))
    return tokens_for_characters(characters)


def _texts(content: Any) -> Iterable[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, dict):
                for name in ("text", "content"):
                    yield from _texts(block.get(name))


def choose(route: RulesRoute, body: dict[str, Any], marks: set[str]) -> Choice:
    for rule in route.rules:
        reason = _holds(rule, body, marks)
        if reason:
            return Choice(rule.tier, route.tiers[rule.tier], reason)
    return Choice(route.default, route.tiers[route.default], "default")


def _holds(rule: Rule, body: dict[str, Any], marks: set[str]) -> str:
    if rule.condition == "input_tokens_over":
        estimate = estimate_input_tokens(body)
        return f"input ~{estimate} tokens > {rule.value}" if estimate > int(rule.value) else ""
    if rule.condition == "marked":
        return f"marked {rule.value}" if str(rule.value).lower() in marks else ""
    if rule.condition == "max_tokens_at_most":
        max_tokens = body.get("max_tokens")
        short = isinstance(max_tokens, int) and max_tokens <= int(rule.value)
        return f"max_tokens {max_tokens} <= {rule.value}" if short else ""
    if rule.condition == "assistant_prefill":
        messages = body.get("messages") or []
        last = messages[-1] if messages else None
        prefilled = isinstance(last, dict) and last.get("role") == "assistant"
        return "assistant prefill" if prefilled == bool(rule.value) and prefilled else ""
    return ""
