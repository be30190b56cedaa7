"""Build a route's local model from its ``local:`` settings: encoder, classifier, honest scores.

``build_local_model(examples, settings, directory)`` does, in order:

1. the encoder: the source model as is, or fine-tuned contrastively on ``examples``
   (``tiergate.encoders.finetune``); then exported to ONNX (int8 unless ``quantize: none``) or
   kept for torch, its files written under ``directory/encoder``;
2. the classifier (logistic regression + neighbour pool) on that encoder's vectors;
3. with fine-tuning, the out-of-fold scores the calibrator needs: the examples are split into
   ``finetune.folds`` stratified folds, and each fold is scored by an encoder fine-tuned, and
   a classifier fitted, on the other folds only (exported and quantised as the served one is).
   They are attached to the model, saved with it, and returned by ``LocalModel.cross_fit``.

The caller saves the model into the same ``directory`` (``model.save(directory)``), which makes
the encoder's path in the artifact relative to it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tiergate.classifier.model import CrossFit, LocalModel
from tiergate.classifier.settings import LocalSettings
from tiergate.datasets import Example
from tiergate.encoders import Encoder, load_encoder
from tiergate.encoders.base import encode_reporting
from tiergate.encoders.portable import ENCODER_DIR
from tiergate.progress import NO_PROGRESS, Tracker

Progress = Callable[[str], None]


def build_local_model(
    examples: Sequence[Example],
    settings: LocalSettings,
    directory: Path,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    cross_fit: bool = True,
    tracker: Tracker = NO_PROGRESS,
) -> LocalModel:
    """Train the local model ``settings`` describe; encoder files go to ``directory/encoder``.

    ``cross_fit=False`` skips the fine-tuned cross-fit, for callers that calibrate on data
    held out from ``examples``; the model's ``cross_fit`` then refuses to run (classifier-only
    out-of-fold scores through a fine-tuned encoder would not be out of sample).
    ``progress`` gets a line per step; ``tracker`` a stage for encoding and one for fitting.
    """
    if not examples:
        raise ValueError("cannot train on no examples")
    say = progress or (lambda _message: None)
    example_list = list(examples)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    scores: CrossFit | None = None
    if settings.finetune is not None:
        if cross_fit:
            scores = _finetuned_cross_fit(example_list, settings, seed, say, timings)
        tick = time.perf_counter()
        say(f"fine-tuning the served encoder on all {len(example_list):,} examples")
        transformer = _finetune(example_list, settings, seed, say)
        timings["finetune_served_s"] = time.perf_counter() - tick
        encoder = _materialise(transformer, settings, directory / ENCODER_DIR, finetuned=True)
    else:
        tick = time.perf_counter()
        encoder = _base_encoder(settings, directory / ENCODER_DIR)
        timings["encoder_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    say(f"encoding {len(example_list):,} examples and fitting the classifier")
    texts = [example.text for example in example_list]
    with tracker.stage("encoding the training examples", len(texts), unit="texts") as stage:
        vectors = encode_reporting(encoder, texts, stage.advance)
    with tracker.stage("fitting the classifier", 1, unit="fits") as stage:
        model = LocalModel.train(example_list, encoder, vectors=vectors, lexical=settings.lexical)
        stage.advance()
    timings["classifier_s"] = time.perf_counter() - tick
    timings["total_s"] = time.perf_counter() - started
    training: dict[str, Any] = {
        "settings": settings.to_json(),
        "seed": seed,
        "seconds": {name: round(value, 1) for name, value in timings.items()},
    }
    if scores is not None and settings.finetune is not None:
        training["cross_fit"] = {
            "folds": settings.finetune.folds,
            "seed": seed,
            "finetuned_per_fold": True,
            "examples": len(example_list),
        }
        model.attach_cross_fit(scores, training)
    else:
        model.attach_training(training)
    return model


def _base_encoder(settings: LocalSettings, files: Path) -> Encoder:
    if settings.static or settings.runtime == "torch":
        return load_encoder(settings.encoder)
    from tiergate.encoders.export import export_onnx
    from tiergate.encoders.sentence_transformer import SentenceTransformerEncoder

    source = SentenceTransformerEncoder(settings.encoder)
    export_onnx(
        source.transformer,
        files,
        source=settings.encoder,
        quantize=settings.quantize,
        max_seq_length=settings.max_seq_length,
    )
    return load_encoder(f"onnx:{files}")


def _finetune(
    examples: Sequence[Example], settings: LocalSettings, seed: int, say: Progress
) -> Any:
    from tiergate.encoders.finetune import finetune

    options = settings.finetune
    assert options is not None
    return finetune(
        [e.text for e in examples],
        [e.label for e in examples],
        source=settings.encoder,
        max_pairs=options.max_pairs,
        epochs=options.epochs,
        max_seq_length=options.max_seq_length,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        top_layers=options.top_layers,
        seed=seed,
        progress=say,
    )


def _materialise(
    transformer: Any, settings: LocalSettings, files: Path, *, finetuned: bool
) -> Encoder:
    """Write a (fine-tuned) SentenceTransformer where the artifact keeps its encoder."""
    transformer.max_seq_length = settings.max_seq_length
    if settings.runtime == "torch":
        from tiergate.encoders.sentence_transformer import SentenceTransformerEncoder

        files.mkdir(parents=True, exist_ok=True)
        transformer.save(str(files))
        return SentenceTransformerEncoder(files, owned=True)
    from tiergate.encoders.export import export_onnx

    export_onnx(
        transformer,
        files,
        source=settings.encoder,
        quantize=settings.quantize,
        max_seq_length=settings.max_seq_length,
        finetuned=finetuned,
    )
    return load_encoder(f"onnx:{files}")


def _finetuned_cross_fit(
    examples: list[Example],
    settings: LocalSettings,
    seed: int,
    say: Progress,
    timings: dict[str, float],
) -> CrossFit:
    """Out-of-fold scores where neither the encoder nor the classifier saw the scored fold."""
    import warnings

    from sklearn.model_selection import StratifiedKFold

    options = settings.finetune
    assert options is not None
    labels = sorted({e.label for e in examples})
    label_ids = np.array([labels.index(e.label) for e in examples])
    splitter = StratifiedKFold(n_splits=options.folds, shuffle=True, random_state=seed)
    texts = [e.text for e in examples]
    parts: list[tuple[np.ndarray[Any, Any], CrossFit]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # labels with fewer members than folds
        splits = list(splitter.split(np.zeros(len(examples)), label_ids))
    for number, (train_rows, held_rows) in enumerate(splits, start=1):
        tick = time.perf_counter()
        fold_train = [examples[i] for i in train_rows.tolist()]
        say(
            f"cross-fitting fold {number}/{options.folds}: fine-tuning on {len(fold_train):,} "
            f"examples, scoring the other {len(held_rows):,}"
        )
        transformer = _finetune(fold_train, settings, seed + number, say)
        if settings.runtime == "torch":
            from tiergate.encoders.sentence_transformer import SentenceTransformerEncoder

            transformer.max_seq_length = settings.max_seq_length
            encoder: Encoder = SentenceTransformerEncoder.from_transformer(
                transformer, f"{settings.encoder} fine-tuned without fold {number}"
            )
            vectors = encoder.encode(texts)
        else:
            # Exported and quantised as the served encoder will be, so the scores match it.
            with tempfile.TemporaryDirectory() as scratch:
                encoder = _materialise(
                    transformer, settings, Path(scratch) / ENCODER_DIR, finetuned=True
                )
                vectors = encoder.encode(texts)
        fold_model = LocalModel.train(
            fold_train, encoder, vectors=vectors[train_rows], lexical=settings.lexical
        )
        batch = fold_model.score_vectors(
            vectors[held_rows], texts=[texts[i] for i in held_rows.tolist()]
        )
        predicted = [fold_model.labels[i] for i in batch.label_ids.tolist()]
        gold = [examples[i].label for i in held_rows.tolist()]
        parts.append(
            (
                held_rows,
                CrossFit(
                    labels=predicted,
                    gold=gold,
                    correct=np.array([p == g for p, g in zip(predicted, gold, strict=True)]),
                    features=batch.features,
                ),
            )
        )
        timings[f"finetune_fold{number}_s"] = time.perf_counter() - tick
    order = np.concatenate([rows for rows, _ in parts])
    combined = CrossFit.concatenate([part for _, part in parts])
    # Back to the examples' order.
    return combined.rows(np.argsort(order))
