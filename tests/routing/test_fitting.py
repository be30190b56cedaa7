"""Sequential threshold fitting keeps accepted answers inside the error budget out of sample."""

from dataclasses import replace

import numpy as np
import pytest

from tiergate.datasets import Example
from tiergate.routing.fitting import fit_policies, replay, silver_labels, threshold_rows
from tiergate.routing.route import Route, load_route
from tiergate.tiers.base import TierAnswer

LABELS = ["a", "b", "c", "d"]
HAIKU = "claude-haiku-4-5"


def synthetic(count: int, seed: int) -> tuple[list[Example], dict[str, list[TierAnswer]]]:
    """Local and Haiku answers whose confidence features carry real information."""
    rng = np.random.default_rng(seed)
    examples: list[Example] = []
    runs: dict[str, list[TierAnswer]] = {"local": [], HAIKU: []}
    # (tier, feature, how fast its error falls as the feature grows, cost per call)
    shapes = (
        ("local", "local_probability", 0.5, 3, 0.0),
        (HAIKU, "stated_confidence", 0.4, 2, 0.001),
    )
    for i in range(count):
        gold = LABELS[i % len(LABELS)]
        examples.append(Example(f"ticket {seed}-{i}", gold))
        for tier, feature, scale, power, cost in shapes:
            signal = float(rng.uniform())
            right = rng.uniform() < 1 - scale * (1 - signal) ** power
            label = gold if right else LABELS[(LABELS.index(gold) + 1) % len(LABELS)]
            runs[tier].append(TierAnswer(tier, label, {feature: signal}, cost_usd=cost))
    return examples, runs


@pytest.fixture
def route(tmp_path) -> Route:  # type: ignore[no-untyped-def]
    (tmp_path / "route.yaml").write_text(
        f"name: s\nlabels: [a, b, c, d]\ntiers: [local, {HAIKU}]\nerror_budget: 0.05\n"
    )
    return load_route(tmp_path)


@pytest.mark.parametrize("mode", ["joint", "per_tier"])
async def test_accepted_error_stays_in_budget_on_fresh_data(route: Route, mode: str) -> None:
    route = replace(route, thresholds=mode)  # type: ignore[arg-type]
    examples, runs = synthetic(6000, seed=1)
    policies, fits = fit_policies(route, examples, runs)
    assert fits[0].reached == len(threshold_rows(route, len(examples)))
    assert fits[1].reached == fits[0].reached - fits[0].accepted
    assert 0 < fits[0].accepted < fits[0].reached
    fresh, fresh_runs = synthetic(6000, seed=2)
    texts = [example.text for example in fresh]
    decisions = await replay(route, policies, fresh_runs, texts, list(range(len(fresh))))
    pairs = list(zip(decisions, fresh, strict=True))
    accepted = [(d, e) for d, e in pairs if d.accepted]
    assert len(accepted) > 1000
    # What the budget promises: of all accepted answers, at most 5% wrong.
    assert sum(d.label != e.label for d, e in accepted) / len(accepted) <= route.error_budget
    if mode == "per_tier":
        # The per-tier mode promises it of each tier's accepted answers too.
        checked = 0
        for tier in ("local", HAIKU):
            mine = [(d, e) for d, e in accepted if d.tier == tier]
            if mine:
                checked += 1
                assert sum(d.label != e.label for d, e in mine) / len(mine) <= route.error_budget
        assert checked >= 1


async def test_joint_mode_certifies_more_than_per_tier_on_the_same_data(route: Route) -> None:
    examples, runs = synthetic(3000, seed=7)
    rows = list(range(len(examples)))
    texts = [example.text for example in examples]
    shares = {}
    for mode in ("joint", "per_tier"):
        variant = replace(route, thresholds=mode)
        policies, _ = fit_policies(variant, examples, runs)
        decisions = await replay(variant, policies, runs, texts, rows)
        shares[mode] = np.mean([d.accepted for d in decisions])
    assert shares["joint"] >= shares["per_tier"]


async def test_a_tighter_budget_accepts_less(route: Route) -> None:
    examples, runs = synthetic(4000, seed=5)
    loose, _ = fit_policies(route, examples, runs)
    tight, _ = fit_policies(replace(route, error_budget=0.01), examples, runs)
    texts = [example.text for example in examples]
    rows = list(range(len(examples)))
    loose_share = np.mean([d.accepted for d in await replay(route, loose, runs, texts, rows)])
    tight_share = np.mean([d.accepted for d in await replay(route, tight, runs, texts, rows)])
    assert tight_share < loose_share


def test_the_top_tier_stands_in_where_gold_is_missing(route: Route) -> None:
    examples, runs = synthetic(8, seed=3)
    examples[1] = Example(examples[1].text, "")  # no gold label
    examples[2] = Example(examples[2].text, "")
    runs[HAIKU][2] = TierAnswer(HAIKU, None, {}, problem="the model refused")
    filled, kept, silver = silver_labels(route, examples, runs)
    assert silver == 1
    # The unlabelled ticket the top tier could not answer is dropped, from examples and runs alike.
    assert [e.text for e in filled] == [e.text for i, e in enumerate(examples) if i != 2]
    assert all(len(answers) == len(filled) for answers in kept.values())
    assert filled[1].label == runs[HAIKU][1].label and filled[1].provenance == f"silver:{HAIKU}"
