"""Versioned on-disk artifacts of the local model: JSON metadata, .npy arrays, JSONL examples.

Layout of an artifact directory::

    metadata.json     format_version, tiergate version, encoder, labels, sizes, data hash, time
    weights.npy       (dimension, labels) linear weights
    bias.npy          (labels,)
    vectors.npy       (examples, dimension) float32 embeddings of the training examples
    examples.jsonl    the training examples with provenance (gold or the tier that answered)
    encoder/          (optional) the encoder built at train time: ONNX export or fine-tuned
                      weights; metadata names it by a path relative to the artifact
    crossfit.npz      (optional) out-of-fold scores computed at train time, when they cannot
                      be recomputed cheaply (a fine-tuned encoder); string arrays, no pickles
    lexical.npz       (optional) the lexical view: n-gram vocabularies, idf and weights

Nothing is pickled, so loading an artifact cannot run code. A reader refuses any other
``format_version`` rather than guessing at it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiergate.datasets import Example
from tiergate.errors import TiergateError

# Version 2 added encoder/ and crossfit.npz, version 3 lexical.npz; older artifacts still load.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
METADATA_FILE = "metadata.json"
EXAMPLES_FILE = "examples.jsonl"
CROSS_FIT_FILE = "crossfit.npz"
LEXICAL_FILE = "lexical.npz"


class ArtifactError(TiergateError, ValueError):
    """An artifact directory that is missing, damaged or of an unknown format."""


@dataclass(frozen=True, slots=True)
class ArtifactContents:
    metadata: Mapping[str, Any]
    weights: NDArray[np.float64]
    bias: NDArray[np.float64]
    vectors: NDArray[np.float32]
    examples: list[Example]
    cross_fit: Mapping[str, NDArray[Any]] | None = None
    lexical: Mapping[str, NDArray[Any]] | None = None


def data_hash(examples: Iterable[Example]) -> str:
    """A fingerprint of the training data (order, text, label and provenance)."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.text, example.label, example.provenance]).encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def write_artifact(directory: Path, contents: ArtifactContents) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "weights.npy", contents.weights)
    np.save(directory / "bias.npy", contents.bias)
    np.save(directory / "vectors.npy", contents.vectors)
    _write_optional(directory / CROSS_FIT_FILE, contents.cross_fit)
    _write_optional(directory / LEXICAL_FILE, contents.lexical)
    with (directory / EXAMPLES_FILE).open("w", encoding="utf-8") as handle:
        for example in contents.examples:
            row = {"text": example.text, "label": example.label, "provenance": example.provenance}
            if example.id is not None:
                row["id"] = example.id
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    # Metadata last: a directory with metadata.json is a complete artifact.
    metadata = dict(contents.metadata, format_version=FORMAT_VERSION)
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def read_artifact(directory: Path) -> ArtifactContents:
    metadata_path = directory / METADATA_FILE
    if not metadata_path.is_file():
        raise ArtifactError(f"{directory}: not a tiergate local model (no {METADATA_FILE})")
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{metadata_path}: unreadable metadata ({error.msg})") from None
    version = metadata.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ArtifactError(
            f"{directory}: artifact format version {version!r} is not supported "
            f"(this tiergate reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
            "retrain with `tiergate train`"
        )
    examples = []
    with (directory / EXAMPLES_FILE).open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            examples.append(
                Example(row["text"], row["label"], row.get("provenance", "gold"), row.get("id"))
            )
    contents = ArtifactContents(
        metadata=metadata,
        weights=np.load(directory / "weights.npy"),
        bias=np.load(directory / "bias.npy"),
        vectors=np.load(directory / "vectors.npy"),
        examples=examples,
        cross_fit=_read_optional(directory / CROSS_FIT_FILE),
        lexical=_read_optional(directory / LEXICAL_FILE),
    )
    if contents.vectors.shape[0] != len(examples):
        raise ArtifactError(
            f"{directory}: {len(examples)} examples but vectors for a different count"
        )
    return contents


def _write_optional(path: Path, arrays: Mapping[str, NDArray[Any]] | None) -> None:
    if arrays is not None:
        np.savez(path, allow_pickle=False, **dict(arrays))
    elif path.exists():
        path.unlink()  # a stale one would describe another model


def _read_optional(path: Path) -> dict[str, NDArray[Any]] | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}
