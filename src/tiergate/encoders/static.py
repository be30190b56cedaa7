"""A static (bag of token vectors) encoder distilled offline from a sentence-transformer.

Why: the transformer is the local tier's whole latency. Running every vocabulary token once
through the transformer (``[CLS] token [SEP]``, mean-pooled, as model2vec does) and reducing the
table with PCA gives one vector per token; a text is then the mean of its tokens' vectors, a
table look-up costing microseconds. model2vec's own ``distill`` needs ``skeletoken`` and a
``transformers<5.4`` pin that conflicts with the installed sentence-transformers, so the few lines
it needs live here, and run entirely from the local model files (no network).

The distilled table is cached under ``$TIERGATE_CACHE`` (default ``~/.cache/tiergate``) keyed by
source model and size, so distillation (about a minute on two cores) happens once per machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiergate.encoders.base import Vectors, l2_normalise
from tiergate.encoders.cache import cache_root as cache_root  # re-exported: its old home
from tiergate.encoders.sentence_transformer import (
    DEFAULT_MODEL,
    SentenceTransformerEncoder,
    resolve_model_path,
)

STATIC_PREFIX = "static:"
TABLE_FILE = "token_vectors.npy"
TOKENIZER_FILE = "tokenizer.json"


class StaticEncoder:
    """Mean of per-token vectors from a distilled table; ``name`` is ``static:SOURCE``."""

    def __init__(self, table: NDArray[np.float32], tokenizer: Any, source: str) -> None:
        self._table = np.ascontiguousarray(table, dtype=np.float32)
        self._tokenizer = tokenizer
        self._source = source

    @classmethod
    def from_source(
        cls, source: str = DEFAULT_MODEL, *, dimension: int = 256, cache: Path | None = None
    ) -> StaticEncoder:
        """Load the distilled table for ``source`` from the cache, distilling it if absent."""
        directory = (cache or cache_root()) / _cache_key(source, dimension)
        if not (directory / TABLE_FILE).is_file():
            distil(source, directory, dimension=dimension)
        return cls.from_directory(directory, source=source)

    @classmethod
    def from_directory(cls, directory: Path, *, source: str) -> StaticEncoder:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return cls(np.load(directory / TABLE_FILE), tokenizer, source)

    @property
    def name(self) -> str:
        return STATIC_PREFIX + self._source

    @property
    def dimension(self) -> int:
        return int(self._table.shape[1])

    def encode(self, texts: Sequence[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        if lengths.sum() == 0:
            return np.zeros((len(texts), self.dimension), dtype=np.float32)
        ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encodings])
        token_vectors = self._table[ids]
        # reduceat sums each text's run of token rows; empty texts are patched to zero below.
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        sums = np.add.reduceat(token_vectors, np.minimum(starts, len(ids) - 1), axis=0)
        sums[lengths == 0] = 0.0
        return l2_normalise(sums)


def _cache_key(source: str, dimension: int) -> str:
    digest = hashlib.sha256(f"{source}|{dimension}|v1".encode()).hexdigest()[:16]
    return f"static-{digest}"


def distil(source: str, directory: Path, *, dimension: int = 256, batch_size: int = 512) -> None:
    """Write ``token_vectors.npy`` and ``tokenizer.json`` for ``source`` into ``directory``."""
    import torch

    encoder = SentenceTransformerEncoder(source)
    transformer = encoder.transformer[0]
    hf_tokenizer = transformer.tokenizer
    backbone = transformer.auto_model
    backbone.eval()
    vocabulary_size = len(hf_tokenizer)
    special = [hf_tokenizer.cls_token_id, hf_tokenizer.sep_token_id]
    rows: list[NDArray[np.float32]] = []
    with torch.inference_mode():
        for start in range(0, vocabulary_size, batch_size):
            token_ids = torch.arange(start, min(start + batch_size, vocabulary_size))
            if special[0] is not None and special[1] is not None:
                input_ids = torch.stack(
                    [
                        torch.full_like(token_ids, special[0]),
                        token_ids,
                        torch.full_like(token_ids, special[1]),
                    ],
                    dim=1,
                )
            else:
                input_ids = token_ids[:, None]
            hidden = backbone(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
            rows.append(hidden.last_hidden_state.mean(dim=1).float().numpy())
    table = np.concatenate(rows).astype(np.float64)
    # PCA: centring removes the direction every token shares, which otherwise dominates means.
    centred = table - table.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[: min(dimension, components.shape[0])].T
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / TABLE_FILE, reduced.astype(np.float32))
    hf_tokenizer.backend_tokenizer.save(str(directory / TOKENIZER_FILE))
    (directory / "source.json").write_text(
        json.dumps({"source": source, "resolved": resolve_model_path(source), "dim": dimension})
    )
