"""The encoder seam: text in, unit-length float32 vectors out.

Anything with ``name``, ``dimension`` and ``encode`` is an encoder; the classifier needs nothing
else. ``name`` is a spec that :func:`tiergate.encoders.load_encoder` turns back into the same
encoder, which is how a saved model finds its encoder again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]


@runtime_checkable
class Encoder(Protocol):
    @property
    def name(self) -> str:
        """A spec that ``load_encoder`` accepts to rebuild this encoder."""
        ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Return an array of shape (len(texts), dimension), float32, each row L2-normalised."""
        ...


@runtime_checkable
class StepwiseEncoder(Protocol):
    """An encoder that can say how far a long ``encode`` has got (the ONNX encoder does)."""

    def encode_stepwise(self, texts: Sequence[str], done: Callable[[int], None]) -> Vectors:
        """``encode(texts)``, calling ``done(n)`` as each ``n`` more texts are encoded."""
        ...


def encode_reporting(
    encoder: Encoder, texts: Sequence[str], done: Callable[[int], None]
) -> Vectors:
    """``encoder.encode(texts)`` in one call (the vectors do not depend on how it reports:
    an int8 encoder's batches are part of its arithmetic), with ``done`` called batch by batch
    where the encoder can tell, else once at the end."""
    if isinstance(encoder, StepwiseEncoder):
        return encoder.encode_stepwise(texts, done)
    vectors = encoder.encode(texts)
    done(len(texts))
    return vectors


def l2_normalise(vectors: NDArray[np.floating]) -> Vectors:
    """Scale each row to unit length; an all-zero row (no known tokens) stays zero."""
    as_float = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(as_float, axis=1, keepdims=True)
    normalised: Vectors = np.divide(as_float, norms, out=np.zeros_like(as_float), where=norms > 0)
    return normalised
