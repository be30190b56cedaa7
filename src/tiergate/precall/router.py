"""The trained router at serve time: ``decide(prompt)`` from a saved artifact, numpy only.

Per request it encodes the prompt's focus once (the encoder is the only real cost: a few
milliseconds with MiniLM, less with a static or ONNX encoder), takes one dot product with the
weights of the prompt's hash fold, and compares the score with the chosen variant's threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tiergate.encoders.base import Encoder
from tiergate.precall.artifact import RouterArtifact, RouterArtifactError
from tiergate.precall.base import CHEAP, STRONG, Decision
from tiergate.precall.features import feature_matrix
from tiergate.precall.policy import Variant


class LearnedRouter:
    """A :class:`~tiergate.precall.base.PrecallRouter` built from a trained artifact.

    ``variant`` picks one of the artifact's fitted variants by key (default: the chosen one).
    """

    def __init__(self, artifact: RouterArtifact, encoder: Encoder, variant: str | None = None):
        if encoder.name != artifact.encoder:
            raise RouterArtifactError(
                f"the router was trained with encoder {artifact.encoder!r}, got {encoder.name!r}"
            )
        self.artifact = artifact
        self._encoder = encoder
        self.fit = artifact.fit(variant)
        self.variant: Variant = self.fit.variant
        self.threshold = self.fit.certificate.threshold

    @classmethod
    def load(
        cls, directory: Path, encoder: Encoder | None = None, variant: str | None = None
    ) -> LearnedRouter:
        """Open a saved router; without ``encoder`` the one it was trained with is loaded."""
        artifact = RouterArtifact.load(directory)
        if encoder is None:
            from tiergate.encoders import load_encoder

            encoder = load_encoder(artifact.encoder)
        return cls(artifact, encoder, variant)

    def scores(self, prompts: Sequence[str]) -> list[float]:
        """The estimate, per prompt, that the cheap model's answer is good enough."""
        if not prompts:
            return []
        return [float(s) for s in self.fit.model.scores(self.features(prompts), prompts)]

    def features(self, prompts: Sequence[str]) -> NDArray[np.float64]:
        features, _ = feature_matrix(self._encoder, prompts, self.artifact.scale)
        return features

    def decide(self, prompt: str) -> Decision:
        return self.decide_many([prompt])[0]

    def decide_many(self, prompts: Sequence[str]) -> list[Decision]:
        return [
            Decision(
                tier=CHEAP if score >= self.threshold else STRONG,
                score=score,
                threshold=self.threshold,
                second_opinion=self.variant.second,
            )
            for score in self.scores(prompts)
        ]
