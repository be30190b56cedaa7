"""Fixtures: a zero-latency emulator as the upstream, and gateways in front of it.

Loaded as a pytest plugin (``pytest_plugins`` in each test module) rather than a conftest, so
mypy sees no second ``conftest`` module and session fixtures exist once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gw_helpers import Gateway, running_gateway, small_route, train_and_calibrate

from tiergate.datasets import Example, load_dataset
from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.emulator.scenario_build import scenario_from_examples


@pytest.fixture(scope="session")
def route_examples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Example]]:
    path = small_route(tmp_path_factory.mktemp("tickets"))
    return path, load_dataset(path.parent / "train.csv")


@pytest.fixture(scope="session")
def emulator(route_examples: tuple[Path, list[Example]]) -> Iterator[EmulatorServer]:
    scenario = scenario_from_examples(route_examples[1], name="tickets")
    with EmulatorServer(EmulatorConfig(seed=3, scenario=scenario, latency_scale=0.0)) as running:
        yield running


@pytest.fixture(scope="session")
def trained_route(route_examples: tuple[Path, list[Example]], emulator: EmulatorServer) -> Path:
    """The small route, trained and calibrated through the library (as the CLI does)."""
    train_and_calibrate(route_examples[0], emulator.base_url)
    return route_examples[0]


@pytest.fixture
def gateway(tmp_path: Path, emulator: EmulatorServer) -> Iterator[Gateway]:
    with running_gateway(tmp_path, emulator.base_url) as running:
        yield running


@pytest.fixture(scope="session")
def paced_emulator() -> Iterator[EmulatorServer]:
    """Streams paced token by token (a twentieth of realistic), so they arrive in pieces."""
    with EmulatorServer(EmulatorConfig(seed=5, latency_scale=0.05)) as running:
        yield running


@pytest.fixture
def paced_gateway(tmp_path: Path, paced_emulator: EmulatorServer) -> Iterator[Gateway]:
    with running_gateway(tmp_path, paced_emulator.base_url) as running:
        yield running
