"""Encoders that belong to an artifact travel with it: saved under ``encoder/``, named relatively.

An encoder built at train time (an ONNX export, fine-tuned weights) lives in the artifact
directory, and the artifact's metadata names it by a path relative to that directory
(``onnx:encoder`` or ``./encoder``), so the artifact loads from any working directory and can be
copied or moved whole. Encoders that are not the artifact's own (the bundled MiniLM, a user's
model name or path) keep their spec unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tiergate.encoders.base import Encoder
from tiergate.encoders.onnx_encoder import ONNX_PREFIX, OnnxEncoder

ENCODER_DIR = "encoder"
RELATIVE_PREFIXES = ("./", "../")


def artifact_files(encoder: Encoder) -> Path | None:
    """The directory of files an encoder needs that belong to its artifact, if any."""
    files = getattr(encoder, "artifact_files", None)
    return files if isinstance(files, Path) else None


def portable_spec(encoder: Encoder, artifact: Path) -> str:
    """The spec to record in ``artifact``'s metadata, copying the encoder's files in if needed."""
    files = artifact_files(encoder)
    if files is None:
        return encoder.name
    artifact = artifact.resolve()
    files = files.resolve()
    if not files.is_relative_to(artifact):
        target = artifact / ENCODER_DIR
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(files, target)
        files = target
    relative = files.relative_to(artifact).as_posix()
    if isinstance(encoder, OnnxEncoder):
        return ONNX_PREFIX + relative
    return "./" + relative
