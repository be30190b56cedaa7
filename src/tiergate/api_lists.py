"""The API's cursor-paged lists, shared by the emulator and the gateway.

``?limit=N&after_id=ID`` (or ``before_id``) in, ``{"data": [...], "has_more", "first_id",
"last_id"}`` out: the shape of ``GET /v1/models`` and ``GET /v1/messages/batches``, which the
SDK's ``SyncPage`` walks by ``last_id`` (or ``first_id`` when paging backwards).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

from tiergate.api_errors import AnthropicError

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class ListQuery:
    limit: int = DEFAULT_LIMIT
    after_id: str | None = None
    before_id: str | None = None
    # Every parameter as parsed, for list-specific filters (``lifecycle[]`` on models).
    params: Mapping[str, list[str]] = field(default_factory=dict)

    def values(self, name: str) -> list[str]:
        """A repeated parameter, whether sent as ``name=`` or (as the SDK does) ``name[]=``."""
        return [*self.params.get(name, ()), *self.params.get(name + "[]", ())]


def parse_list_query(query_string: bytes | str) -> ListQuery:
    """The paging parameters of a list request; a 400 in the API's words when malformed."""
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    params = parse_qs(text)
    raw_limit = params.get("limit", [str(DEFAULT_LIMIT)])[0]
    try:
        limit = int(raw_limit)
    except ValueError:
        raise AnthropicError(400, "limit: Input should be a valid integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise AnthropicError(400, f"limit: Input should be between 1 and {MAX_LIMIT}")
    after = params.get("after_id", [None])[0]
    before = params.get("before_id", [None])[0]
    if after is not None and before is not None:
        raise AnthropicError(400, "after_id and before_id cannot both be given")
    return ListQuery(limit, after, before, params)


def select(
    items: Sequence[Item], id_of: Callable[[Item], str], query: ListQuery
) -> tuple[list[Item], bool]:
    """One page of ``items`` (already in list order) and whether more lie beyond it.

    ``after_id`` pages forward from that item, ``before_id`` backward; an id not in the list
    gives an empty page.
    """
    ids = [id_of(item) for item in items]
    limit = query.limit
    if query.after_id is not None:
        start = ids.index(query.after_id) + 1 if query.after_id in ids else len(ids)
        return list(items[start : start + limit]), start + limit < len(items)
    if query.before_id is not None:
        end = ids.index(query.before_id) if query.before_id in ids else 0
        return list(items[max(0, end - limit) : end]), end - limit > 0
    return list(items[:limit]), limit < len(items)


def page_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
