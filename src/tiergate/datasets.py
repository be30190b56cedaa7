"""Labelled data: load it from JSONL or CSV, and split it deterministically.

Public surface::

    load_dataset(path) -> list[Example]
    stratified_split(examples, calibration=0.2, test=0.0, seed=0) -> Split

Accepted formats (chosen by the file suffix):

- ``.jsonl`` / ``.ndjson``: one object per line, ``{"text": ..., "label": ...}``; optional
  ``"provenance"`` and ``"id"``. Blank lines are skipped.
- ``.csv``: a header with ``text`` and ``label`` (or ``category``, as BANKING77 ships it);
  optional ``provenance`` and ``id`` columns.
- ``.txt``: one text per line, with the labels one per line in a file beside it of the same name
  and the suffix ``.labels`` (``train.txt`` and ``train.labels``), line for line. Without that
  file the texts are unlabelled.

A row without text or label raises :class:`DatasetError` whose message names the file and the
line, so a user can open the file at the right place.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tiergate.errors import TiergateError

GOLD = "gold"
LABEL_COLUMNS = ("label", "category")


class DatasetError(TiergateError, ValueError):
    """A data file that cannot be read as labelled examples; the message names file and line."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        if line is None and isinstance(path, str):  # "file:line", as the readers name a row
            head, _, tail = path.rpartition(":")
            if head and tail.isdigit():
                path, line = head, int(tail)
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = Path(path)
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled item. ``label`` is the gold answer in the task's terms (a label, an object of
    fields, a list of tool calls; empty when unknown); ``provenance`` says who gave it: "gold"
    or a tier's model name; ``request`` is the whole request for tasks that need more than the
    text (tools, a conversation)."""

    text: str
    label: Any
    provenance: str = GOLD
    id: str | None = None
    request: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Split:
    train: list[Example]
    calibration: list[Example]
    test: list[Example]


UNLABELLED = "unlabelled"


class RowReader(Protocol):
    """How a task turns one data row into an example (``Task.example``)."""

    def __call__(self, row: Mapping[str, Any], where: str, require_labels: bool) -> Example: ...


def load_dataset(
    path: str | Path, *, require_labels: bool = True, reader: RowReader | None = None
) -> list[Example]:
    """Read labelled examples from a JSONL, CSV or TXT file (see the module docstring).

    ``reader`` turns a row into an example (a task's ``example``); by default a row is a text
    and a label. With ``require_labels=False`` a row may lack its label: it comes back with
    ``label=""`` and provenance ``"unlabelled"`` (calibration then uses the top tier's answer
    in its place).
    """
    file_path = Path(path)
    if not file_path.is_file():
        raise DatasetError(file_path, None, "no such file")
    suffix = file_path.suffix.lower()
    to_example = reader or example_from_row
    if suffix in (".jsonl", ".ndjson"):
        rows = _read_jsonl(file_path)
    elif suffix == ".csv":
        rows = _read_csv(file_path, require_labels)
    elif suffix == ".txt":
        rows = _read_lines(file_path, require_labels)
    else:
        raise DatasetError(
            file_path, None, f"unknown format {suffix!r}; use .jsonl, .csv or .txt (+ .labels)"
        )
    examples = [to_example(row, where, require_labels) for row, where in rows]
    if not examples:
        raise DatasetError(file_path, None, "no examples")
    return examples


Rows = Iterator[tuple[Mapping[str, Any], str]]


def _read_jsonl(path: Path) -> Rows:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(path, line_number, f"invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(path, line_number, "expected a JSON object")
            yield row, f"{path}:{line_number}"


def _read_csv(path: Path, require_labels: bool) -> Rows:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        label_column = next((name for name in LABEL_COLUMNS if name in header), None)
        if "text" not in header or (label_column is None and require_labels):
            raise DatasetError(
                path, 1, f"header needs 'text' and 'label' (or 'category') columns, got {header}"
            )
        for row in reader:
            # line_num is the physical line just read, so quoted multi-line texts still point
            # at the end of their row rather than drifting.
            if label_column and label_column != "label":
                row = {**row, "label": row.get(label_column)}
            yield row, f"{path}:{reader.line_num}"


def _read_lines(path: Path, require_labels: bool) -> Rows:
    """Texts one per line; labels one per line in ``<name>.labels`` beside them."""
    labels_path = path.with_suffix(".labels")
    texts = path.read_text(encoding="utf-8").splitlines()
    if not labels_path.is_file():
        if require_labels:
            raise DatasetError(path, None, f"no labels: expected {labels_path.name} beside it")
        labels: list[str | None] = [None] * len(texts)
    else:
        labels = list(labels_path.read_text(encoding="utf-8").splitlines())
        if len(labels) != len(texts):
            raise DatasetError(
                labels_path,
                None,
                f"{len(labels):,} labels for {len(texts):,} texts in {path.name}: "
                "one label per line, line for line",
            )
    for line_number, (text, label) in enumerate(zip(texts, labels, strict=True), start=1):
        if not text.strip() and not (label or "").strip():
            continue  # a blank line in both files
        yield {"text": text, "label": label}, f"{path}:{line_number}"


def example_from_row(row: Mapping[str, Any], where: str, require_labels: bool = True) -> Example:
    """A text and a label (``label``; CSV's ``category`` arrives as ``label``), with optional
    ``provenance`` and ``id``."""
    text = row.get("text")
    label = row.get("label")
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(where, None, "row has no text")
    if label is None or (isinstance(label, str) and not label.strip()):
        if not require_labels:
            return Example(text, "", UNLABELLED, row_id(row))
        raise DatasetError(where, None, "row has no label")
    if not isinstance(label, str | int):
        raise DatasetError(where, None, "label must be a string")
    provenance = row.get("provenance") or GOLD
    return Example(text, str(label).strip(), str(provenance), row_id(row))


def row_id(row: Mapping[str, Any]) -> str | None:
    value = row.get("id")
    return None if value in (None, "") else str(value)


def stratified_split(
    examples: Sequence[Example],
    *,
    calibration: float = 0.2,
    test: float = 0.0,
    seed: int = 0,
    stratum: Callable[[Any], str] = str,
) -> Split:
    """Split per label into train / calibration / test, the same way for the same seed.

    Each label contributes ``round(n * fraction)`` examples to calibration and test, but a label
    always keeps at least one training example so the classifier knows it exists.
    """
    if calibration < 0 or test < 0 or calibration + test >= 1:
        raise ValueError("calibration and test fractions must be >= 0 and sum to less than 1")
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_label[stratum(example.label)].append(index)
    rng = np.random.default_rng(seed)
    train_idx: list[int] = []
    calibration_idx: list[int] = []
    test_idx: list[int] = []
    # Sorted labels keep the random stream independent of the file's row order per label set.
    for label in sorted(by_label):
        indices = np.array(by_label[label])[rng.permutation(len(by_label[label]))].tolist()
        n_test = min(round(len(indices) * test), len(indices) - 1)
        n_calibration = min(round(len(indices) * calibration), len(indices) - 1 - n_test)
        test_idx.extend(indices[:n_test])
        calibration_idx.extend(indices[n_test : n_test + n_calibration])
        train_idx.extend(indices[n_test + n_calibration :])
    return Split(
        train=_pick(examples, train_idx),
        calibration=_pick(examples, calibration_idx),
        test=_pick(examples, test_idx),
    )


def _pick(examples: Sequence[Example], indices: Iterable[int]) -> list[Example]:
    return [examples[i] for i in sorted(indices)]


def texts_and_labels(examples: Iterable[Example]) -> tuple[list[str], list[str]]:
    """Unzip examples into parallel lists of texts and labels."""
    texts: list[str] = []
    labels: list[str] = []
    for example in examples:
        texts.append(example.text)
        labels.append(example.label)
    return texts, labels
