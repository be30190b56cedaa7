"""What the router sees of a prompt: an embedding of its focus and a few format cues.

The focus is the end of the prompt. Requests that share a template (a system preamble, the same
few-shot examples) differ mostly in their last part, where the question is: on RouterBench every
ARC prompt opens with the same five solved examples, so an embedding of the opening (MiniLM
reads 256 word pieces) is the same vector for every prompt and predicts nothing. The focus is the
last paragraph, extended backwards by whole paragraphs while it is shorter than ``min_chars``,
and cut to its last ``max_chars``.

Format cues: log length of the prompt and of the focus, and how many lettered options
(``A) ...``) the focus lists. They are standardised with the training data's mean and spread,
kept in the artifact.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tiergate.encoders.base import Encoder

FOCUS_MIN_CHARS = 200
FOCUS_MAX_CHARS = 2000
FORMAT_FEATURES = ("log_prompt_chars", "log_focus_chars", "lettered_options")
_PARAGRAPH = re.compile(r"\n\s*\n")
_OPTION_LINE = re.compile(r"^\s*\(?[A-Z][).:]\s", re.MULTILINE)


def focus_text(
    prompt: str, *, min_chars: int = FOCUS_MIN_CHARS, max_chars: int = FOCUS_MAX_CHARS
) -> str:
    """The end of the prompt the router embeds (see the module docstring)."""
    paragraphs = [p for p in _PARAGRAPH.split(prompt.strip()) if p.strip()]
    if not paragraphs:
        return ""
    taken = [paragraphs.pop()]
    while paragraphs and sum(len(p) for p in taken) < min_chars:
        taken.insert(0, paragraphs.pop())
    return "\n\n".join(taken)[-max_chars:]


def format_cues(prompt: str, focus: str) -> list[float]:
    return [
        math.log1p(len(prompt)),
        math.log1p(len(focus)),
        float(len(_OPTION_LINE.findall(focus))),
    ]


@dataclass(frozen=True, slots=True)
class CueScale:
    """Mean and spread of the format cues on the training prompts."""

    mean: tuple[float, ...]
    spread: tuple[float, ...]

    @classmethod
    def fit(cls, cues: NDArray[np.float64]) -> CueScale:
        spread = cues.std(axis=0)
        return cls(
            mean=tuple(float(v) for v in cues.mean(axis=0)),
            spread=tuple(float(v) if v > 0 else 1.0 for v in spread),
        )

    def apply(self, cues: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray((cues - np.array(self.mean)) / np.array(self.spread))


def cue_matrix(prompts: Sequence[str], focuses: Sequence[str]) -> NDArray[np.float64]:
    return np.array(
        [format_cues(p, f) for p, f in zip(prompts, focuses, strict=True)], dtype=np.float64
    ).reshape(len(prompts), len(FORMAT_FEATURES))


def embed(encoder: Encoder, texts: Sequence[str], cache: Path | None = None) -> NDArray[np.float32]:
    """Encode ``texts``; with ``cache``, reuse a saved array for the same encoder and texts.

    Evaluating on RouterBench embeds 2,723 prompts (minutes on two cores); the cache makes a
    second run with the same data and encoder instant. The key covers every text, in order.
    """
    if cache is None:
        return encoder.encode(list(texts))
    digest = hashlib.sha256(encoder.name.encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode()).digest())
    path = cache / f"embeddings-{digest.hexdigest()[:24]}.npy"
    if path.is_file():
        cached: NDArray[np.float32] = np.load(path)
        if cached.shape == (len(texts), encoder.dimension):
            return cached
    vectors = encoder.encode(list(texts))
    cache.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npy")
    np.save(temporary, vectors)
    temporary.replace(path)
    return vectors


def feature_matrix(
    encoder: Encoder,
    prompts: Sequence[str],
    scale: CueScale | None,
    cache: Path | None = None,
) -> tuple[NDArray[np.float64], CueScale]:
    """Embedding of each focus beside the standardised cues; fits the scale when given none."""
    focuses = [focus_text(p) for p in prompts]
    vectors = embed(encoder, focuses, cache).astype(np.float64)
    cues = cue_matrix(prompts, focuses)
    fitted = scale or CueScale.fit(cues)
    return np.hstack([vectors, fitted.apply(cues)]), fitted
