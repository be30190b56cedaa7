"""Training records for the pre-call router: per prompt, what each model answered and cost.

One JSON object per line::

    {"id": "q1", "group": "arc-challenge", "prompt": "Which ...? A) ... B) ...",
     "models": {"claude-instant-v1": {"correct": 1.0, "cost": 0.0004, "answer": "B"},
                "gpt-4-1106-preview": {"correct": 1.0, "cost": 0.0050, "answer": "B"}}}

- ``correct`` is a score in 0..1 (1/0 for right/wrong, or a graded preference), or ``null``
  when nobody knows (a team's own traffic has no gold; see :func:`with_silver_labels`).
- ``cost`` is the USD that call cost (or would have cost), per call, never negative.
- ``answer`` is the model's answer in a comparable form; two cheap answers that are equal agree.
  Optional: without answers only the pre-call variant can be trained.
- ``id`` and ``group`` (a task or traffic class, for per-group figures) are optional.

RouterBench rows, as stored in ``../shared/data/routing``, are records as they are: ``task`` is
read as ``group`` and a raw ``response`` as the answer, normalised by :func:`normalise_answer`.
Unknown keys are ignored, so a record can carry provenance of its own.

Records from a team's traffic come from the gateway's ledger (the cheap call, its cost and
answer) plus a shadow call to the strong model on a sample (its cost and answer). Nobody knows
which is right, but the product's target is "as good as the strong tier", so the strong answer
stands in for gold: :func:`with_silver_labels` marks the strong model correct and every other
model correct exactly when it agrees with it. The trainer then runs unchanged, and the quality
target reads "agrees with the strong tier on at least q of the prompts".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiergate.errors import TiergateError

# "A", "A)", "(A)", "A.", "A:" or "A\n..." opening a reply is a multiple-choice letter; "I do"
# (a word after a space) is not.
_CHOICE = re.compile(r"\s*\(?([A-Z])(?:[).:]|[ \t]*(?:\n|$))")


class RecordsError(TiergateError, ValueError):
    """Records that cannot be read or do not fit the request; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One model's call on one prompt."""

    cost: float
    correct: float | None = None
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    prompt: str
    models: Mapping[str, Outcome]
    id: str | None = None
    group: str | None = None


def normalise_answer(text: str) -> str:
    """A comparable form of a reply: its choice letter if it opens with one, else folded text."""
    match = _CHOICE.match(text)
    if match:
        return match.group(1)
    return " ".join(text.split()).casefold()


def answers_agree(first: str | None, second: str | None) -> bool:
    """Two normalised answers agree when both exist and are equal; a missing answer never does."""
    return first is not None and second is not None and first == second


def parse_record(raw: Mapping[str, Any], where: str) -> Record:
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise RecordsError(f"{where}: needs a non-empty string 'prompt'")
    models_raw = raw.get("models")
    if not isinstance(models_raw, Mapping) or not models_raw:
        raise RecordsError(f"{where}: needs 'models', an object of model name -> outcome")
    models = {
        str(name): _parse_outcome(outcome, f"{where}: models.{name}")
        for name, outcome in models_raw.items()
    }
    group = raw.get("group", raw.get("task"))
    record_id = raw.get("id")
    return Record(
        prompt=prompt,
        models=models,
        id=None if record_id is None else str(record_id),
        group=None if group is None else str(group),
    )


def _parse_outcome(raw: Any, where: str) -> Outcome:
    if not isinstance(raw, Mapping):
        raise RecordsError(f"{where}: must be an object with 'cost' (and 'correct', 'answer')")
    cost = raw.get("cost")
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost):
        raise RecordsError(f"{where}.cost: must be a number, got {cost!r}")
    if cost < 0:
        raise RecordsError(f"{where}.cost: must not be negative, got {cost}")
    correct = raw.get("correct")
    if correct is not None:
        if isinstance(correct, bool):
            correct = float(correct)
        if not isinstance(correct, int | float) or not 0.0 <= correct <= 1.0:
            raise RecordsError(f"{where}.correct: must be a score in 0..1 or null, got {correct!r}")
    answer = raw.get("answer")
    if answer is None and isinstance(raw.get("response"), str):
        answer = normalise_answer(raw["response"])
    if answer is not None and not isinstance(answer, str):
        raise RecordsError(f"{where}.answer: must be a string or null, got {answer!r}")
    return Outcome(
        cost=float(cost), correct=None if correct is None else float(correct), answer=answer
    )


def read_records(path: Path) -> list[Record]:
    """Read one JSONL file of records; a bad line raises :class:`RecordsError` naming it."""
    if not path.is_file():
        raise RecordsError(f"{path}: no such file")
    records: list[Record] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                raise RecordsError(f"{where}: not JSON ({error.msg})") from None
            if not isinstance(raw, Mapping):
                raise RecordsError(f"{where}: a record must be a JSON object")
            records.append(parse_record(raw, where))
    if not records:
        raise RecordsError(f"{path}: no records")
    return records


def record_to_json(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if record.id is not None:
        out["id"] = record.id
    if record.group is not None:
        out["group"] = record.group
    out["prompt"] = record.prompt
    out["models"] = {
        name: {"correct": outcome.correct, "cost": outcome.cost, "answer": outcome.answer}
        for name, outcome in record.models.items()
    }
    return out


def write_records(path: Path, records: Iterable[Record]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record_to_json(record), ensure_ascii=False) + "\n")


def split_files(data: Path, split: str) -> list[Path]:
    """The JSONL files of one split in a folder: ``SPLIT.jsonl`` and ``*_SPLIT.jsonl``, sorted."""
    if not data.is_dir():
        raise RecordsError(f"{data}: not a folder")
    files = sorted({*data.glob(f"{split}.jsonl"), *data.glob(f"*_{split}.jsonl")})
    if not files:
        raise RecordsError(f"{data}: no {split} files ({split}.jsonl or *_{split}.jsonl)")
    return files


def load_split(data: Path, split: str, *, limit_per_file: int | None = None) -> list[Record]:
    """All records of one split in ``data``; ``limit_per_file`` keeps the first N of each file."""
    records: list[Record] = []
    for path in split_files(data, split):
        from_file = read_records(path)
        records.extend(from_file if limit_per_file is None else from_file[:limit_per_file])
    return records


def check_models(
    records: Sequence[Record], models: Iterable[str], what: str, *, need_correct: bool = True
) -> None:
    """Every record must have every named model (with a known ``correct`` when asked)."""
    known = sorted({m for r in records for m in r.models})
    for name in models:
        if not any(name in r.models for r in records):
            raise RecordsError(
                f"{what}: no model {name!r} in the records (they have: {', '.join(known)})"
            )
        for index, record in enumerate(records):
            outcome = record.models.get(name)
            where = record.id or f"record {index + 1}"
            if outcome is None:
                raise RecordsError(f"{what}: {where} has no outcome for {name!r}")
            if need_correct and outcome.correct is None:
                raise RecordsError(
                    f"{what}: {where} has no 'correct' for {name!r} "
                    "(unlabelled traffic: use silver labels against the strong model)"
                )


def models_in_every_record(records: Sequence[Record]) -> list[str]:
    """The models every record has an outcome for, sorted."""
    if not records:
        return []
    common = set(records[0].models)
    for record in records[1:]:
        common &= set(record.models)
    return sorted(common)


def with_silver_labels(records: Iterable[Record], reference: str) -> list[Record]:
    """Score every model by agreement with ``reference`` (which counts as right).

    For a team's own traffic with no gold: ``reference`` is the strong model, its shadow answer
    stands in for the truth. A record without the reference's answer is dropped, as it cannot be
    scored; a model without an answer is scored wrong (it could not be shown to agree).
    """
    labelled: list[Record] = []
    for record in records:
        truth = record.models.get(reference)
        if truth is None or truth.answer is None:
            continue
        models = {
            name: Outcome(
                cost=outcome.cost,
                correct=1.0
                if name == reference
                else float(answers_agree(outcome.answer, truth.answer)),
                answer=outcome.answer,
            )
            for name, outcome in record.models.items()
        }
        labelled.append(Record(record.prompt, models, record.id, record.group))
    return labelled
