from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tiergate.datasets import DatasetError, Example, load_dataset, stratified_split

from .conftest import DATA


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_category_column_loads_banking77(train_examples: list[Example]) -> None:
    assert len(train_examples) == 300
    assert train_examples[0].label == "card_arrival"
    assert all(e.provenance == "gold" for e in train_examples)
    assert len({e.label for e in train_examples}) == 10


def test_jsonl_loads_text_label_provenance_and_id(tmp_path: Path) -> None:
    rows = [
        {"text": "card never came", "label": "card_arrival"},
        {"text": "pin blocked", "label": "pin_blocked", "provenance": "claude-haiku-4-5", "id": 7},
    ]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    loaded = load_dataset(path)
    assert loaded == [
        Example("card never came", "card_arrival"),
        Example("pin blocked", "pin_blocked", "claude-haiku-4-5", "7"),
    ]


def test_jsonl_row_without_label_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl",
        '{"text": "a", "label": "x"}\n\n{"text": "b"}\n',
    )
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert caught.value.line == 3
    assert str(caught.value) == f"{path}:3: row has no label"


def test_csv_row_without_text_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'text,label\nhello,greet\n"multi\nline",x\n,y\n')
    with pytest.raises(DatasetError, match=r"d\.csv:5: row has no text"):
        load_dataset(path)


def test_csv_without_label_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,intent\nhello,greet\n")
    with pytest.raises(DatasetError, match=r"d\.csv:1: header needs"):
        load_dataset(path)


def test_invalid_json_line_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{oops\n')
    with pytest.raises(DatasetError, match=r"d\.jsonl:2: invalid JSON"):
        load_dataset(path)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown format"):
        load_dataset(write(tmp_path / "d.tsv", "x"))
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "absent.csv")


def test_stratified_split_is_deterministic_disjoint_and_stratified(
    train_examples: list[Example],
) -> None:
    first = stratified_split(train_examples, calibration=0.2, test=0.1, seed=3)
    again = stratified_split(train_examples, calibration=0.2, test=0.1, seed=3)
    other = stratified_split(train_examples, calibration=0.2, test=0.1, seed=4)
    assert first == again
    assert first.calibration != other.calibration
    parts = [first.train, first.calibration, first.test]
    assert sorted(e.text for part in parts for e in part) == sorted(e.text for e in train_examples)
    assert Counter(e.label for e in first.calibration) == {
        label: 6 for label in Counter(e.label for e in train_examples)
    }
    assert Counter(e.label for e in first.test) == Counter(
        {label: 3 for label in {e.label for e in train_examples}}
    )


def test_split_keeps_a_training_example_for_rare_labels() -> None:
    examples = [Example("only one", "rare"), *(Example(f"t{i}", "common") for i in range(10))]
    split = stratified_split(examples, calibration=0.5, test=0.4, seed=0)
    assert [e.label for e in split.train].count("rare") == 1


def test_sample_data_is_shipped() -> None:
    assert (DATA / "README.md").is_file()


def test_labels_may_be_optional_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"text": "lost my card", "label": "lost_card"}\n{"text": "where is it", "id": "7"}\n'
    )
    with pytest.raises(DatasetError, match=":2: row has no label"):
        load_dataset(path)
    loaded = load_dataset(path, require_labels=False)
    assert [(e.label, e.provenance, e.id) for e in loaded] == [
        ("lost_card", "gold", None),
        ("", "unlabelled", "7"),
    ]
    csv_path = tmp_path / "texts.csv"
    csv_path.write_text("text\nhello\n")
    assert load_dataset(csv_path, require_labels=False)[0].label == ""
    with pytest.raises(DatasetError, match="header needs"):
        load_dataset(csv_path)


def test_a_text_file_with_a_labels_file_beside_it_loads_line_for_line(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("my card is lost\nwhere is my money\n")
    (tmp_path / "train.labels").write_text("lost_or_stolen_card\ntransfer_timing\n")
    examples = load_dataset(tmp_path / "train.txt")
    assert [(e.text, e.label) for e in examples] == [
        ("my card is lost", "lost_or_stolen_card"),
        ("where is my money", "transfer_timing"),
    ]
    (tmp_path / "train.labels").write_text("lost_or_stolen_card\n")
    with pytest.raises(DatasetError, match=r"1 labels for 2 texts in train\.txt"):
        load_dataset(tmp_path / "train.txt")
    (tmp_path / "train.labels").unlink()
    with pytest.raises(DatasetError, match=r"no labels: expected train.labels beside it"):
        load_dataset(tmp_path / "train.txt")
    unlabelled = load_dataset(tmp_path / "train.txt", require_labels=False)
    assert [e.label for e in unlabelled] == ["", ""]
