"""``tiergate train ROUTE``: train the route's local model and save it as an artifact."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tiergate.cli.formatting import say


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="train a route's local model")
    parser.add_argument("route", type=Path, help="route file (or its folder)")
    parser.add_argument(
        "--encoder", help="sentence encoder spec (default: the route's, else the built-in)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tiergate.classifier import LocalModel
    from tiergate.encoders import DEFAULT_ENCODER
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import check_labels, local_dir, route_data

    route = load_route(args.route)
    data = route_data(route)
    check_labels(route, data.train, str(route.train_data))
    encoder = args.encoder or route.encoder or DEFAULT_ENCODER
    say(f"training the local model of {route.name!r} on {len(data.train):,} examples ({encoder})")
    started = time.perf_counter()
    model = LocalModel.train(data.train, encoder=encoder)
    trained = time.perf_counter() - started
    path = model.save(local_dir(route))
    predictions = model.predict([example.text for example in data.calibration])
    right = sum(p.label == e.label for p, e in zip(predictions, data.calibration, strict=True))
    print(f"trained in {trained:.1f} s on {len(data.train):,} examples, {len(model.labels)} labels")
    print(
        f"held-out accuracy (calibration data, {len(data.calibration):,}): "
        f"{right / len(data.calibration):.1%}"
    )
    print(f"saved to {path}")
    return 0
