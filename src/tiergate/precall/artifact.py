"""A trained router on disk: JSON metadata and two numpy arrays, nothing pickled.

Layout of an artifact directory::

    router.json    format_version, encoder, the tiers, the target, the cue scale, every fitted
                   variant with its threshold and calibration figures, the chosen variant
    weights.npy    (variants, folds, features) logistic weights: per variant, one row per fold
    bias.npy       (variants, folds)

Loading needs numpy only; the encoder named in ``router.json`` is rebuilt by the caller (or
passed in), so a gateway that already holds an encoder shares it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tiergate import __version__
from tiergate.errors import TiergateError
from tiergate.precall.features import CueScale
from tiergate.precall.model import FoldedLogistic
from tiergate.precall.policy import Variant
from tiergate.precall.threshold import Certificate

FORMAT_VERSION = 1
METADATA_FILE = "router.json"


class RouterArtifactError(TiergateError, ValueError):
    """A router directory that is missing, damaged or of an unknown format."""


@dataclass(frozen=True, slots=True)
class VariantFit:
    """One policy fitted on the training data: its scorer, threshold and calibration figures.

    Each variant has its own scorer, trained to predict whether that policy's cheap side
    serves a good answer (for a cascade: the agreed cheap answer, or the escalated one).
    """

    variant: Variant
    model: FoldedLogistic
    certificate: Certificate


@dataclass(frozen=True, slots=True)
class RouterArtifact:
    encoder: str
    cheap: str
    strong: str
    quality: float
    confidence: float
    scale: CueScale
    fits: tuple[VariantFit, ...]
    chosen: str
    trained_on: int
    data_hash: str

    def fit(self, key: str | None = None) -> VariantFit:
        """The fitted variant named ``key`` (default: the chosen one)."""
        wanted = key or self.chosen
        for fit in self.fits:
            if fit.variant.key == wanted:
                return fit
        raise RouterArtifactError(f"no fitted variant {wanted!r}")

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "weights.npy", np.stack([f.model.weights for f in self.fits]))
        np.save(directory / "bias.npy", np.stack([f.model.bias for f in self.fits]))
        metadata = {
            "format_version": FORMAT_VERSION,
            "tiergate_version": __version__,
            "encoder": self.encoder,
            "cheap": self.cheap,
            "strong": self.strong,
            "quality": self.quality,
            "confidence": self.confidence,
            "cue_scale": {"mean": list(self.scale.mean), "spread": list(self.scale.spread)},
            "chosen": self.chosen,
            "trained_on": self.trained_on,
            "data_hash": self.data_hash,
            "variants": [
                {"key": f.variant.key, "second": f.variant.second, **_certificate_json(f)}
                for f in self.fits
            ],
        }
        (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> RouterArtifact:
        path = directory / METADATA_FILE
        if not path.is_file():
            raise RouterArtifactError(f"{directory}: not a router ({METADATA_FILE} missing)")
        try:
            metadata = json.loads(path.read_text())
            if metadata.get("format_version") != FORMAT_VERSION:
                raise RouterArtifactError(
                    f"{path}: format_version {metadata.get('format_version')!r}, "
                    f"this tiergate reads {FORMAT_VERSION}"
                )
            weights = np.load(directory / "weights.npy")
            bias = np.load(directory / "bias.npy")
            cheap, strong = str(metadata["cheap"]), str(metadata["strong"])
            entries = metadata["variants"]
            if (
                weights.ndim != 3
                or weights.shape[0] != len(entries)
                or bias.shape != weights.shape[:2]
            ):
                raise RouterArtifactError(
                    f"{directory}: weights {weights.shape} and bias {bias.shape} do not fit "
                    f"{len(entries)} variants"
                )
            fits = tuple(
                VariantFit(
                    Variant(cheap, strong, entry["second"]),
                    FoldedLogistic(np.asarray(w, np.float64), np.asarray(b, np.float64)),
                    _certificate(entry["certificate"]),
                )
                for entry, w, b in zip(entries, weights, bias, strict=True)
            )
            artifact = cls(
                encoder=str(metadata["encoder"]),
                cheap=cheap,
                strong=strong,
                quality=float(metadata["quality"]),
                confidence=float(metadata["confidence"]),
                scale=CueScale(
                    tuple(metadata["cue_scale"]["mean"]), tuple(metadata["cue_scale"]["spread"])
                ),
                fits=fits,
                chosen=str(metadata["chosen"]),
                trained_on=int(metadata["trained_on"]),
                data_hash=str(metadata["data_hash"]),
            )
        except RouterArtifactError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RouterArtifactError(f"{directory}: damaged router ({error})") from None
        artifact.fit()  # the chosen variant must exist
        return artifact


def _certificate_json(fit: VariantFit) -> dict[str, Any]:
    certificate = asdict(fit.certificate)
    # JSON has no infinity; a threshold nothing reaches is written as null.
    if certificate["threshold"] == float("inf"):
        certificate["threshold"] = None
    return {"certificate": certificate}


def _certificate(raw: Mapping[str, Any]) -> Certificate:
    values = dict(raw)
    if values["threshold"] is None:
        values["threshold"] = float("inf")
    return Certificate(**values)
