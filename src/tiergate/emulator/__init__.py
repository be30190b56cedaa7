"""A local server that behaves like the Anthropic Messages API, for tests, demos and load tests.

Answers are emulated (deterministic filler, schema-valid JSON, a labelled scenario), never
Claude's; every response says so in the ``x-tiergate-emulated: true`` header.
"""

from tiergate.emulator.app import EmulatorApp
from tiergate.emulator.clock import ManualClock
from tiergate.emulator.config import EmulatorConfig
from tiergate.emulator.faults import FaultPlan
from tiergate.emulator.scenario import Scenario, load_scenario, scenario_from_dict
from tiergate.emulator.scenario_build import build_scenario, write_scenario
from tiergate.emulator.server import EmulatorServer, serve_forever
from tiergate.emulator.tokens import count_text

__all__ = [
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorServer",
    "FaultPlan",
    "ManualClock",
    "Scenario",
    "build_scenario",
    "count_text",
    "load_scenario",
    "scenario_from_dict",
    "serve_forever",
    "write_scenario",
]
