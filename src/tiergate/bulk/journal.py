"""The answer journal: every upstream answer, recorded per (input line, tier) as it arrives.

A resumed run replays recorded answers instead of asking the model again. Records:

- ``{"k": "answer", "line": N, "tier": T, "message": {...}, "latency_s": S}``: a Messages API
  response (only the fields an answer is read from), or ``"problem"`` instead of ``message`` for
  a batch result that was errored, canceled or expired (retrying those would be a new request);
- ``{"k": "batch", "tier": T, "id": ID, "lines": [...]}``: a message batch was created for
  those lines (batches mode), so a resumed run polls it instead of paying for it again;
- ``{"k": "collected", "id": ID}``: every result of that batch is recorded above.

Only records for lines after the resume point are loaded: memory follows the work in flight,
not the size of the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiergate.bulk.durable import AppendFile, read_records

MESSAGE_FIELDS = ("model", "content", "stop_reason", "usage")


@dataclass(frozen=True, slots=True)
class Recorded:
    message: Mapping[str, Any] | None
    latency_s: float
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    tier: str
    id: str
    lines: tuple[int, ...]


class Journal:
    def __init__(self, path: Path, *, after_line: int) -> None:
        self.answers: dict[tuple[int, str], Recorded] = {}
        self.open_batches: dict[str, BatchRecord] = {}
        for record in read_records(path):
            kind = record.get("k")
            if kind == "answer" and record["line"] > after_line:
                self.answers[(record["line"], record["tier"])] = Recorded(
                    record.get("message"), record.get("latency_s", 0.0), record.get("problem")
                )
            elif kind == "batch" and max(record["lines"], default=0) > after_line:
                self.open_batches[record["id"]] = BatchRecord(
                    record["tier"], record["id"], tuple(record["lines"])
                )
            elif kind == "collected":
                self.open_batches.pop(record["id"], None)
        self._file = AppendFile(path)

    def answer(self, line: int, tier: str) -> Recorded | None:
        return self.answers.get((line, tier))

    def record_answer(
        self,
        line: int,
        tier: str,
        message: Mapping[str, Any] | None,
        latency_s: float,
        problem: str | None = None,
    ) -> Recorded:
        kept = None if message is None else {key: message.get(key) for key in MESSAGE_FIELDS}
        body: dict[str, Any] = {"k": "answer", "line": line, "tier": tier, "latency_s": latency_s}
        if kept is not None:
            body["message"] = kept
        if problem is not None:
            body["problem"] = problem
        self._file.append(body)
        recorded = Recorded(kept, latency_s, problem)
        self.answers[(line, tier)] = recorded
        return recorded

    def record_batch(self, tier: str, batch_id: str, lines: tuple[int, ...]) -> None:
        self._file.append({"k": "batch", "tier": tier, "id": batch_id, "lines": list(lines)})
        self.open_batches[batch_id] = BatchRecord(tier, batch_id, lines)

    def record_collected(self, batch_id: str) -> None:
        self._file.append({"k": "collected", "id": batch_id})
        self.open_batches.pop(batch_id, None)

    def forget(self, line: int, tiers: tuple[str, ...]) -> None:
        """A row is in the output: its answers are no longer needed in memory."""
        for tier in tiers:
            self.answers.pop((line, tier), None)

    def sync(self) -> None:
        self._file.sync()

    def close(self) -> None:
        self._file.close()
