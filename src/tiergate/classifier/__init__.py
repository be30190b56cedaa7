"""The local tier's model: embeddings + calibrated-ready linear classifier + nearest neighbours.

- :class:`LocalModel`: ``train(examples, encoder=...)``, ``predict(texts)``,
  ``add_examples(texts, labels, provenance)``, ``retrain()``, ``cross_fit()``, ``save(dir)``,
  ``load(dir)``, ``labels``.
- :class:`LocalPrediction`: label, probability, margin, vote_share, nearest_similarity,
  neighbours (few-shot examples), probabilities.
- :data:`LOCAL_FEATURES`: the feature columns ``LocalModel.features`` / ``cross_fit`` produce
  for a :class:`tiergate.calibration.Calibrator`; a model with the lexical view
  (``local.lexical``) adds :data:`LEXICAL_FEATURES`.
"""

from tiergate.classifier.artifact import FORMAT_VERSION, ArtifactError
from tiergate.classifier.features import LEXICAL_FEATURES, LOCAL_FEATURES
from tiergate.classifier.model import CrossFit, LocalModel, ScoredBatch
from tiergate.classifier.prediction import LocalPrediction, Neighbour

__all__ = [
    "FORMAT_VERSION",
    "LEXICAL_FEATURES",
    "LOCAL_FEATURES",
    "ArtifactError",
    "CrossFit",
    "LocalModel",
    "LocalPrediction",
    "Neighbour",
    "ScoredBatch",
]
