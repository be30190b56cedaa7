"""The drift scenario as a session fixture (a pytest plugin, like gw_fixtures): trained and
calibrated once, whichever module asks first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gw_audit import Scenario, drift_scenario


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """The drift scenario, built once a session (tests load this module as a plugin)."""
    with drift_scenario(tmp_path_factory.mktemp("drift") / "route") as built:
        yield built
