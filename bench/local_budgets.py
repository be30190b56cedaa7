"""The local tier alone at error budgets 1%, 2% and 5%, on BANKING77 and CLINC150.

For each dataset: train the local model on the train split, fit a calibrator and acceptance
thresholds on data held out from training, then report on the test split what share of
messages the local tier accepts and how accurate those accepted answers are. The test split is
never seen before the last step.

Calibration data:
- BANKING77 has no validation split. ``--banking-calibration crossfit`` (default) scores every
  training example with a model fitted on the other four folds (out-of-fold), so all 10,003
  examples calibrate; ``holdout`` trains on 80% and calibrates on the other 20%.
- CLINC150 (``--clinc-calibration holdout``, default) trains on ``train`` and calibrates on its
  ``val`` split plus ``oos_val`` and ``oos_train`` messages, which count as always wrong: any
  label the local tier gives an out-of-scope message is an error. ``crossfit`` trains on
  train+val and calibrates out-of-fold; ``--clinc-oos-class`` trains with ``oos_train`` as a
  label of its own that always escalates (then only ``oos_val`` calibrates).

Local settings (the route's ``local:`` block): ``--runtime onnx --quantize int8`` exports the
encoder as ``tiergate train`` does; ``--finetune-pairs N`` fine-tunes it first. With
fine-tuning, BANKING77's cross-fit is the honest one of ``LocalModel.cross_fit``: each fold is
scored by an encoder fine-tuned without it (``--finetune-folds``); CLINC150 (holdout)
calibrates on splits the fine-tuning never saw. ``--artifacts DIR`` keeps the built models and
reuses them on the next run with the same settings.

Run::

    .venv/bin/python bench/local_budgets.py [--encoder all-MiniLM-L6-v2] [--cache /tmp/emb]
    .venv/bin/python bench/local_budgets.py --runtime onnx --finetune-pairs 2000 \
        --artifacts /tmp/local-artifacts
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tiergate.calibration import (
    Calibrator,
    PerLabelThresholds,
    fit_threshold,
    fit_thresholds_per_label,
)
from tiergate.classifier import LocalModel
from tiergate.classifier.settings import FinetuneSettings, LocalSettings
from tiergate.classifier.training import build_local_model
from tiergate.datasets import Example, load_dataset, stratified_split
from tiergate.encoders import DEFAULT_ENCODER, Encoder, load_encoder

# The public datasets folder beside the repository (../shared/data), or TIERGATE_DATA=DIR.
DATA = Path(os.environ.get("TIERGATE_DATA", Path(__file__).parents[2] / "shared" / "data"))
BUDGETS = (0.01, 0.02, 0.05)
OUT_OF_SCOPE = "oos"


@dataclass(frozen=True)
class Scored:
    """A split scored by the local model: predicted labels, gold labels, features."""

    predicted: list[str]
    gold: list[str]
    features: dict[str, NDArray[np.float64]]

    @property
    def correct(self) -> NDArray[np.bool_]:
        # An out-of-scope message is wrong wherever the local tier accepts it.
        return np.array(
            [p == g != OUT_OF_SCOPE for p, g in zip(self.predicted, self.gold, strict=True)]
        )

    @property
    def escalates(self) -> NDArray[np.bool_]:
        """Rows the local tier itself calls out of scope: never accepted, always escalated."""
        return np.array([p == OUT_OF_SCOPE for p in self.predicted])


def cached_encode(
    encoder: Encoder, cache: Path | None
) -> Callable[[Sequence[str]], NDArray[np.float32]]:
    """Encode with an on-disk cache keyed by encoder and texts, so reruns skip the transformer."""

    def encode(texts: Sequence[str]) -> NDArray[np.float32]:
        if cache is None:
            return encoder.encode(texts)
        key = hashlib.sha256(json.dumps([encoder.name, list(texts)]).encode()).hexdigest()[:20]
        path = cache / f"{key}.npy"
        if path.is_file():
            cached: NDArray[np.float32] = np.load(path)
            return cached
        vectors = encoder.encode(texts)
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return vectors

    return encode


@dataclass(frozen=True)
class Builder:
    """Trains a local model: on fixed vectors (plain encoder) or from route-style settings."""

    encoder: Encoder | None
    cached: Callable[[Sequence[str]], NDArray[np.float32]] | None
    settings: LocalSettings | None = None
    artifacts: Path | None = None
    built: dict[str, LocalModel] = field(default_factory=dict)  # this run's models, by key
    lexical: bool = False  # the plain-encoder model's lexical view (settings carry their own)

    @property
    def encoder_name(self) -> str | None:
        return None if self.encoder is None else self.encoder.name

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        assert self.cached is not None, "a settings-built model encodes with its own encoder"
        return self.cached(texts)

    def train(
        self,
        name: str,
        examples: list[Example],
        vectors: Callable[[], NDArray[np.float32]],
        *,
        cross_fit: bool = True,
    ) -> LocalModel:
        # Models built with different settings never share a key (nor a directory on disk).
        identity = (
            [name, self.settings.to_json(), len(examples)]
            if self.settings is not None
            else [name, self.encoder_name, len(examples), self.lexical]
        )
        key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]
        if key in self.built:
            return self.built[key]
        if self.settings is None:
            assert self.encoder is not None
            model = LocalModel.train(
                examples, self.encoder, vectors=vectors(), lexical=self.lexical
            )
            self.built[key] = model
            return model
        directory = (self.artifacts or Path(tempfile.mkdtemp())) / f"{name}-{key}"
        if (directory / "metadata.json").is_file():
            print(f"{name}: reusing {directory}", file=sys.stderr)
            model = LocalModel.load(directory)
            self.built[key] = model
            return model
        model = build_local_model(
            examples,
            self.settings,
            directory,
            seed=0,
            progress=lambda m: print(m, file=sys.stderr),
            cross_fit=cross_fit,
        )
        model.save(directory)
        self.built[key] = model
        return model

    def vectors(self, model: LocalModel, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.encode(texts) if self.settings is None else model.encoder.encode(texts)


def score(model: LocalModel, vectors: NDArray[np.float32], examples: Sequence[Example]) -> Scored:
    batch = model.score_vectors(vectors, texts=[e.text for e in examples])
    gold = [e.label for e in examples]
    predicted = [model.labels[i] for i in batch.label_ids.tolist()]
    return Scored(predicted, list(gold), batch.features)


def calibrated_scores(
    calibration: Scored, test: Scored
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # The served features (LOCAL_FEATURES, plus the lexical view's when the model has one).
    calibrator = Calibrator.fit(calibration.features, calibration.correct)
    never = -1.0  # below any calibrated probability, so never above a fitted threshold
    return (
        np.where(calibration.escalates, never, calibrator.predict(calibration.features)),
        np.where(test.escalates, never, calibrator.predict(test.features)),
    )


def budget_rows(
    name: str,
    calibration: Scored,
    test: Scored,
    out_of_scope: Scored | None,
    delta: float,
) -> list[dict[str, object]]:
    calibration_scores, test_scores = calibrated_scores(calibration, test)
    oos_scores = None if out_of_scope is None else calibrated_scores(calibration, out_of_scope)[1]
    rows: list[dict[str, object]] = []
    test_correct = test.correct
    for budget in BUDGETS:
        global_only = fit_threshold(calibration_scores, calibration.correct, budget, delta)
        fitted = {
            "global": PerLabelThresholds(global_result=global_only),
            "per-label": fit_thresholds_per_label(
                calibration_scores, calibration.correct, calibration.predicted, budget, delta
            ),
        }
        for mode, result in fitted.items():
            accepted = result.accepts(test_scores, test.predicted)
            accepted_oos = (
                None
                if oos_scores is None or out_of_scope is None
                else result.accepts(oos_scores, out_of_scope.predicted)
            )
            bound = result.global_result.upper_bound
            n_accepted = int(accepted.sum())
            row: dict[str, object] = {
                "dataset": name,
                "budget": budget,
                "thresholds": mode,
                "accepted_share": float(accepted.mean()),
                "accepted_accuracy": float(test_correct[accepted].mean()) if n_accepted else None,
                "calibration_bound": bound,
            }
            if accepted_oos is not None:
                wrong = int((~test_correct[accepted]).sum()) + int(accepted_oos.sum())
                total = n_accepted + int(accepted_oos.sum())
                row["oos_accepted"] = float(accepted_oos.mean())
                row["accepted_accuracy_with_oos"] = 1 - wrong / total if total else None
            rows.append(row)
    return rows


def banking77(
    builder: Builder, mode: str, delta: float, fold_seed: int = 0
) -> list[dict[str, object]]:
    train = load_dataset(DATA / "banking77" / "banking77_train.csv")
    test = load_dataset(DATA / "banking77" / "banking77_test.csv")
    started = time.perf_counter()
    if mode == "holdout":
        split = stratified_split(train, calibration=0.2, seed=0)
        model = builder.train(
            "banking77-holdout",
            split.train,
            lambda: builder.encode([e.text for e in split.train]),
            cross_fit=False,
        )
        calibration = score(
            model, builder.vectors(model, [e.text for e in split.calibration]), split.calibration
        )
    else:
        model = builder.train("banking77", train, lambda: builder.encode([e.text for e in train]))
        fold = model.cross_fit(folds=5, seed=fold_seed)
        calibration = Scored(fold.labels, fold.gold, fold.features)
    print(
        f"banking77: trained and calibrated in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    test_scored = score(model, builder.vectors(model, [e.text for e in test]), test)
    print(f"banking77: test accuracy {test_scored.correct.mean():.4f}", file=sys.stderr)
    return budget_rows(f"banking77 ({mode})", calibration, test_scored, None, delta)


def clinc150(builder: Builder, mode: str, oos_class: bool, delta: float) -> list[dict[str, object]]:
    """CLINC150: out-of-scope messages carry the gold label "oos" and are always errors.

    With ``oos_class`` the training data includes out-of-scope examples as a label of its own,
    which the local tier never accepts (a message it calls out of scope escalates).
    """
    raw = json.loads((DATA / "clinc150" / "clinc150_data_full.json").read_text())

    def examples(*keys: str) -> list[Example]:
        return [Example(text, label) for key in keys for text, label in raw[key]]

    model: LocalModel | None = None

    def vectors(*keys: str) -> NDArray[np.float32]:
        # Split by split, so each split's embeddings are cached once whatever the combination.
        if builder.settings is not None and model is not None:
            return model.encoder.encode([text for key in keys for text, _ in raw[key]])
        return np.vstack([builder.encode([text for text, _ in raw[key]]) for key in keys])

    if mode == "crossfit":
        keys = ("train", "val", "oos_train", "oos_val") if oos_class else ("train", "val")
        model = builder.train("clinc150-crossfit", examples(*keys), lambda: vectors(*keys))
        fold = model.cross_fit(folds=5, seed=0)
        calibration = Scored(fold.labels, fold.gold, fold.features)
        if not oos_class:
            held = examples("oos_train", "oos_val")
            scored = score(model, vectors("oos_train", "oos_val"), held)
            calibration = Scored(
                calibration.predicted + scored.predicted,
                calibration.gold + scored.gold,
                {
                    n: np.concatenate([calibration.features[n], scored.features[n]])
                    for n in calibration.features
                },
            )
    else:
        train_keys = ("train", "oos_train") if oos_class else ("train",)
        held_keys = ("val", "oos_val") if oos_class else ("val", "oos_val", "oos_train")
        model = builder.train(
            f"clinc150-{'+'.join(train_keys)}",
            examples(*train_keys),
            lambda: vectors(*train_keys),
            cross_fit=False,
        )
        held = examples(*held_keys)
        calibration = score(model, vectors(*held_keys), held)
    test_scored = score(model, vectors("test"), examples("test"))
    oos_scored = score(model, vectors("oos_test"), examples("oos_test"))
    print(f"clinc150: in-scope test accuracy {test_scored.correct.mean():.4f}", file=sys.stderr)
    name = f"clinc150 ({mode}{', oos class' if oos_class else ''})"
    return budget_rows(name, calibration, test_scored, oos_scored, delta)


def print_table(rows: list[dict[str, object]]) -> None:
    columns = [
        ("dataset", "dataset", "{}"),
        ("budget", "budget", "{:.0%}"),
        ("thresholds", "thresholds", "{}"),
        ("accepted_share", "accepted", "{:.1%}"),
        ("accepted_accuracy", "acc. accuracy", "{:.2%}"),
        ("calibration_bound", "cal. bound", "{:.2%}"),
        ("oos_accepted", "OOS accepted", "{:.1%}"),
        ("accepted_accuracy_with_oos", "acc. acc. incl. OOS", "{:.2%}"),
    ]
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append(
            ["-" if row.get(key) is None else fmt.format(row[key]) for key, _, fmt in columns]
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for index, line in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--encoder", default=DEFAULT_ENCODER)
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument(
        "--banking-calibration", choices=("crossfit", "holdout"), default="crossfit"
    )
    parser.add_argument("--clinc-calibration", choices=("crossfit", "holdout"), default="holdout")
    parser.add_argument(
        "--clinc-oos-class",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="train with oos_train as a label of its own that always escalates",
    )
    parser.add_argument("--datasets", default="banking77,clinc150")
    parser.add_argument("--cache", type=Path, default=None, help="directory to cache embeddings")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument(
        "--runtime",
        choices=("onnx", "torch"),
        default=None,
        help="build the model as `tiergate train` does with this runtime (default: plain encoder)",
    )
    parser.add_argument("--quantize", choices=("int8", "none"), default="int8")
    parser.add_argument("--finetune-pairs", type=int, default=0, help="0: no fine-tuning")
    parser.add_argument("--finetune-folds", type=int, default=2)
    parser.add_argument("--finetune-seq", type=int, default=32)
    parser.add_argument("--finetune-layers", type=int, default=3)
    parser.add_argument("--artifacts", type=Path, default=None, help="keep built models here")
    parser.add_argument(
        "--fold-seed", type=int, default=0, help="BANKING77's out-of-fold split (crossfit)"
    )
    parser.add_argument(
        "--lexical",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="add the lexical view (route setting local.lexical)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = None
    if args.runtime is not None or args.finetune_pairs:
        finetune = (
            FinetuneSettings(
                max_pairs=args.finetune_pairs,
                folds=args.finetune_folds,
                max_seq_length=args.finetune_seq,
                top_layers=args.finetune_layers,
            )
            if args.finetune_pairs
            else None
        )
        settings = LocalSettings(
            encoder=args.encoder,
            runtime=args.runtime or "onnx",
            quantize=args.quantize,
            finetune=finetune,
            lexical=args.lexical,
        )
        builder = Builder(None, None, settings, args.artifacts)
    else:
        encoder = load_encoder(args.encoder)
        builder = Builder(encoder, cached_encode(encoder, args.cache), lexical=args.lexical)
    rows: list[dict[str, object]] = []
    wanted = set(args.datasets.split(","))
    if "banking77" in wanted:
        rows += banking77(builder, args.banking_calibration, args.delta, args.fold_seed)
    if "clinc150" in wanted:
        rows += clinc150(builder, args.clinc_calibration, args.clinc_oos_class, args.delta)
    described = (
        json.dumps(settings.to_json())
        if settings
        else f"{builder.encoder_name}{' + lexical view' if args.lexical else ''}"
    )
    print(f"local tier alone; encoder {described}; delta {args.delta}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
