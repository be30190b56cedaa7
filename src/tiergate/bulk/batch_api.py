"""The Message Batches API through a transport: create, poll, read results.

Errors (an error status after the transport's retries, or no answer) raise
:class:`BatchApiError`; the bulk run stops and a rerun resumes from the journal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from tiergate.errors import TiergateError
from tiergate.transports.base import ApiCall, ApiReply, Transport

BATCHES = "/v1/messages/batches"


class BatchApiError(TiergateError, RuntimeError):
    """The Message Batches API refused or failed a call."""


def _checked(reply: ApiReply, what: str) -> ApiReply:
    if not reply.ok:
        raise BatchApiError(f"{what}: {reply.status} {reply.body[:300].decode(errors='replace')}")
    return reply


async def create_batch(transport: Transport, requests: Sequence[Mapping[str, Any]]) -> str:
    """A new batch of ``{custom_id, params}`` requests; its id."""
    reply = await transport.send(ApiCall(BATCHES, {"requests": list(requests)}, limited=False))
    return str(_checked(reply, "creating a message batch").json()["id"])


async def batch_status(transport: Transport, batch_id: str) -> str:
    """``in_progress``, ``canceling`` or ``ended``."""
    reply = await transport.send(ApiCall(f"{BATCHES}/{batch_id}", method="GET", limited=False))
    return str(_checked(reply, f"polling batch {batch_id}").json()["processing_status"])


async def batch_results(transport: Transport, batch_id: str) -> Iterator[dict[str, Any]]:
    """The result lines of an ended batch: ``{custom_id, result: {type, message | error}}``."""
    reply = await transport.send(
        ApiCall(f"{BATCHES}/{batch_id}/results", method="GET", limited=False)
    )
    body = _checked(reply, f"reading batch {batch_id}").body
    return (orjson.loads(line) for line in body.splitlines() if line.strip())
