"""The audit loop of one route: sample decisions, ask the top tier off the hot path, judge.

:meth:`RouteAuditor.observe` runs on the hot path (no I/O, no await): it draws the sample and
queues it. A background task sends the queue to the route's top tier when ``batch_size`` audits
wait or the oldest has waited ``batch_wait_s``: as one message batch (half price, polled every
``poll_s``) or, in ``live`` mode, as concurrent Messages calls. Results are written to the
``audits`` table, counted in the tally, and the verdict is shown; a breach engages the reaction
once, until the route's calibration file changes (then the new policies are loaded and the
counts start again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tiergate.audit.alarm import AuditMetrics, breach_message, post_webhook
from tiergate.audit.asking import Priced, ask_tier
from tiergate.audit.config import RouteAudit
from tiergate.audit.drift import DriftMonitor, Reference, reference_of
from tiergate.audit.estimate import BREACHED, Tally
from tiergate.audit.reaction import tightened_router, top_tier_router
from tiergate.audit.records import (
    AUDIT,
    DONE,
    FAILED,
    SHADOW,
    AuditRecord,
    read_records,
    write_records,
)
from tiergate.audit.report import reference_error
from tiergate.audit.shadow import shadow_answers, shadow_payloads, shadow_summary
from tiergate.routing.engine import Decision, Router
from tiergate.routing.route import LOCAL
from tiergate.routing.runtime import POLICY_FILE, load_calibration
from tiergate.stores import utc_day
from tiergate.tasks.base import Context, Item
from tiergate.tiers.anthropic import AnthropicTier
from tiergate.tiers.base import TierAnswer

log = logging.getLogger("tiergate.audit")
TICK_S = 1.0
# Samples waiting for the top tier, at most (a message batch may take hours to end): beyond
# this, new samples are dropped and counted, so memory stays bounded whatever the traffic.
MAX_PENDING = 50_000
# Message batches (or live bursts) in flight at once: a batch may take hours to end, and the
# samples of that time go out in the next ones meanwhile.
MAX_IN_FLIGHT = 16


@dataclass(slots=True)
class Pending:
    record: AuditRecord
    queued: float  # monotonic


class RouteAuditor:
    def __init__(
        self, settings: RouteAudit, classifier: Any, engine: Engine, metrics: AuditMetrics
    ) -> None:
        self.settings = settings
        self.name = settings.route
        self.classifier = classifier  # tiergate.gateway.classify.Classifier: its router is swapped
        self.calibrated = classifier.router  # the router as calibrated, before any reaction
        self.engine = engine
        self.metrics = metrics
        self._random = random.Random(settings.seed)
        self._pending: list[Pending] = []
        self._queued: Counter[tuple[str, str]] = Counter()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.engaged: str | None = None  # the reaction in force, if any
        self.breached_at: float | None = None  # a breach stands until the route is recalibrated
        self.calibrated_at = self._calibration_time()
        self.tally = Tally(settings.window, reference_error(self.calibrated.route))
        self.drift = DriftMonitor(self.calibrated, settings.window, Reference([], None, []))
        self.cost_usd = 0.0
        self.records_seen = 0
        self.dropped = 0  # samples dropped because too many waited (MAX_PENDING)
        self._shadowed: list[tuple[dict[str, Any], Any]] = []  # (cheaper answers, top answer)

    # -- the hot path ---------------------------------------------------------------------------

    @property
    def top(self) -> str:
        return str(self.calibrated.route.tiers[-1])

    def observe(self, request_id: str, at: float, text: str, decision: Decision) -> None:
        """Called for every decision the route serves; queues the sampled ones."""
        self.drift.observe(decision)
        if decision.payload is None:
            return
        task = self.calibrated.task
        tier = decision.tier or ""
        label = task.threshold_key(decision.payload)
        if self.settings.shadow > 0:
            if tier == self.top and self._random.random() < self.settings.shadow:
                self._queue(request_id, at, text, decision, SHADOW, True)
            return
        # While the reaction sends the traffic to the top tier its answers cost nothing to audit
        # (no second call): all are kept, so `calibrate --from-audit` has data sooner; only
        # those drawn at the plain rate count in the route's figure, which stays a uniform
        # sample of accepted answers.
        free = self.engaged == "top_tier" and tier == self.top
        by_rate = self._random.random() < self.settings.sample_rate
        wanted = self.settings.min_per_stratum
        short = (
            wanted > 0
            and decision.accepted
            and self.tally.count(tier, label) + self._queued[(tier, label)] < wanted
        )
        if not by_rate and not short and not free:
            return
        record = self._queue(request_id, at, text, decision, AUDIT, by_rate)
        reference = next((a for a in decision.answers if a.tier == self.top and a.usable), None)
        if reference is not None:  # the top tier answered on the hot path: nothing to ask
            record.reference = json.dumps(reference.payload)
            record.agree = task.agree(decision.payload, reference.payload)
            record.status = DONE

    def _queue(
        self, request_id: str, at: float, text: str, decision: Decision, kind: str, by_rate: bool
    ) -> AuditRecord:
        tier = decision.tier or ""
        label = self.calibrated.task.threshold_key(decision.payload)
        record = AuditRecord(
            request_id=request_id,
            at=at,
            day=utc_day(at),
            route=self.name,
            kind=kind,
            tier=tier,
            label=label,
            accepted=decision.accepted,
            by_rate=by_rate,
            text=text,
            answer=json.dumps(decision.payload),
            reference_tier=self.top,
            # In shadow the served answer is the top tier's: the reference the others meet.
            reference=json.dumps(decision.payload) if kind == SHADOW else None,
            agree=None,
            status="pending",
            cost_usd=0.0,
        )
        # The Claude answers the hot path paid for, kept for a refit (the local one is free).
        record.keep_answers(a for a in decision.answers if a.tier != LOCAL)
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
        else:
            self._queued[(tier, label)] += 1
            self._pending.append(Pending(record, time.monotonic()))
        return record

    # -- the background -------------------------------------------------------------------------

    async def start(self) -> None:
        records = await asyncio.to_thread(
            read_records, self.engine, self.name, since=self.calibrated_at, kinds=(AUDIT, SHADOW)
        )
        self._shadowed = [
            (shadow_payloads(r.answer), r.reference_payload)
            for r in records
            if r.kind == SHADOW and r.status == DONE
        ]
        self.tally.extend(a for a in (r.audited() for r in records) if a is not None)
        self.cost_usd = sum(record.cost_usd for record in records)
        self.records_seen = len(records)
        reference = await asyncio.to_thread(reference_of, self.calibrated)
        self.drift.reset(self.calibrated, reference)
        self._show()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        for task in [self._task, *self._background, *self._inflight]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None
        self.classifier.router = self.calibrated

    async def _run(self) -> None:
        tick = min(TICK_S, self.settings.batch_wait_s)
        while True:
            await asyncio.sleep(tick)
            try:
                await self._check_recalibration()
                self.metrics.show_drift(self.name, self.drift.report())
                while self._due() and len(self._inflight) < MAX_IN_FLIGHT:
                    self._launch(self._take(self.settings.batch_size))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("audit of route %r failed", self.name)

    def _launch(self, records: list[AuditRecord]) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(records))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _guarded(self, records: list[AuditRecord]) -> None:
        try:
            await self._process(records)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("audit of route %r failed; %d samples dropped", self.name, len(records))

    def _due(self) -> bool:
        if not self._pending:
            return False
        waited = time.monotonic() - self._pending[0].queued
        return (
            len(self._pending) >= self.settings.batch_size or waited >= self.settings.batch_wait_s
        )

    def _take(self, count: int) -> list[AuditRecord]:
        taken, self._pending = self._pending[:count], self._pending[count:]
        for pending in taken:
            self._queued[(pending.record.tier, pending.record.label)] -= 1
        return [pending.record for pending in taken]

    async def drain(self) -> None:
        """Audit everything queued now, whatever the wait, and wait for every batch in flight
        (tests, a demo's last step)."""
        while self._pending:
            self._launch(self._take(self.settings.batch_size))
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _process(self, records: list[AuditRecord]) -> None:
        shadowed = [r for r in records if r.kind == SHADOW and r.status == "pending"]
        if shadowed:
            texts = [r.text for r in shadowed]
            contexts = await self._contexts(texts)
            answers = await shadow_answers(self.calibrated, texts, contexts, self._ask_tier)
            for record, by_tier in zip(shadowed, answers, strict=True):
                payloads = {name: answer.payload for name, (answer, _) in by_tier.items()}
                record.answer = json.dumps(
                    {n: {"answer": a.payload, "cost_usd": c} for n, (a, c) in by_tier.items()}
                )
                record.cost_usd = sum(cost for _, cost in by_tier.values())
                record.keep_answers(a for name, (a, _) in by_tier.items() if name != LOCAL)
                record.status = DONE
                self._shadowed.append((payloads, record.reference_payload))
        asked = [r for r in records if r.kind == AUDIT and r.status == "pending"]
        if asked:
            tier = self.calibrated.tiers.get(self.top)
            if not isinstance(tier, AnthropicTier):
                for record in asked:
                    record.status, record.problem = FAILED, "the top tier is not a Claude tier"
            else:
                replies = await self._ask(tier, asked)
                for record, (answer, cost) in zip(asked, replies, strict=True):
                    self._judge(record, answer, cost)
        await asyncio.to_thread(write_records, self.engine, records)
        for record in records:
            self.records_seen += 1
            self.cost_usd += record.cost_usd
            if record.cost_usd:
                self.metrics.cost.labels(self.name).inc(record.cost_usd)
            audited = record.audited()
            if audited is not None:
                self.tally.add(audited)
        self._show()
        await self._react()

    def _judge(self, record: AuditRecord, answer: TierAnswer, cost: float) -> None:
        record.cost_usd = cost
        if not answer.usable:
            record.status, record.problem = FAILED, (answer.problem or "no answer")[:400]
            return
        record.reference = json.dumps(answer.payload)
        record.keep_answers([answer])
        record.agree = self.calibrated.task.agree(json.loads(record.answer), answer.payload)
        record.status = DONE

    async def _contexts(self, texts: list[str]) -> list[Context]:
        local = self.calibrated.local
        if local is None:
            return [Context() for _ in texts]
        return [Context(view) for view in await asyncio.to_thread(local.view, texts)]

    async def _ask(self, tier: AnthropicTier, records: Sequence[AuditRecord]) -> list[Priced]:
        items = [Item(record.text, record.request_id) for record in records]
        contexts = await self._contexts([item.text for item in items])
        return await self._ask_tier(tier, items, contexts)

    async def _ask_tier(
        self, tier: AnthropicTier, items: Sequence[Item], contexts: Sequence[Context]
    ) -> list[Priced]:
        return await ask_tier(tier, items, contexts, self.settings.mode, self.settings.poll_s)

    # -- verdicts and reactions -----------------------------------------------------------------

    @property
    def budget(self) -> float:
        return float(self.calibrated.route.error_budget)

    @property
    def confidence(self) -> float:
        return float(self.calibrated.route.confidence)

    def report(self) -> dict[str, Any]:
        report = self.tally.report(self.budget, self.confidence)
        report.update(
            route=self.name,
            calibrated_at=self.calibrated_at,
            reaction=self.settings.reaction,
            reaction_engaged=self.engaged,
            breached=self.breached_at is not None,
            breached_at=self.breached_at,
            pending=len(self._pending),
            dropped=self.dropped,
            records=self.records_seen,
            audit_cost_usd=round(self.cost_usd, 10),
            mode=self.settings.mode,
            sample_rate=self.settings.sample_rate,
            drift=self.drift.report(),
            shadow=self.settings.shadow,
            shadow_agreement=shadow_summary(self._shadowed, self.calibrated.task.agree),
        )
        return report

    def _show(self) -> None:
        report = self.tally.report(self.budget, self.confidence)
        self.metrics.show(self.name, report, self.breached_at is not None, bool(self.engaged))
        self.metrics.show_drift(self.name, self.drift.report())

    async def _react(self) -> None:
        report = self.report()
        if report["status"] != BREACHED or self.breached_at is not None:
            return
        self.breached_at = time.time()
        report.update(breached=True, breached_at=self.breached_at)
        reaction = self.settings.reaction
        log.warning(breach_message(self.name, report, reaction))
        if reaction == "top_tier":
            self.classifier.router = top_tier_router(self.calibrated)
        elif reaction == "tighten":
            self.classifier.router = tightened_router(self.calibrated, self.settings.tighten)
        self.engaged = None if reaction == "none" else reaction
        self._show()
        if self.settings.webhook:
            body = {"event": "error_budget_breached", **report, "reaction_engaged": reaction}
            task = asyncio.get_running_loop().create_task(post_webhook(self.settings.webhook, body))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # -- recalibration --------------------------------------------------------------------------

    def _calibration_path(self) -> Path:
        return Path(self.calibrated.route.artifacts) / POLICY_FILE

    def _calibration_time(self) -> float:
        try:
            return self._calibration_path().stat().st_mtime
        except OSError:
            return 0.0

    async def _check_recalibration(self) -> None:
        changed = self._calibration_time()
        if changed == self.calibrated_at:
            return
        route = self.calibrated.route
        calibration = await asyncio.to_thread(load_calibration, route)
        router = self.calibrated
        self.calibrated = Router(
            replace(route, error_budget=calibration.error_budget),
            router.tiers,
            calibration.policies,
            router.local,
        )
        # A shadow route goes on being served by its top tier, now with its calibrated policy.
        shadow = self.settings.shadow > 0
        self.classifier.router = top_tier_router(self.calibrated) if shadow else self.calibrated
        self.calibrated_at = changed
        allowance = await asyncio.to_thread(reference_error, self.calibrated.route)
        self.tally = Tally(self.settings.window, allowance)
        self.drift.reset(self.calibrated, await asyncio.to_thread(reference_of, self.calibrated))
        self.engaged = None
        self.breached_at = None
        log.warning("audit: route %r was recalibrated; its live estimate starts again", self.name)
        self._show()
