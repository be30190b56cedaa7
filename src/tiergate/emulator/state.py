"""The mutable state of one emulator instance: caches, buckets, batches, the request log.

It lives on the app object (never in module globals), so two emulators in one process, as
tests run them, share nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from tiergate.core.prices import PriceBook, load_price_book
from tiergate.emulator.answers import AnswerSettings
from tiergate.emulator.batches import BatchStore
from tiergate.emulator.caching import PromptCache
from tiergate.emulator.config import EmulatorConfig
from tiergate.emulator.faults import FaultInjector
from tiergate.emulator.ids import IdMaker
from tiergate.emulator.latency import Pacing
from tiergate.limits import ModelLimiter


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the server saw it, for tests and ``/_tiergate/stats``."""

    method: str
    path: str
    status: int
    retry_count: int
    model: str | None


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.book: PriceBook = config.price_book or load_price_book()
        for model in config.limits_by_model:
            self.book.get(model)  # fail early on a typo, with suggestions
        self.limiter = ModelLimiter(
            config.limits,
            {self.book.get(name).name: limits for name, limits in config.limits_by_model.items()},
        )
        self.cache = PromptCache()
        self.ids = IdMaker(config.seed)
        self.faults = FaultInjector(config.faults, config.seed)
        self.pacing = Pacing(config.latency_scale)
        self.answer_settings = AnswerSettings(config.seed, config.scenario, config.filler_tokens)
        self.batches = BatchStore(config.batch_processing_s)
        self.log: deque[RequestRecord] = deque(maxlen=config.log_size)
        self.requests_served = 0
        self.status_counts: dict[int, int] = {}

    def record(self, record: RequestRecord) -> None:
        self.log.append(record)
        self.requests_served += 1
        self.status_counts[record.status] = self.status_counts.get(record.status, 0) + 1

    def records(self, path: str | None = None) -> list[RequestRecord]:
        """Requests seen so far (the last ``log_size``), optionally only those to ``path``."""
        return [record for record in self.log if path is None or record.path == path]
