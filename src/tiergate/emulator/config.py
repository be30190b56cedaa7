"""Everything that shapes one emulator instance, as one immutable value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tiergate.core.prices import PriceBook
from tiergate.emulator.clock import Clock, system_clock
from tiergate.emulator.faults import FaultPlan
from tiergate.emulator.scenario import AnyScenario
from tiergate.emulator.tool_scenario import ToolScenario
from tiergate.limits import RateLimits


@dataclass(frozen=True)
class EmulatorConfig:
    """Defaults give a fast, fault-free, unlimited emulator: what tests usually want.

    ``latency_scale``: 0 answers at once, 1 is the price book's realistic latency.
    ``limits`` applies to every model; ``limits_by_model`` replaces it for named models.
    ``batch_processing_s``: time from creating a batch to its end.
    ``api_keys``: if given, only these keys are accepted (else any non-empty key).
    ``price_book``: ``None`` loads the built-in book (with ``$TIERGATE_PRICES`` over it).
    ``clock``: seconds since the epoch; pass a :class:`~tiergate.emulator.clock.ManualClock`
    to move time in tests.
    """

    latency_scale: float = 0.0
    limits: RateLimits = field(default_factory=RateLimits)
    limits_by_model: Mapping[str, RateLimits] = field(default_factory=dict)
    faults: FaultPlan = field(default_factory=FaultPlan)
    seed: int = 0
    scenario: AnyScenario | ToolScenario | None = None
    batch_processing_s: float = 0.0
    filler_tokens: tuple[int, int] = (30, 200)
    api_keys: frozenset[str] | None = None
    price_book: PriceBook | None = None
    clock: Clock = system_clock
    log_size: int = 10_000
