"""Message Batches: create, retrieve, list, cancel, delete, and JSONL results.

Every request of a batch is answered when the batch is created (answers are deterministic, so
nothing is lost by answering early); the clock alone decides what the client may see. A batch
is ``in_progress`` for ``processing_s`` seconds, then ``ended`` with its results. Cancelling
keeps the share of requests already processed by then and marks the rest ``canceled``; a batch
still processing 24 hours after its creation ends then, the rest ``expired``, as the API's do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tiergate.api_lists import ListQuery, select
from tiergate.emulator.errors import ApiError, invalid
from tiergate.limits import rfc3339

MAX_REQUESTS = 100_000
RESULTS_AVAILABLE_S = 29 * 24 * 3600
EXPIRES_AFTER_S = 24 * 3600
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

# Answers one request's params with a result object ({"type": "succeeded", ...} or "errored").
Answerer = Callable[[Any], dict[str, Any]]


@dataclass
class Batch:
    id: str
    created_at: float
    ends_at: float
    custom_ids: list[str]
    results: list[dict[str, Any]]
    cancel_initiated_at: float | None = None
    kept_on_cancel: int | None = None

    @property
    def expires_at(self) -> float:
        return self.created_at + EXPIRES_AFTER_S

    def ended(self, now: float) -> bool:
        return self.cancel_initiated_at is not None or now >= min(self.ends_at, self.expires_at)

    def ended_at(self) -> float:
        if self.cancel_initiated_at is not None:
            return self.cancel_initiated_at
        return min(self.ends_at, self.expires_at)

    def final_results(self) -> list[dict[str, Any]]:
        if self.kept_on_cancel is not None:
            return self._kept(self.kept_on_cancel, "canceled")
        if self.ends_at > self.expires_at:  # it ran out of time
            share = (self.expires_at - self.created_at) / (self.ends_at - self.created_at)
            return self._kept(int(len(self.results) * share), "expired")
        return self.results

    def _kept(self, count: int, rest: str) -> list[dict[str, Any]]:
        return self.results[:count] + [{"type": rest}] * (len(self.results) - count)


@dataclass
class BatchStore:
    processing_s: float
    _batches: dict[str, Batch] = field(default_factory=dict)

    def create(self, body: Any, batch_id: str, now: float, answer_one: Answerer) -> Batch:
        requests = _requests(body)
        results = [answer_one(request["params"]) for request in requests]
        batch = Batch(
            id=batch_id,
            created_at=now,
            ends_at=now + self.processing_s,
            custom_ids=[str(request["custom_id"]) for request in requests],
            results=results,
        )
        self._batches[batch_id] = batch
        return batch

    def get(self, batch_id: str) -> Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise ApiError(404, f"message_batch: {batch_id} not found")
        return batch

    def cancel(self, batch_id: str, now: float) -> Batch:
        batch = self.get(batch_id)
        if not batch.ended(now):
            elapsed = max(0.0, now - batch.created_at)
            done_share = elapsed / self.processing_s if self.processing_s > 0 else 1.0
            batch.kept_on_cancel = int(len(batch.results) * min(1.0, done_share))
            batch.cancel_initiated_at = now
        return batch

    def delete(self, batch_id: str, now: float) -> None:
        batch = self.get(batch_id)
        if not batch.ended(now):
            raise invalid(f"Batch {batch_id} is still processing; cancel it before deleting it.")
        del self._batches[batch_id]

    def page(self, query: ListQuery) -> tuple[list[Batch], bool]:
        """Newest first, as the API lists; cursors are batch ids."""
        ordered = sorted(self._batches.values(), key=lambda batch: batch.created_at, reverse=True)
        return select(ordered, lambda batch: batch.id, query)


def render(batch: Batch, now: float, base_url: str, *, canceling: bool = False) -> dict[str, Any]:
    """The ``message_batch`` object as seen at ``now``."""
    ended = batch.ended(now) and not canceling
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if ended:
        for result in batch.final_results():
            counts[result["type"]] += 1
    else:
        counts["processing"] = len(batch.results)
    status = "canceling" if canceling else ("ended" if ended else "in_progress")
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": counts,
        "created_at": rfc3339(batch.created_at),
        "expires_at": rfc3339(batch.expires_at),
        "ended_at": rfc3339(batch.ended_at()) if ended else None,
        "cancel_initiated_at": (
            rfc3339(batch.cancel_initiated_at) if batch.cancel_initiated_at is not None else None
        ),
        "archived_at": None,
        "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
    }


def results_jsonl(batch: Batch) -> bytes:
    lines = [
        orjson.dumps({"custom_id": custom_id, "result": result})
        for custom_id, result in zip(batch.custom_ids, batch.final_results(), strict=True)
    ]
    return b"\n".join(lines) + b"\n"


def _requests(body: Any) -> Sequence[Mapping[str, Any]]:
    if not isinstance(body, Mapping) or not isinstance(body.get("requests"), list):
        raise invalid("requests: Field required")
    requests: list[Mapping[str, Any]] = body["requests"]
    if not requests:
        raise invalid("requests: at least one request is required")
    if len(requests) > MAX_REQUESTS:
        raise invalid(f"requests: at most {MAX_REQUESTS} requests per batch, got {len(requests)}")
    seen: set[str] = set()
    for index, request in enumerate(requests):
        if not isinstance(request, Mapping) or not isinstance(request.get("params"), Mapping):
            raise invalid(f"requests.{index}.params: Field required")
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            raise invalid(
                f"requests.{index}.custom_id: String should match '^[a-zA-Z0-9_-]{{1,64}}$'"
            )
        if custom_id in seen:
            raise invalid(f"requests: custom_id {custom_id!r} is used more than once")
        seen.add(custom_id)
    return requests
