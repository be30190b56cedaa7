"""Confidence features and linear+neighbour ensembles for the local tier, on fixed vectors.

Lever 3 of issue 9: does the local tier accept more at 1% when the calibrator sees more of what
the linear and neighbour views say? Variants (combinable with ``+``):

- ``base``: the served features (``classifier.features.LOCAL_FEATURES``);
- ``plus``: adds the similarity margin (closest example of the predicted label minus closest of
  any other), agreement of the linear and kNN argmax, the kNN and linear probabilities;
- ``ens``: predicts with the mean of the linear and similarity-weighted kNN probabilities;
- ``k20``: 20 neighbours instead of 10; ``inter``: a log-odds x vote interaction;
- ``prec``: how often the predicted label was right out of fold (smoothed; leave-one-out on
  the calibration rows).

BANKING77 calibrates out-of-fold (5 folds) on train; CLINC150 on val + out-of-scope (holdout).
The vectors come from one encoder, cached (``--cache``). Run::

    .venv/bin/python bench/local_features.py --encoder onnx:DIR --cache /tmp/emb
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from local_budgets import DATA, cached_encode
from tiergate.calibration import Calibrator, fit_threshold
from tiergate.classifier.linear import fit_linear
from tiergate.classifier.neighbours import nearest
from tiergate.datasets import load_dataset
from tiergate.encoders import load_encoder

K = 20
PRIOR_WEIGHT = 5.0  # pseudo-predictions at the overall accuracy, per label
Floats = NDArray[np.float64]
Ints = NDArray[np.intp]


@dataclass(frozen=True)
class Views:
    """Linear probabilities and the K nearest neighbours' labels and similarities."""

    probabilities: Floats
    neighbour_labels: Ints
    neighbour_similarities: Floats
    gold: Ints  # -1: out of scope (always wrong)
    labels: int


def views(
    train: NDArray[np.float32], train_ids: Ints, labels: int, queries: NDArray[np.float32]
) -> tuple[Floats, Ints, Floats]:
    probabilities = fit_linear(train, train_ids, labels).probabilities(queries)
    found = nearest(train, queries, K)
    return probabilities, train_ids[found.indices], found.similarities.astype(np.float64)


def out_of_fold(vectors: NDArray[np.float32], ids: Ints, labels: int) -> Views:
    from sklearn.model_selection import StratifiedKFold

    probabilities = np.zeros((len(ids), labels))
    neighbour_labels = np.zeros((len(ids), K), dtype=np.intp)
    similarities = np.zeros((len(ids), K))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        splitter = StratifiedKFold(5, shuffle=True, random_state=0)
        for train_rows, held in splitter.split(vectors, ids):
            p, n, s = views(vectors[train_rows], ids[train_rows], labels, vectors[held])
            probabilities[held], neighbour_labels[held], similarities[held] = p, n, s
    return Views(probabilities, neighbour_labels, similarities, ids, labels)


def knn_probabilities(view: Views, k: int, sharpness: float = 20.0) -> Floats:
    similarities = view.neighbour_similarities[:, :k]
    weights = np.exp(sharpness * (similarities - similarities[:, :1]))
    rows = np.repeat(np.arange(len(weights)), k)
    distribution = np.zeros((len(weights), view.labels))
    np.add.at(distribution, (rows, view.neighbour_labels[:, :k].ravel()), weights.ravel())
    normalised: Floats = distribution / distribution.sum(axis=1, keepdims=True)
    return normalised


def features(view: Views, variant: str) -> tuple[Ints, dict[str, Floats]]:
    k = 20 if "k20" in variant else 10
    knn = knn_probabilities(view, k)
    probabilities = 0.5 * view.probabilities + 0.5 * knn if "ens" in variant else view.probabilities
    predicted: Ints = probabilities.argmax(axis=1)
    ordered = np.sort(probabilities, axis=1)
    top, second = ordered[:, -1], ordered[:, -2]
    labels = view.neighbour_labels[:, :k]
    similarities = view.neighbour_similarities[:, :k]
    agrees = labels == predicted[:, None]
    weights = np.exp(20 * (similarities - similarities[:, :1]))
    columns = {
        "log_odds": np.log(top + 1e-9) - np.log1p(-top + 1e-9),
        "margin": top - second,
        "vote_share": agrees.mean(axis=1),
        "weighted_vote_share": (weights * agrees).sum(axis=1) / weights.sum(axis=1),
        "nearest_similarity": similarities[:, 0],
        "label_similarity": np.where(agrees, similarities, -1.0).max(axis=1),
    }
    rows = np.arange(len(predicted))
    if "plus" in variant:
        other = np.where(~agrees, similarities, -1.0).max(axis=1)
        columns["similarity_margin"] = columns["label_similarity"] - other
        columns["agreement"] = (knn.argmax(axis=1) == view.probabilities.argmax(axis=1)) * 1.0
        columns["knn_probability"] = knn[rows, predicted]
        columns["linear_probability"] = view.probabilities[rows, predicted]
    if "inter" in variant:
        columns["log_odds_x_vote"] = columns["log_odds"] * columns["weighted_vote_share"]
    return predicted, columns


def label_precision(
    cal_predicted: Ints, cal_correct: NDArray[np.bool_], test_predicted: Ints, labels: int
) -> tuple[Floats, Floats]:
    """Log-odds of how often each predicted label was right out of fold, smoothed to the mean.

    Calibration rows get the leave-one-out value (their own outcome left out), test rows the
    value over every calibration row.
    """
    prior = float(cal_correct.mean())
    right = np.bincount(cal_predicted, weights=cal_correct, minlength=labels)
    made = np.bincount(cal_predicted, minlength=labels).astype(np.float64)
    own = cal_correct.astype(np.float64)
    cal = (right[cal_predicted] - own + PRIOR_WEIGHT * prior) / (
        made[cal_predicted] - 1 + PRIOR_WEIGHT
    )
    test = (right[test_predicted] + PRIOR_WEIGHT * prior) / (made[test_predicted] + PRIOR_WEIGHT)

    def logit(p: Floats) -> Floats:
        clipped = np.clip(p, 1e-4, 1 - 1e-4)
        return np.log(clipped) - np.log1p(-clipped)

    return logit(cal), logit(test)


def evaluate(
    name: str, calibration: Views, test: Views, oos: Views | None, variants: Sequence[str]
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for variant in variants:
        cal_predicted, cal_features = features(calibration, variant)
        test_predicted, test_features = features(test, variant)
        cal_correct = cal_predicted == calibration.gold
        test_correct = test_predicted == test.gold
        if "prec" in variant:
            cal_column, test_column = label_precision(
                cal_predicted, cal_correct, test_predicted, calibration.labels
            )
            cal_features["label_precision"] = cal_column
            test_features["label_precision"] = test_column
        calibrator = Calibrator.fit(cal_features, cal_correct)
        cal_scores = calibrator.predict(cal_features)
        test_scores = calibrator.predict(test_features)
        oos_scores = None
        if oos is not None:
            oos_predicted, oos_features = features(oos, variant)
            if "prec" in variant:
                oos_features["label_precision"] = label_precision(
                    cal_predicted, cal_correct, oos_predicted, calibration.labels
                )[1]
            oos_scores = calibrator.predict(oos_features)
        row: dict[str, object] = {
            "dataset": name,
            "variant": variant,
            "test_accuracy": float(test_correct.mean()),
        }
        for budget in (0.01, 0.02, 0.05):
            result = fit_threshold(cal_scores, cal_correct, budget, 0.05)
            accepted = result.accepts(test_scores)
            row[f"accepted@{budget:.0%}"] = float(accepted.mean())
            row[f"accuracy@{budget:.0%}"] = (
                float(test_correct[accepted].mean()) if accepted.any() else None
            )
            if oos_scores is not None:
                row[f"oos@{budget:.0%}"] = float(result.accepts(oos_scores).mean())
        rows.append(row)
    return rows


def banking77(encode: Callable[[Sequence[str]], NDArray[np.float32]]) -> tuple[Views, Views]:
    train = load_dataset(DATA / "banking77" / "banking77_train.csv")
    test = load_dataset(DATA / "banking77" / "banking77_test.csv")
    names = sorted({e.label for e in train})
    index = {label: i for i, label in enumerate(names)}
    train_vectors = encode([e.text for e in train])
    train_ids = np.array([index[e.label] for e in train], dtype=np.intp)
    test_ids = np.array([index[e.label] for e in test], dtype=np.intp)
    calibration = out_of_fold(train_vectors, train_ids, len(names))
    scored = views(train_vectors, train_ids, len(names), encode([e.text for e in test]))
    return calibration, Views(*scored, test_ids, len(names))


def clinc150(
    encode: Callable[[Sequence[str]], NDArray[np.float32]],
) -> tuple[Views, Views, Views]:
    raw = json.loads((DATA / "clinc150" / "clinc150_data_full.json").read_text())

    def vectors(*keys: str) -> NDArray[np.float32]:
        return np.vstack([encode([text for text, _ in raw[key]]) for key in keys])

    names = sorted({label for _, label in raw["train"]})
    index = {label: i for i, label in enumerate(names)}

    def gold(*keys: str) -> Ints:
        return np.array(
            [index.get(label, -1) for key in keys for _, label in raw[key]], dtype=np.intp
        )

    train_vectors, train_ids = vectors("train"), gold("train")

    def scored(*keys: str) -> Views:
        found = views(train_vectors, train_ids, len(names), vectors(*keys))
        return Views(*found, gold(*keys), len(names))

    return scored("val", "oos_val", "oos_train"), scored("test"), scored("oos_test")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--variants", default="base,plus,ens,ens+plus,k20+plus,ens+plus+inter")
    parser.add_argument("--datasets", default="banking77,clinc150")
    args = parser.parse_args(argv)
    encode = cached_encode(load_encoder(args.encoder), args.cache)
    variants = args.variants.split(",")
    rows: list[dict[str, object]] = []
    if "banking77" in args.datasets:
        rows += evaluate("banking77", *banking77(encode), None, variants)
    if "clinc150" in args.datasets:
        rows += evaluate("clinc150", *clinc150(encode), variants)
    header = ["dataset", "variant", "test acc", "1%", "2%", "5%", "OOS @1%", "OOS @2%"]
    print("  ".join(header))
    for row in rows:

        def cell(budget: str, row: dict[str, object] = row) -> str:
            share = float(str(row[f"accepted@{budget}"]))
            accuracy = row[f"accuracy@{budget}"]
            if accuracy is None:
                return f"{share:.1%}"
            return f"{share:.1%} @ {float(str(accuracy)):.2%}"

        oos = [
            f"{float(str(row[f'oos@{b}'])):.1%}" if f"oos@{b}" in row else "-" for b in ("1%", "2%")
        ]
        print(
            "  ".join(
                [str(row["dataset"]), str(row["variant"]), f"{row['test_accuracy']:.2%}"]
                + [cell(b) for b in ("1%", "2%", "5%")]
                + oos
            )
        )


if __name__ == "__main__":
    main()
