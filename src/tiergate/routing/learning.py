"""Learning from escalations: higher tiers' accepted answers teach the local tier.

Tickets are routed in order, a chunk at a time. After each chunk, the answers that a Claude tier
gave *and that were accepted* (so inside the error budget) join the local model's examples with
their provenance (the model that answered): they are few-shot examples and neighbour votes at
once, and the linear classifier learns them at the retrain that follows. Then every tier's
policy is fitted again on the calibration data, as ``tiergate calibrate`` did, with the new
local model's answers and the Claude answers recorded at calibration (so it costs nothing), and
the guarantee follows the model as it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tiergate.datasets import Example
from tiergate.routing.engine import Router, local_answer
from tiergate.routing.fitting import fit_policies
from tiergate.routing.route import LOCAL
from tiergate.routing.runtime import LocalModelViewer, own_rows
from tiergate.tasks.base import Context
from tiergate.tiers.base import TierAnswer


@dataclass(frozen=True, slots=True)
class ChunkResult:
    index: int
    tickets: int
    shares: dict[str, float]  # tier -> share of the chunk's tickets it answered (accepted)
    unaccepted_share: float
    accuracy: float | None
    cost_per_1000_usd: float
    learned: int  # examples added after this chunk
    pool: int  # the local model's examples after this chunk


def refit_policies(
    router: Router, calibration: Sequence[Example], recorded: Mapping[str, Sequence[TierAnswer]]
) -> None:
    """Fit every tier's policy again: the local tier answers the calibration tickets anew (free),
    the Claude tiers' answers are those recorded by ``tiergate calibrate``."""
    if router.local is None or LOCAL not in router.route.tiers:
        return
    views = router.local.view([example.text for example in calibration])
    runs = dict(recorded)
    runs[LOCAL] = [
        local_answer(Context(view)) for example, view in zip(calibration, views, strict=True)
    ]
    own = own_rows(router.local) if isinstance(router.local, LocalModelViewer) else None
    fitted = fit_policies(router.route, calibration, runs, own)
    router.policies.update(fitted.policies)


async def learn(
    router: Router,
    stream: Sequence[Example],
    calibration: Sequence[Example],
    recorded: Mapping[str, Sequence[TierAnswer]],
    *,
    chunk: int = 500,
    progress: Callable[[ChunkResult], None] | None = None,
) -> list[ChunkResult]:
    if not isinstance(router.local, LocalModelViewer):
        raise ValueError("learning needs the route's local model")
    model = router.local.model
    results: list[ChunkResult] = []
    for index, start in enumerate(range(0, len(stream), chunk)):
        part = stream[start : start + chunk]
        decisions = await router.classify_many([example.text for example in part])
        shares = {
            tier: sum(1 for d in decisions if d.accepted and d.tier == tier) / len(part)
            for tier in router.route.tiers
        }
        task = router.task
        has_gold = all(task.known_gold(example.label) for example in part)
        accuracy = (
            sum(task.correct(d.payload, e.label) for d, e in zip(decisions, part, strict=True))
            / len(part)
            if has_gold
            else None
        )
        taught = [
            (d.text, str(d.payload), d.tier)
            for d in decisions
            if d.accepted and d.tier not in (None, LOCAL)
        ]
        if taught:
            model.add_examples(
                [text for text, _, _ in taught],
                [label for _, label, _ in taught],
                [tier or "" for _, _, tier in taught],
            )
            model.retrain()
            refit_policies(router, calibration, recorded)
        result = ChunkResult(
            index=index,
            tickets=len(part),
            shares=shares,
            unaccepted_share=sum(1 for d in decisions if not d.accepted) / len(part),
            accuracy=accuracy,
            cost_per_1000_usd=sum(d.cost_usd for d in decisions) / len(part) * 1000,
            learned=len(taught),
            pool=len(model.examples),
        )
        results.append(result)
        if progress is not None:
            progress(result)
    return results
