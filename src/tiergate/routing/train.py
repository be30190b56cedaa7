"""Training a route's local tier: the library function behind ``tiergate train``.

The local model (encoder, classifier, neighbours; see ``tiergate.classifier``) is trained on the
route's training data, without the share held out for calibration, and saved in the route's
``artifacts/local``. The route's ``local:`` block says how (encoder, runtime, fine-tuning);
``settings`` overrides it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tiergate.classifier.settings import LocalSettings
from tiergate.progress import NO_PROGRESS, Tracker
from tiergate.routing.route import Route
from tiergate.routing.runtime import check_labels, local_dir, route_data


@dataclass(frozen=True)
class TrainReport:
    saved: Path
    seconds: float
    examples: int
    labels: int
    held_out: int  # calibration examples scored after training
    held_out_accuracy: float | None


def train_route(
    route: Route,
    settings: LocalSettings | None = None,
    *,
    say: Callable[[str], None] = lambda message: None,
    tracker: Tracker = NO_PROGRESS,
) -> TrainReport:
    """Train and save the route's local model; score it on the held-out calibration data.

    ``tracker`` sees the encoding, fitting and held-out scoring as stages."""
    from tiergate.classifier.training import build_local_model

    data = route_data(route)
    check_labels(route, data.train, str(route.train_data))
    chosen = settings or route.local
    started = time.perf_counter()
    directory = local_dir(route)
    model = build_local_model(
        data.train, chosen, directory, seed=route.seed, progress=say, tracker=tracker
    )
    saved = model.save(directory)
    seconds = time.perf_counter() - started
    texts = [example.text for example in data.calibration]
    with tracker.stage("scoring the held-out split", len(texts), unit="texts") as stage:
        predictions = model.predict(texts)  # one call: the same vectors as the tier computes
        stage.advance(len(texts))
    right = sum(p.label == e.label for p, e in zip(predictions, data.calibration, strict=True))
    return TrainReport(
        saved=saved,
        seconds=seconds,
        examples=len(data.train),
        labels=len(model.labels),
        held_out=len(data.calibration),
        held_out_accuracy=right / len(data.calibration) if data.calibration else None,
    )
