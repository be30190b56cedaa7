"""The local tier's model: sentence embeddings, a linear classifier and nearest neighbours.

Usage::

    model = LocalModel.train(load_dataset("train.csv"))          # default encoder: MiniLM
    [prediction] = model.predict(["I lost my card"])               # LocalPrediction
    model.add_examples(["card gone"], ["lost_or_stolen_card"], provenance="claude-sonnet-4-6")
    model.retrain()
    model.save("artifacts/local"); model = LocalModel.load("artifacts/local")

For calibration, :meth:`LocalModel.cross_fit` gives out-of-fold confidence features for the
training data itself, so a calibrator can be fitted without spending a separate split.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiergate.classifier.artifact import (
    ArtifactContents,
    ArtifactError,
    data_hash,
    read_artifact,
    write_artifact,
)
from tiergate.classifier.features import confidence_features, view_features
from tiergate.classifier.lexical import LexicalModel, combine, fit_lexical
from tiergate.classifier.linear import DEFAULT_C, LinearModel, fit_linear
from tiergate.classifier.neighbours import nearest
from tiergate.classifier.prediction import LocalPrediction, Neighbour
from tiergate.datasets import GOLD, Example
from tiergate.encoders import DEFAULT_ENCODER, Encoder, load_encoder
from tiergate.encoders.portable import portable_spec

DEFAULT_K = 10


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """Vectorised predictions: label ids, probabilities, neighbours and feature columns."""

    label_ids: NDArray[np.intp]
    probabilities: NDArray[np.float64]
    neighbour_indices: NDArray[np.intp]
    neighbour_similarities: NDArray[np.float32]
    features: dict[str, NDArray[np.float64]]


@dataclass(frozen=True, slots=True)
class CrossFit:
    """Out-of-fold predictions on the training examples, for fitting calibrators."""

    labels: list[str]  # predicted
    gold: list[str]
    correct: NDArray[np.bool_]
    features: dict[str, NDArray[np.float64]]

    def to_arrays(self) -> dict[str, NDArray[Any]]:
        """Plain arrays for ``crossfit.npz`` (strings as unicode arrays: loads without pickle)."""
        arrays: dict[str, NDArray[Any]] = {
            "labels": np.array(self.labels, dtype=str),
            "gold": np.array(self.gold, dtype=str),
            "correct": self.correct.astype(bool),
        }
        arrays.update({f"feature:{name}": column for name, column in self.features.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]]) -> CrossFit:
        return cls(
            labels=[str(label) for label in arrays["labels"].tolist()],
            gold=[str(label) for label in arrays["gold"].tolist()],
            correct=np.asarray(arrays["correct"], dtype=bool),
            features={
                name.removeprefix("feature:"): np.asarray(column, dtype=np.float64)
                for name, column in arrays.items()
                if name.startswith("feature:")
            },
        )

    def rows(self, rows: NDArray[np.intp]) -> CrossFit:
        return CrossFit(
            labels=[self.labels[i] for i in rows.tolist()],
            gold=[self.gold[i] for i in rows.tolist()],
            correct=self.correct[rows],
            features={name: column[rows] for name, column in self.features.items()},
        )

    @staticmethod
    def concatenate(parts: Sequence[CrossFit]) -> CrossFit:
        return CrossFit(
            labels=[label for part in parts for label in part.labels],
            gold=[label for part in parts for label in part.gold],
            correct=np.concatenate([part.correct for part in parts]),
            features={
                name: np.concatenate([part.features[name] for part in parts])
                for name in parts[0].features
            },
        )


class LocalModel:
    def __init__(
        self,
        encoder: Encoder,
        examples: list[Example],
        vectors: NDArray[np.float32],
        labels: tuple[str, ...],
        linear: LinearModel,
        *,
        k: int = DEFAULT_K,
        c: float = DEFAULT_C,
        created: float | None = None,
        stored_cross_fit: CrossFit | None = None,
        training: Mapping[str, Any] | None = None,
        lexical: LexicalModel | None = None,
    ) -> None:
        self._encoder = encoder
        self._examples = examples
        self._vectors = vectors
        self._columns: NDArray[np.float32] | None = None  # vectors.T, contiguous, built lazily
        self._labels = labels
        self._label_index = {label: i for i, label in enumerate(labels)}
        self._example_label_ids = np.array(
            [self._label_index[e.label] for e in examples], dtype=np.intp
        )
        self._linear = linear
        # The lexical view (``classifier.lexical``), when the route asked for one.
        self._lexical = lexical
        self._k = k
        self._c = c
        self._created = time.time() if created is None else created
        self._trained_on = len(examples)
        # Out-of-fold scores of the first examples, computed when the model was built because
        # recomputing them would mean fine-tuning the encoder again (see cross_fit).
        self._stored_cross_fit = stored_cross_fit
        self._training = dict(training or {})

    # -- building -------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        examples: Sequence[Example],
        encoder: Encoder | str = DEFAULT_ENCODER,
        *,
        k: int = DEFAULT_K,
        c: float = DEFAULT_C,
        vectors: NDArray[np.float32] | None = None,
        lexical: bool = False,
    ) -> LocalModel:
        """Encode ``examples`` (unless ``vectors`` are given) and fit the classifier.

        ``encoder`` is an :class:`Encoder` or a spec for :func:`tiergate.encoders.load_encoder`.
        ``lexical``: also fit the lexical view (word and character n-grams) and answer with
        both views' probabilities multiplied (``classifier.lexical``).
        """
        if not examples:
            raise ValueError("cannot train on no examples")
        resolved = load_encoder(encoder) if isinstance(encoder, str) else encoder
        example_list = list(examples)
        if vectors is None:
            vectors = resolved.encode([e.text for e in example_list])
        if vectors.shape != (len(example_list), resolved.dimension):
            raise ValueError(f"vectors must have shape ({len(example_list)}, {resolved.dimension})")
        labels = tuple(sorted({e.label for e in example_list}))
        index = {label: i for i, label in enumerate(labels)}
        label_ids = np.array([index[e.label] for e in example_list], dtype=np.intp)
        linear = fit_linear(vectors, label_ids, len(labels), c)
        lexical_view = (
            fit_lexical([e.text for e in example_list], label_ids, len(labels)) if lexical else None
        )
        return cls(resolved, example_list, vectors, labels, linear, k=k, c=c, lexical=lexical_view)

    def with_encoder(self, encoder: Encoder) -> LocalModel:
        """The same model answering through another encoder of the same vectors.

        For serving: ``model.with_encoder(MicroBatcher(model.encoder))`` batches the encoder
        calls of concurrent ``predict`` calls. The classifier, the neighbour pool and the
        stored cross-fit are shared, not copied.
        """
        if encoder.dimension != self._encoder.dimension:
            raise ValueError(
                f"encoder {encoder.name} gives {encoder.dimension}-d vectors, the model "
                f"was trained on {self._encoder.dimension}-d ones"
            )
        twin = LocalModel(
            encoder,
            self._examples,
            self._vectors,
            self._labels,
            self._linear,
            k=self._k,
            c=self._c,
            created=self._created,
            stored_cross_fit=self._stored_cross_fit,
            training=self._training,
            lexical=self._lexical,
        )
        twin._trained_on = self._trained_on
        return twin

    def add_examples(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        provenance: str | Sequence[str] = GOLD,
    ) -> int:
        """Add labelled examples (e.g. answers of a higher tier) and return how many.

        They join the neighbour pool (and so the few-shot examples and the vote) at once; the
        linear classifier learns them, and any new label, at the next :meth:`retrain`.
        """
        if len(texts) != len(labels):
            raise ValueError("texts and labels must have the same length")
        provenances = [provenance] * len(texts) if isinstance(provenance, str) else provenance
        if len(provenances) != len(texts):
            raise ValueError("one provenance per text, or a single one for all")
        if not texts:
            return 0
        new_vectors = self._encoder.encode(list(texts))
        new_examples = [
            Example(text, label, source)
            for text, label, source in zip(texts, labels, provenances, strict=True)
        ]
        for label in labels:
            if label not in self._label_index:
                self._label_index[label] = len(self._labels)
                self._labels = (*self._labels, label)
                # A new label's column stays unreachable for the linear model until retrain.
                self._linear = self._linear.with_unreachable_label()
                if self._lexical is not None:
                    self._lexical = self._lexical.with_unreachable_label()
        self._examples.extend(new_examples)
        self._vectors = np.vstack([self._vectors, new_vectors])
        self._example_label_ids = np.append(
            self._example_label_ids, [self._label_index[label] for label in labels]
        ).astype(np.intp)
        return len(new_examples)

    def retrain(self) -> None:
        """Refit the linear classifier on every example, including the added ones."""
        retrained = LocalModel.train(
            self._examples,
            self._encoder,
            k=self._k,
            c=self._c,
            vectors=self._vectors,
            lexical=self._lexical is not None,
        )
        self._labels = retrained._labels
        self._label_index = retrained._label_index
        self._example_label_ids = retrained._example_label_ids
        self._linear = retrained._linear
        self._lexical = retrained._lexical
        self._created = retrained._created
        self._trained_on = len(self._examples)

    # -- answering ------------------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def encoder(self) -> Encoder:
        return self._encoder

    @property
    def examples(self) -> list[Example]:
        """The labelled pool, in order, including examples added since training."""
        return list(self._examples)

    def predict(self, texts: Sequence[str], *, k: int | None = None) -> list[LocalPrediction]:
        """One :class:`LocalPrediction` per text, with up to ``k`` neighbours each."""
        if not texts:
            return []
        batch = self.score_vectors(self._encoder.encode(list(texts)), k=k, texts=texts)
        predictions = []
        for row, label_id in enumerate(batch.label_ids.tolist()):
            neighbours = tuple(
                Neighbour(
                    text=self._examples[i].text,
                    label=self._examples[i].label,
                    similarity=float(similarity),
                    provenance=self._examples[i].provenance,
                )
                for i, similarity in zip(
                    batch.neighbour_indices[row].tolist(),
                    batch.neighbour_similarities[row].tolist(),
                    strict=True,
                )
            )
            predictions.append(
                LocalPrediction(
                    label=self._labels[label_id],
                    probability=float(batch.probabilities[row, label_id]),
                    margin=float(batch.features["margin"][row]),
                    vote_share=float(batch.features["vote_share"][row]),
                    nearest_similarity=float(batch.features["nearest_similarity"][row]),
                    neighbours=neighbours,
                    probabilities=batch.probabilities[row],
                    features={name: float(column[row]) for name, column in batch.features.items()},
                )
            )
        return predictions

    def features(self, texts: Sequence[str]) -> tuple[list[str], dict[str, NDArray[np.float64]]]:
        """Predicted labels and calibration feature columns for ``texts``."""
        batch = self.score_vectors(self._encoder.encode(list(texts)), texts=texts)
        return [self._labels[i] for i in batch.label_ids.tolist()], batch.features

    @property
    def lexical(self) -> bool:
        """Whether the model has a lexical view (then scoring needs the texts too)."""
        return self._lexical is not None

    def score_vectors(
        self,
        vectors: NDArray[np.float32],
        *,
        k: int | None = None,
        texts: Sequence[str] | None = None,
    ) -> ScoredBatch:
        """Score already-encoded texts (for benchmarks that reuse embeddings).

        A model with a lexical view needs the ``texts`` the vectors encode.
        """
        if self._columns is None or self._columns.shape[1] != self._vectors.shape[0]:
            self._columns = np.ascontiguousarray(self._vectors.T)
        return _score(
            self._linear,
            self._vectors,
            self._example_label_ids,
            vectors,
            k or self._k,
            columns=self._columns,
            lexical=_lexical_scores(self._lexical, texts, len(vectors)),
        )

    def attach_cross_fit(self, cross_fit: CrossFit, training: Mapping[str, Any]) -> None:
        """Record out-of-fold scores computed when the encoder was built (fine-tuning).

        ``cross_fit`` must cover the model's examples in order; ``training`` describes how it
        was computed (it is saved in the artifact's metadata).
        """
        if len(cross_fit.gold) != len(self._examples):
            raise ValueError("the cross-fit must cover every example the model holds")
        self._stored_cross_fit = cross_fit
        self._training = dict(training)

    def attach_training(self, training: Mapping[str, Any]) -> None:
        """Record how the model was built (saved in the artifact's metadata)."""
        self._training = dict(training)

    @property
    def training(self) -> dict[str, Any]:
        """How the model and its encoder were built (settings, fine-tuning, times)."""
        return dict(self._training)

    def cross_fit(self, *, folds: int = 5, seed: int = 0) -> CrossFit:
        """Out-of-fold features for every example: each fold scored by a model not trained on it.

        Folds are stratified by label. The result calibrates a model trained on all the data,
        whose errors are, if anything, rarer than those of the fold models.

        Why it stays honest with a fine-tuned encoder: fine-tuning teaches the encoder the
        training labels, so the served encoder's vectors of a training example are not out of
        sample even for a classifier that never saw the example. Such a model carries scores
        computed when it was built (``attach_cross_fit``, see ``classifier.training``): the
        data were split into ``finetune.folds`` folds, and each fold was scored by an encoder
        fine-tuned *and* a classifier fitted on the other folds only. Those folds were fixed
        at train time; re-running them here would mean fine-tuning again, so for those
        examples ``folds`` and ``seed`` are not used. Examples added since (``add_examples``)
        were never seen by the encoder; they are scored by the classifier-only cross-fit
        below with ``folds`` and ``seed``.
        """
        stored = self._stored_cross_fit
        if stored is None:
            if (self._training.get("settings") or {}).get("finetune"):
                raise ValueError(
                    "this model's encoder was fine-tuned on its examples without a cross-fit "
                    "(build_local_model(cross_fit=False)): out-of-fold scores would not be out "
                    "of sample; calibrate it on held-out data instead"
                )
            return self._classifier_cross_fit(np.arange(len(self._examples)), folds, seed)
        covered = len(stored.gold)
        if covered == len(self._examples):
            return stored
        added = self._classifier_cross_fit(np.arange(covered, len(self._examples)), folds, seed)
        return CrossFit.concatenate([stored, added])

    def _classifier_cross_fit(self, wanted: NDArray[np.intp], folds: int, seed: int) -> CrossFit:
        """Classifier-only K-fold over every example; returns the rows in ``wanted``."""
        from sklearn.model_selection import StratifiedKFold

        label_ids = self._example_label_ids
        n_splits = max(2, min(folds, int(np.bincount(label_ids).max())))
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        predicted = np.empty(len(label_ids), dtype=np.intp)
        columns: dict[str, NDArray[np.float64]] = {}
        wanted_mask = np.zeros(len(label_ids), dtype=bool)
        wanted_mask[wanted] = True
        # sklearn warns when a label has fewer members than folds; those rows are still scored.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            splits = list(splitter.split(self._vectors, label_ids))
        texts = [example.text for example in self._examples]
        for train_rows, all_held_rows in splits:
            held_rows = all_held_rows[wanted_mask[all_held_rows]]
            if held_rows.size == 0:
                continue
            linear = fit_linear(
                self._vectors[train_rows], label_ids[train_rows], len(self._labels), self._c
            )
            lexical = None
            if self._lexical is not None:
                fold_view = fit_lexical(
                    [texts[i] for i in train_rows.tolist()],
                    label_ids[train_rows],
                    len(self._labels),
                )
                lexical = fold_view.probabilities([texts[i] for i in held_rows.tolist()])
            batch = _score(
                linear,
                self._vectors[train_rows],
                label_ids[train_rows],
                self._vectors[held_rows],
                self._k,
                lexical=lexical,
            )
            predicted[held_rows] = batch.label_ids
            for name, values in batch.features.items():
                columns.setdefault(name, np.empty(len(label_ids)))[held_rows] = values
        return CrossFit(
            labels=[self._labels[i] for i in predicted[wanted].tolist()],
            gold=[self._examples[i].label for i in wanted.tolist()],
            correct=predicted[wanted] == label_ids[wanted],
            features={name: column[wanted] for name, column in columns.items()},
        )

    # -- persistence ----------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        from tiergate import __version__

        path.mkdir(parents=True, exist_ok=True)
        stored = self._stored_cross_fit
        write_artifact(
            path,
            ArtifactContents(
                metadata={
                    "tiergate_version": __version__,
                    "encoder": portable_spec(self._encoder, path),
                    "training": self._training,
                    "dimension": self._encoder.dimension,
                    "labels": list(self._labels),
                    "examples": len(self._examples),
                    "trained_on_examples": self._trained_on,
                    "provenance_counts": _count(e.provenance for e in self._examples),
                    "data_hash": data_hash(self._examples),
                    "k": self._k,
                    "c": self._c,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._created)),
                    "created_unix": self._created,
                },
                weights=self._linear.weights,
                bias=self._linear.bias,
                vectors=self._vectors,
                examples=self._examples,
                cross_fit=None if stored is None else stored.to_arrays(),
                lexical=None if self._lexical is None else self._lexical.to_arrays(),
            ),
        )
        return path

    @classmethod
    def load(cls, directory: str | Path, *, encoder: Encoder | None = None) -> LocalModel:
        """Load an artifact; its encoder is rebuilt from the saved spec unless one is given."""
        contents = read_artifact(Path(directory))
        metadata = contents.metadata
        resolved = encoder or load_encoder(
            str(metadata["encoder"]), relative_to=Path(directory).resolve()
        )
        if resolved.dimension != int(metadata["dimension"]):
            raise ValueError(
                f"{directory}: saved with a {metadata['dimension']}-d encoder "
                f"({metadata['encoder']}), given a {resolved.dimension}-d one ({resolved.name})"
            )
        model = cls(
            resolved,
            contents.examples,
            contents.vectors,
            tuple(metadata["labels"]),
            LinearModel(contents.weights, contents.bias),
            k=int(metadata["k"]),
            c=float(metadata["c"]),
            created=float(metadata["created_unix"]),
            stored_cross_fit=(
                None if contents.cross_fit is None else CrossFit.from_arrays(contents.cross_fit)
            ),
            training=metadata.get("training"),
            lexical=_lexical_view(Path(directory), contents.lexical),
        )
        model._trained_on = int(metadata["trained_on_examples"])
        return model


def _score(
    linear: LinearModel,
    index_vectors: NDArray[np.float32],
    index_label_ids: NDArray[np.intp],
    queries: NDArray[np.float32],
    k: int,
    *,
    columns: NDArray[np.float32] | None = None,
    lexical: NDArray[np.float64] | None = None,
) -> ScoredBatch:
    """Predictions from the linear model (times the lexical view's ``lexical`` probabilities
    of the same queries, when given) and the neighbours."""
    linear_probabilities = linear.probabilities(queries)
    probabilities = (
        linear_probabilities if lexical is None else combine(linear_probabilities, lexical)
    )
    found = nearest(index_vectors, queries, k, columns=columns)
    label_ids, features = confidence_features(
        probabilities, index_label_ids[found.indices], found.similarities
    )
    if lexical is not None:
        features.update(view_features(label_ids, linear_probabilities, lexical))
    return ScoredBatch(label_ids, probabilities, found.indices, found.similarities, features)


def _lexical_view(
    directory: Path, arrays: Mapping[str, NDArray[Any]] | None
) -> LexicalModel | None:
    if arrays is None:
        return None
    try:
        return LexicalModel.from_arrays(arrays)
    except (KeyError, ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{directory}: damaged lexical view ({error})") from None


def _lexical_scores(
    view: LexicalModel | None, texts: Sequence[str] | None, count: int
) -> NDArray[np.float64] | None:
    if view is None:
        return None
    if texts is None:
        raise ValueError("this model has a lexical view: score_vectors needs the texts too")
    if len(texts) != count:
        raise ValueError(f"{len(texts)} texts for {count} vectors")
    return view.probabilities(list(texts))


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
