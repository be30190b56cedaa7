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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiergate.errors import TiergateError

GOLD = "gold"
LABEL_COLUMNS = ("label", "category")


class DatasetError(TiergateError, ValueError):
    """A data file that cannot be read as labelled examples; the message names file and line."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = Path(path)
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text. ``provenance`` says who labelled it: "gold" or a tier's model name."""

    text: str
    label: str
    provenance: str = GOLD
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Split:
    train: list[Example]
    calibration: list[Example]
    test: list[Example]


UNLABELLED = "unlabelled"


def load_dataset(path: str | Path, *, require_labels: bool = True) -> list[Example]:
    """Read labelled examples from a JSONL or CSV file (see the module docstring).

    With ``require_labels=False`` a row may lack its label: it comes back with ``label=""`` and
    provenance ``"unlabelled"`` (calibration then uses the top tier's answer in its place).
    """
    file_path = Path(path)
    if not file_path.is_file():
        raise DatasetError(file_path, None, "no such file")
    suffix = file_path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        examples = list(_read_jsonl(file_path, require_labels))
    elif suffix == ".csv":
        examples = list(_read_csv(file_path, require_labels))
    elif suffix == ".txt":
        examples = list(_read_lines(file_path, require_labels))
    else:
        raise DatasetError(
            file_path, None, f"unknown format {suffix!r}; use .jsonl, .csv or .txt (+ .labels)"
        )
    if not examples:
        raise DatasetError(file_path, None, "no examples")
    return examples


def _read_jsonl(path: Path, require_labels: bool) -> Iterator[Example]:
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
            yield _example_from_row(row, path, line_number, "label", require_labels)


def _read_csv(path: Path, require_labels: bool) -> Iterator[Example]:
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
            yield _example_from_row(
                row, path, reader.line_num, label_column or "label", require_labels
            )


def _read_lines(path: Path, require_labels: bool) -> Iterator[Example]:
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
        yield _example_from_row(
            {"text": text, "label": label}, path, line_number, "label", require_labels
        )


def _example_from_row(
    row: Mapping[str, object],
    path: Path,
    line_number: int,
    label_key: str,
    require_labels: bool = True,
) -> Example:
    text = row.get("text")
    label = row.get(label_key)
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(path, line_number, "row has no text")
    if label is None or (isinstance(label, str) and not label.strip()):
        if not require_labels:
            row_id = row.get("id")
            return Example(text, "", UNLABELLED, None if row_id in (None, "") else str(row_id))
        raise DatasetError(path, line_number, f"row has no {label_key}")
    if not isinstance(label, str | int):
        raise DatasetError(path, line_number, f"{label_key} must be a string")
    provenance = row.get("provenance") or GOLD
    row_id = row.get("id")
    return Example(
        text=text,
        label=str(label).strip(),
        provenance=str(provenance),
        id=None if row_id in (None, "") else str(row_id),
    )


def stratified_split(
    examples: Sequence[Example], *, calibration: float = 0.2, test: float = 0.0, seed: int = 0
) -> Split:
    """Split per label into train / calibration / test, the same way for the same seed.

    Each label contributes ``round(n * fraction)`` examples to calibration and test, but a label
    always keeps at least one training example so the classifier knows it exists.
    """
    if calibration < 0 or test < 0 or calibration + test >= 1:
        raise ValueError("calibration and test fractions must be >= 0 and sum to less than 1")
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_label[example.label].append(index)
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
