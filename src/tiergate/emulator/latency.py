"""How long the emulated model takes: the price book's latency profile, scaled.

``realistic`` is scale 1 (each model's ``ttft_s`` and ``output_tokens_per_s``), ``zero`` is
scale 0 (no waiting at all), and a number scales realistic (``0.1`` is ten times faster).
"""

from __future__ import annotations

from dataclasses import dataclass

from tiergate.core.prices import ModelPrice


def parse_latency(text: str) -> float:
    """``realistic`` -> 1.0, ``zero`` -> 0.0, else a non-negative number."""
    named = {"realistic": 1.0, "zero": 0.0}
    if text in named:
        return named[text]
    try:
        scale = float(text)
    except ValueError:
        raise ValueError(f"latency must be realistic, zero or a number, got {text!r}") from None
    if not scale >= 0.0 or scale == float("inf"):
        raise ValueError(f"latency scale must be a finite number >= 0, got {text!r}")
    return scale


@dataclass(frozen=True, slots=True)
class Pacing:
    scale: float

    @property
    def zero(self) -> bool:
        return self.scale == 0.0

    def first_token_s(self, model: ModelPrice) -> float:
        return self.scale * model.latency.ttft_s

    def per_token_s(self, model: ModelPrice) -> float:
        speed = model.latency.output_tokens_per_s
        return self.scale / speed if speed > 0 else 0.0

    def whole_answer_s(self, model: ModelPrice, output_tokens: int) -> float:
        return self.first_token_s(model) + output_tokens * self.per_token_s(model)
