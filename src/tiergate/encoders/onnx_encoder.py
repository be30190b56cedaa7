"""A sentence encoder run by ONNX Runtime: no torch at serving time.

The directory holds what ``tiergate.encoders.export.export_onnx`` wrote at train time::

    encoder.json     source model, runtime settings, dimension, quantisation
    model.onnx       the transformer (token ids -> hidden states), int8 or float32
    tokenizer.json   the source model's fast tokenizer

Encoding tokenises with ``tokenizers``, mean-pools the hidden states over real tokens and
L2-normalises in numpy, as sentence-transformers does for MiniLM. Texts of one call are sorted
by token count and run in chunks of similar length, so a chunk pads to little more than its
longest member: with BANKING77's mean of 15 tokens and a tail to 76, unsorted batches of 64 spend
most of their work on padding (``bench/local_tier.py`` measures the difference).

A float32 model gives each text the same vector whatever it is batched with (padding is masked).
An int8 model (dynamic quantisation) does not quite: its activations are quantised with one scale
per batch tensor, so a text's vector moves slightly with its batch-mates (``docs/local_tier.md``
gives the measured size and what it does to accepted answers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiergate.encoders.base import Vectors, l2_normalise
from tiergate.errors import TiergateError

ONNX_PREFIX = "onnx:"
CONFIG_FILE = "encoder.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FORMAT = 1
DEFAULT_BATCH = 64


class EncoderFilesError(TiergateError, ValueError):
    """An encoder directory that is missing files or was written by another format."""


@dataclass(frozen=True, slots=True)
class OnnxEncoderConfig:
    """What ``encoder.json`` records about an exported encoder."""

    source: str  # the sentence-transformers model it was exported from
    dimension: int
    max_seq_length: int
    quantize: str  # "int8" or "none"
    finetuned: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            "source": self.source,
            "dimension": self.dimension,
            "max_seq_length": self.max_seq_length,
            "quantize": self.quantize,
            "finetuned": self.finetuned,
            "pooling": "mean",
        }

    @classmethod
    def read(cls, directory: Path) -> OnnxEncoderConfig:
        path = directory / CONFIG_FILE
        if not path.is_file():
            raise EncoderFilesError(f"{directory}: not an exported encoder (no {CONFIG_FILE})")
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != CONFIG_FORMAT or raw.get("pooling") != "mean":
            raise EncoderFilesError(
                f"{path}: encoder format {raw.get('format')!r} is not supported "
                f"(this tiergate reads format {CONFIG_FORMAT}); retrain with `tiergate train`"
            )
        return cls(
            source=str(raw["source"]),
            dimension=int(raw["dimension"]),
            max_seq_length=int(raw["max_seq_length"]),
            quantize=str(raw["quantize"]),
            finetuned=bool(raw["finetuned"]),
        )


class OnnxEncoder:
    """An exported encoder directory run on ONNX Runtime's CPU provider.

    ``threads`` is ONNX Runtime's intra-op thread count: 1 by default, so a gateway keeps its
    other core for HTTP. The session itself is thread-safe (concurrent ``run`` calls share it).
    """

    def __init__(
        self, directory: str | Path, *, threads: int = 1, batch_size: int = DEFAULT_BATCH
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self._directory = Path(directory).resolve()
        self._config = OnnxEncoderConfig.read(self._directory)
        for name in (MODEL_FILE, TOKENIZER_FILE):
            if not (self._directory / name).is_file():
                raise EncoderFilesError(f"{self._directory}: {name} is missing")
        tokenizer = Tokenizer.from_file(str(self._directory / TOKENIZER_FILE))
        tokenizer.no_padding()
        tokenizer.enable_truncation(self._config.max_seq_length)
        self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        self._session = onnxruntime.InferenceSession(
            str(self._directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {item.name for item in self._session.get_inputs()}
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        return ONNX_PREFIX + str(self._directory)

    @property
    def dimension(self) -> int:
        return self._config.dimension

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def artifact_files(self) -> Path:
        """An exported encoder always belongs to the artifact it was exported for."""
        return self._directory

    @property
    def config(self) -> OnnxEncoderConfig:
        return self._config

    def encode(self, texts: Sequence[str]) -> Vectors:
        return self.encode_stepwise(texts, lambda count: None)

    def encode_stepwise(self, texts: Sequence[str], done: Callable[[int], None]) -> Vectors:
        """:meth:`encode`, calling ``done(n)`` as each batch of ``n`` texts is encoded."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        token_ids = [encoding.ids for encoding in encodings]
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(texts))
        order = np.argsort(lengths, kind="stable")
        pooled = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            rows = order[start : start + self._batch_size]
            pooled[rows] = self._pooled([token_ids[i] for i in rows.tolist()], lengths[rows])
            done(len(rows))
        return l2_normalise(pooled)

    def _pooled(self, token_ids: list[list[int]], lengths: NDArray[np.int64]) -> Vectors:
        width = max(int(lengths.max()), 1)
        ids = np.zeros((len(token_ids), width), dtype=np.int64)
        for row, row_ids in enumerate(token_ids):
            ids[row, : len(row_ids)] = row_ids
        mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        sums = (hidden * weights).sum(axis=1)
        pooled: Vectors = sums / np.maximum(weights.sum(axis=1), 1.0)
        return pooled
