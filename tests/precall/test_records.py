"""Records: the format round-trips, RouterBench rows read as they are, bad lines say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiergate.precall.records import (
    Outcome,
    Record,
    RecordsError,
    load_split,
    normalise_answer,
    read_records,
    with_silver_labels,
    write_records,
)

ROUTERBENCH_ROW = {
    "id": "winogrande.dev.1",
    "task": "winogrande",
    "split": "test",
    "routerbench_row": 35245,
    "prompt": "Please answer with the letter of the correct answer.\n\nAnswer:",
    "models": {
        "claude-instant-v1": {"correct": 0.0, "cost": 0.00028, "response": "A)"},
        "gpt-4-1106-preview": {"correct": 1.0, "cost": 0.0035, "response": "B"},
    },
    "oracle_model_to_route_to": "gpt-4-1106-preview",
}


def test_records_round_trip(tmp_path: Path) -> None:
    records = [
        Record(
            "Which is heavier?\nA) lead\nB) air",
            {
                "cheap": Outcome(cost=0.0004, correct=1.0, answer="A"),
                "strong": Outcome(cost=0.005, correct=0.5, answer=None),
                "shadow": Outcome(cost=0.001, correct=None, answer="B"),
            },
            id="q1",
            group="physics",
        ),
        Record("Unicode ✓ and\nnewlines", {"cheap": Outcome(cost=0.0)}),
    ]
    path = tmp_path / "records.jsonl"
    write_records(path, records)
    assert read_records(path) == records


def test_a_routerbench_row_is_a_record(tmp_path: Path) -> None:
    path = tmp_path / "winogrande_test.jsonl"
    path.write_text(json.dumps(ROUTERBENCH_ROW) + "\n")
    [record] = read_records(path)
    assert record.group == "winogrande"
    assert record.id == "winogrande.dev.1"
    assert record.models["claude-instant-v1"] == Outcome(cost=0.00028, correct=0.0, answer="A")
    assert record.models["gpt-4-1106-preview"].answer == "B"


@pytest.mark.parametrize(
    ("reply", "normalised"),
    [
        ("A", "A"),
        ("A)", "A"),
        ("(C)", "C"),
        ("D\n", "D"),
        ("B. because", "B"),
        ("  Rachel ", "rachel"),
        ("I do not know", "i do not know"),
        ("Aria", "aria"),
    ],
)
def test_replies_normalise_to_a_choice_letter_or_folded_text(reply: str, normalised: str) -> None:
    assert normalise_answer(reply) == normalised


def test_split_files_are_found_by_name(tmp_path: Path) -> None:
    for name in ("arc_train.jsonl", "wino_train.jsonl", "arc_test.jsonl", "notes.jsonl"):
        (tmp_path / name).write_text(json.dumps(ROUTERBENCH_ROW) + "\n" * 2)
    assert len(load_split(tmp_path, "train")) == 2
    assert len(load_split(tmp_path, "test", limit_per_file=1)) == 1
    with pytest.raises(RecordsError, match="no validation files"):
        load_split(tmp_path, "validation")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"records.jsonl:2: not JSON"),
        ("[1, 2]", r"records.jsonl:2: a record must be a JSON object"),
        ('{"models": {"m": {"cost": 1}}}', "needs a non-empty string 'prompt'"),
        ('{"prompt": "p", "models": {}}', "needs 'models'"),
        (
            '{"prompt": "p", "models": {"m": {"cost": -1}}}',
            r"models\.m\.cost: must not be negative",
        ),
        ('{"prompt": "p", "models": {"m": {"cost": "1"}}}', r"models\.m\.cost: must be a number"),
        ('{"prompt": "p", "models": {"m": {"cost": 1, "correct": 2}}}', "score in 0..1"),
        ('{"prompt": "p", "models": {"m": {"cost": 1, "answer": 3}}}', "must be a string"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps({"prompt": "ok", "models": {"m": {"cost": 1}}}) + "\n" + line + "\n")
    with pytest.raises(RecordsError, match=message):
        read_records(path)


def test_silver_labels_score_agreement_with_the_strong_model() -> None:
    """A team's traffic: the cheap answer from the ledger, the strong one from a shadow call."""
    records = [
        Record("p1", {"cheap": Outcome(0.1, None, "A"), "strong": Outcome(1.0, None, "A")}),
        Record("p2", {"cheap": Outcome(0.1, None, "B"), "strong": Outcome(1.0, None, "A")}),
        Record("p3", {"cheap": Outcome(0.1, None, None), "strong": Outcome(1.0, None, "C")}),
        Record("p4", {"cheap": Outcome(0.1, None, "A")}),  # no shadow answer: cannot be scored
    ]
    labelled = with_silver_labels(records, "strong")
    assert [r.prompt for r in labelled] == ["p1", "p2", "p3"]
    assert [r.models["cheap"].correct for r in labelled] == [1.0, 0.0, 0.0]
    assert all(r.models["strong"].correct == 1.0 for r in labelled)
    assert labelled[0].models["cheap"].cost == 0.1
