"""What it takes to reach a target saving against strong-only: each lever alone, then together."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from tiergate.core.calculator import Levers, Workload, tiered_per_request
from tiergate.core.cost import price_usage
from tiergate.core.prices import ModelPrice
from tiergate.core.usage import Usage

LeverName = Literal["escalation", "local", "cached_input", "batch"]
GRID_STEPS = 1000
# The combined recipes assume half the traffic can wait for the Message Batches API.
COMBINED_BATCH_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class LeverAnswer:
    lever: str
    needed: float | None  # the lever's value that reaches the target, None if out of reach
    best_saving: float  # the best saving this lever reaches on its own
    explanation: str


@dataclass(frozen=True)
class TargetReport:
    target: float
    current_saving: float
    cheap_only_saving: float
    answers: list[LeverAnswer]

    @property
    def reachable(self) -> bool:
        return self.current_saving >= self.target or any(a.needed is not None for a in self.answers)


def _saving(workload: Workload, levers: Levers, cheap: ModelPrice, strong: ModelPrice) -> float:
    strong_only = price_usage(
        Usage(workload.input_tokens, workload.output_tokens), strong
    ).total_usd
    if strong_only <= 0:
        return 0.0
    return 1.0 - tiered_per_request(workload, levers, cheap, strong) / strong_only


def _scan(
    workload: Workload,
    levers: Levers,
    cheap: ModelPrice,
    strong: ModelPrice,
    lever: LeverName,
    target: float,
) -> tuple[float | None, float]:
    """The value of ``lever`` nearest its no-effort end that reaches ``target``; the best saving."""
    if lever == "escalation":
        top = 1.0 - levers.local
        values = [top * (GRID_STEPS - step) / GRID_STEPS for step in range(GRID_STEPS + 1)]
    elif lever == "local":
        top = 1.0 - levers.escalation
        values = [top * step / GRID_STEPS for step in range(GRID_STEPS + 1)]
    else:
        values = [step / GRID_STEPS for step in range(GRID_STEPS + 1)]
    best = float("-inf")
    for value in values:
        changed: Levers = replace(levers, **{lever: value})  # type: ignore[arg-type]
        saving = _saving(workload, changed, cheap, strong)
        best = max(best, saving)
        if saving >= target - 1e-12:
            return value, best
    return None, best


def what_it_takes(
    workload: Workload, levers: Levers, cheap: ModelPrice, strong: ModelPrice, target: float
) -> TargetReport:
    current = _saving(workload, levers, cheap, strong)
    cheap_only = _saving(workload, Levers(escalation=0.0), cheap, strong)
    answers: list[LeverAnswer] = []

    needed, best = _scan(workload, levers, cheap, strong, "escalation", target)
    if needed is None:
        why = (
            f"even with nothing escalated the tiered cost is {1 - best:.1%} of strong-only "
            f"(a {best:.1%} saving)"
        )
        if levers.local == 0 and levers.batch == 0 and levers.cached_input == 0:
            why += f": model choice alone cannot reach {target:.0%}"
        answers.append(LeverAnswer("escalation", None, best, f"out of reach: {why}"))
    else:
        answers.append(
            LeverAnswer(
                "escalation", needed, best, f"keep escalation at or below {needed:.1%} of requests"
            )
        )

    for lever, wording in (
        ("local", "answer at least {value:.1%} of requests with the local tier"),
        ("cached_input", "read at least {value:.1%} of input tokens from the prompt cache"),
        ("batch", "send at least {value:.1%} of requests through the Message Batches API"),
    ):
        needed, best = _scan(workload, levers, cheap, strong, lever, target)  # type: ignore[arg-type]
        if needed is None:
            explanation = f"out of reach alone: at most a {best:.1%} saving"
            if lever == "cached_input" and best <= current + 1e-9:
                explanation += (
                    f" (a {workload.input_tokens:,.0f}-token prompt is below the minimum cacheable "
                    f"prefix of {cheap.name} ({cheap.min_cacheable_tokens:,}) and "
                    f"{strong.name} ({strong.min_cacheable_tokens:,}))"
                )
        else:
            explanation = wording.format(value=needed)
        answers.append(LeverAnswer(lever, needed, best, explanation))

    # Together: half the traffic batched, and the local share each of a few escalation levels needs.
    batch = max(levers.batch, COMBINED_BATCH_SHARE)
    for escalation in sorted({levers.escalation, levers.escalation / 2, 0.05}, reverse=True):
        together = replace(levers, batch=batch, escalation=min(escalation, 1.0 - levers.local))
        needed, best = _scan(workload, together, cheap, strong, "local", target)
        label = (
            f"together ({together.escalation:.1%} escalated, {batch:.0%} batched, "
            f"{levers.cached_input:.0%} of input cached)"
        )
        if needed is None:
            answers.append(
                LeverAnswer(label, None, best, f"out of reach: at most a {best:.1%} saving")
            )
        else:
            answers.append(
                LeverAnswer(label, needed, best, f"answer at least {needed:.1%} locally")
            )
    return TargetReport(target, current, cheap_only, answers)
