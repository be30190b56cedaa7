"""Sentence-transformers encoders; the default is the bundled all-MiniLM-L6-v2 (no download).

Names listed in ``tiergate/data/encoders.yaml`` (MiniLM, all-mpnet-base-v2, their aliases) are
taken from installed packages (``tiergate.encoders.packaged``), never from a model hub.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tiergate.encoders.base import Vectors, l2_normalise
from tiergate.encoders.packaged import packaged_model_path
from tiergate.encoders.quiet import quiet_libraries

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def resolve_model_path(model: str | Path) -> str:
    """A packaged encoder's name or alias -> its local folder; any other name or path as is."""
    path = packaged_model_path(str(model))
    return str(model) if path is None else str(path)


class SentenceTransformerEncoder:
    """Any sentence-transformers model by name or local path, run on the CPU by default.

    ``HF_HUB_OFFLINE`` is set unless the caller set it: tiergate must never fetch weights while
    serving. A name that is not cached locally fails loudly instead.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        max_seq_length: int | None = None,
        owned: bool = False,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = resolve_model_path(model)  # first: a missing package fails before torch loads
        quiet_libraries()
        from sentence_transformers import SentenceTransformer

        # ``owned``: weights written by ``tiergate train`` into an artifact, which carries them.
        self.artifact_files = Path(model).resolve() if owned else None
        self._spec = str(self.artifact_files or model)
        self._model: Any = SentenceTransformer(path, device=device)
        if max_seq_length is not None:
            self._model.max_seq_length = max_seq_length
        self._batch_size = batch_size
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ValueError(f"{model}: the model does not state its embedding dimension")
        self._dimension = int(dimension)

    @classmethod
    def from_transformer(
        cls, transformer: Any, name: str, *, batch_size: int = 64
    ) -> SentenceTransformerEncoder:
        """Wrap an already-loaded SentenceTransformer (e.g. one fine-tuned in memory)."""
        encoder = cls.__new__(cls)
        encoder.artifact_files = None
        encoder._spec = name
        encoder._model = transformer
        encoder._batch_size = batch_size
        encoder._dimension = int(transformer.get_embedding_dimension())
        return encoder

    @property
    def name(self) -> str:
        return self._spec

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def transformer(self) -> Any:
        """The underlying SentenceTransformer, for distillation or fine-tuning."""
        return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return l2_normalise(vectors.reshape(len(texts), self._dimension))
