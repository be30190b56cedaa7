"""The shape of a Messages body, checked before anything reads it.

The API validates bodies itself, but the gateway reads some fields first (to pick a rule's tier,
to bound the cost, to re-serialise for a fallback), so a field of the wrong type must become the
API's 400, not a crash there. Only the types of the fields the gateway reads are checked here;
everything else is left to the upstream, which says more precisely what is wrong.

Nesting is bounded too: orjson refuses to serialise past 254 levels and Python's recursion
stops near 1,000, so a body nested deeper than :data:`MAX_DEPTH` is refused. Counting brackets
is done in C first; only a body with that many brackets is walked.
"""

from __future__ import annotations

from typing import Any

from tiergate.gateway.errors import GatewayError

MAX_DEPTH = 128
# field -> (what it must be, the types that are that)
TOP_LEVEL: dict[str, tuple[str, tuple[type, ...]]] = {
    "system": ("a string or a list of text blocks", (str, list)),
    "tools": ("a list of tool definitions", (list,)),
    "tool_choice": ("an object", (dict,)),
    "metadata": ("an object", (dict,)),
    "thinking": ("an object", (dict,)),
    "stream": ("a boolean", (bool,)),
    "stop_sequences": ("a list of strings", (list,)),
    "output_config": ("an object", (dict,)),
}


def check_shape(body: dict[str, Any], raw: bytes) -> None:
    """Raise the API's 400 for a field of the wrong type or a body nested too deeply."""
    for name, (what, types) in TOP_LEVEL.items():
        value = body.get(name)
        if value is not None and not isinstance(value, types):
            raise GatewayError(400, f"{name}: Input should be {what}")
    for index, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, dict):
            raise GatewayError(400, f"tools.{index}: Input should be an object")
    for index, message in enumerate(body["messages"]):
        if not isinstance(message, dict):
            raise GatewayError(400, f"messages.{index}: Input should be an object")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise GatewayError(
                400, f"messages.{index}.content: Input should be a string or a list of blocks"
            )
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and depth(body) > MAX_DEPTH:
        raise GatewayError(400, f"the request body is nested deeper than {MAX_DEPTH} levels")


def depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value``, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
