"""tiergate: answer each Claude request with the cheapest tier that is good enough.

The library's public surface, in one place::

    from tiergate import load_route, load_price_book, anthropic_transport, open_router
    from tiergate import train_route, calibrate_route, evaluate_route   # what the CLI runs

Every name is imported on first use (PEP 562), so ``import tiergate`` and ``tiergate --help``
load nothing heavy: the engine pulls numpy, a local tier torch or ONNX Runtime, the gateway
aiohttp, and only a program that uses them pays for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # prices and cost
    "Cost": "tiergate.core.cost",
    "price_usage": "tiergate.core.cost",
    "ModelPrice": "tiergate.core.prices",
    "PriceBook": "tiergate.core.prices",
    "PriceBookError": "tiergate.core.prices",
    "UnknownModelError": "tiergate.core.prices",
    "load_price_book": "tiergate.core.prices",
    "Usage": "tiergate.core.usage",
    # routes and the engine
    "Route": "tiergate.routing.route",
    "RouteError": "tiergate.routing.route",
    "load_route": "tiergate.routing.route",
    "Decision": "tiergate.routing.engine",
    "Router": "tiergate.routing.engine",
    "open_router": "tiergate.routing.runtime",
    "TrainReport": "tiergate.routing.train",
    "train_route": "tiergate.routing.train",
    "CalibrateOptions": "tiergate.routing.calibrate",
    "calibrate_route": "tiergate.routing.calibrate",
    "EvaluateOptions": "tiergate.routing.evaluate",
    "evaluate_route": "tiergate.routing.evaluate",
    # talking to a model API
    "Transport": "tiergate.transports.base",
    "anthropic_transport": "tiergate.transports.retry",
    # the learned pre-call router
    "LearnedRouter": "tiergate.precall.router",
    # the gateway
    "GatewayServer": "tiergate.gateway.server",
    "load_config": "tiergate.gateway.config",
    # errors a user can fix
    "TiergateError": "tiergate.errors",
}

# Spelled out for linters and `from tiergate import *`; a test keeps it equal to _EXPORTS.
__all__ = [
    "CalibrateOptions",
    "Cost",
    "Decision",
    "EvaluateOptions",
    "GatewayServer",
    "LearnedRouter",
    "ModelPrice",
    "PriceBook",
    "PriceBookError",
    "Route",
    "RouteError",
    "Router",
    "TiergateError",
    "TrainReport",
    "Transport",
    "UnknownModelError",
    "Usage",
    "__version__",
    "anthropic_transport",
    "calibrate_route",
    "evaluate_route",
    "load_config",
    "load_price_book",
    "load_route",
    "open_router",
    "price_usage",
    "train_route",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tiergate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # what type checkers and editors see; never run
    from tiergate.core.cost import Cost, price_usage
    from tiergate.core.prices import (
        ModelPrice,
        PriceBook,
        PriceBookError,
        UnknownModelError,
        load_price_book,
    )
    from tiergate.core.usage import Usage
    from tiergate.errors import TiergateError
    from tiergate.gateway.config import load_config
    from tiergate.gateway.server import GatewayServer
    from tiergate.precall.router import LearnedRouter
    from tiergate.routing.calibrate import CalibrateOptions, calibrate_route
    from tiergate.routing.engine import Decision, Router
    from tiergate.routing.evaluate import EvaluateOptions, evaluate_route
    from tiergate.routing.route import Route, RouteError, load_route
    from tiergate.routing.runtime import open_router
    from tiergate.routing.train import TrainReport, train_route
    from tiergate.transports.base import Transport
    from tiergate.transports.retry import anthropic_transport
