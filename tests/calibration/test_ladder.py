"""The ladder certification: monotone in the budget, cost-aware, and inside the budget."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiergate.calibration.ladder import (
    Family,
    OwnEvidence,
    TierEvidence,
    families_of,
    walk_all,
)


def tier(
    rng: np.random.Generator, name: str, count: int, skill: float, cost: float, free: bool = False
) -> TierEvidence:
    """A tier whose calibrated scores carry information: right answers score higher."""
    signal = rng.uniform(size=count)
    correct = rng.uniform(size=count) < 1 - (1 - skill) * 2 * (1 - signal)
    scores = np.clip(signal + rng.normal(0, 0.05, count), 0, 1)
    unusable = rng.uniform(size=count) < 0.02
    scores = np.where(unusable, -np.inf, scores)
    return TierEvidence(
        name, scores, correct & ~unusable, np.full(count, cost, dtype=np.float64), free
    )


@st.composite
def ladders(draw: st.DrawFn) -> tuple[list[TierEvidence], OwnEvidence | None]:
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    count = draw(st.integers(200, 1500))
    with_local = draw(st.booleans())
    paid = draw(st.integers(0 if with_local else 1, 2))
    tiers: list[TierEvidence] = []
    own = None
    if with_local:
        tiers.append(tier(rng, "local", count, draw(st.floats(0.7, 0.99)), 0.0, free=True))
        if draw(st.booleans()):
            extra = tier(rng, "local", count * 3, 0.9, 0.0, free=True)
            own = OwnEvidence(extra.scores, extra.correct)
    for index in range(paid):
        skill = draw(st.floats(0.8, 0.99))
        tiers.append(tier(rng, f"paid{index}", count, skill, 0.001 * 3**index))
    return tiers, own


@settings(max_examples=25, deadline=None)
@given(ladders(), st.floats(0.0, 0.05))
def test_a_looser_budget_never_costs_more_and_a_free_ladder_never_accepts_less(
    drawn: tuple[list[TierEvidence], OwnEvidence | None], unaccepted_cost: float
) -> None:
    tiers, own = drawn
    free_only = all(t.free for t in tiers)
    walks = walk_all(tiers, 0.05, own)
    previous_accepted, previous_objective = 0, float("inf")
    for budget in (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2):
        chosen = walks.fit(budget, unaccepted_cost).chosen
        if chosen is None:
            assert previous_accepted == 0
            continue
        assert chosen.entry_budget <= budget
        assert chosen.objective(unaccepted_cost) <= previous_objective + 1e-12
        if free_only:
            assert chosen.accepted >= previous_accepted
        previous_accepted = chosen.accepted
        previous_objective = chosen.objective(unaccepted_cost)


@settings(max_examples=25, deadline=None)
@given(ladders(), st.floats(0.001, 0.05), st.floats(0.01, 0.1))
def test_the_choice_is_the_cheapest_certified_configuration(
    drawn: tuple[list[TierEvidence], OwnEvidence | None], unaccepted_cost: float, budget: float
) -> None:
    tiers, own = drawn
    walks = walk_all(tiers, 0.05, own)
    fit = walks.fit(budget, unaccepted_cost)
    certified = [c for c in walks.candidates if c.entry_budget <= budget]
    if fit.chosen is None:
        assert not certified
        return
    assert min(c.objective(unaccepted_cost) for c in certified) == pytest.approx(
        fit.chosen.objective(unaccepted_cost)
    )


@settings(max_examples=20, deadline=None)
@given(ladders(), st.floats(0.01, 0.1))
def test_the_choice_is_never_dearer_than_a_certified_ladder_accepting_as_much(
    drawn: tuple[list[TierEvidence], OwnEvidence | None], budget: float
) -> None:
    tiers, own = drawn
    walks = walk_all(tiers, 0.05, own)
    fit = walks.fit(budget, 0.0)
    if fit.chosen is None:
        assert not [c for c in walks.candidates if c.entry_budget <= budget]
        return
    for candidate in walks.candidates:
        if candidate.entry_budget <= budget and candidate.accepted >= fit.chosen.accepted:
            assert candidate.cost_usd >= fit.chosen.cost_usd - 1e-12


def test_every_sub_ladder_up_to_the_top_is_a_family_and_the_free_tier_gets_multiples() -> None:
    rng = np.random.default_rng(0)
    tiers = [
        tier(rng, "local", 100, 0.9, 0.0, free=True),
        tier(rng, "haiku", 100, 0.9, 0.001),
        tier(rng, "sonnet", 100, 0.95, 0.003),
    ]
    families = families_of(tiers)
    ladders_seen = {family.tiers for family in families}
    # Every sub-ladder keeps the top tier (it answers what nothing below it could), and the free
    # tier alone is one too.
    assert ladders_seen == {(0, 1, 2), (0, 2), (1, 2), (2,), (0,)}
    assert {f.free_multiple for f in families if f.tiers == (0, 1, 2)} == {1.0, 2.0, 4.0, 8.0}
    assert [f.free_multiple for f in families if f.tiers == (1, 2)] == [1.0]


def test_a_free_ladder_breaks_cost_ties_toward_accepting_more() -> None:
    rng = np.random.default_rng(3)
    local = tier(rng, "local", 3000, 0.97, 0.0, free=True)
    walks = walk_all([local], 0.05)
    shares = [walks.fit(budget, 0.0).chosen for budget in (0.01, 0.02, 0.05)]
    accepted = [0 if c is None else c.accepted for c in shares]
    assert accepted == sorted(accepted) and accepted[-1] > accepted[0]
    chosen = shares[-1]
    assert chosen is not None
    # The furthest certified point of the path: nothing certified accepts more.
    assert chosen.accepted == max(c.accepted for c in walks.candidates if c.entry_budget <= 0.05)


def test_accepted_error_stays_in_budget_on_fresh_tickets() -> None:
    """The promise, checked out of sample over many draws: at most 5% of draws may break it
    (delta), and the procedure is conservative, so far fewer do."""
    budget, broken, draws = 0.03, 0, 12
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        skills = (0.9, 0.93, 0.97)
        calibration = [
            tier(rng, "local", 1500, skills[0], 0.0, True),
            tier(rng, "haiku", 1500, skills[1], 0.001),
            tier(rng, "sonnet", 1500, skills[2], 0.003),
        ]
        extra = tier(rng, "local", 4000, skills[0], 0.0, True)
        walks = walk_all(calibration, 0.05, OwnEvidence(extra.scores, extra.correct))
        chosen = walks.fit(budget, 0.01).chosen
        if chosen is None:
            continue
        fresh = [
            tier(rng, name, 10_000, skill, cost, name == "local")
            for name, skill, cost in zip(
                ("local", "haiku", "sonnet"), skills, (0.0, 0.001, 0.003), strict=True
            )
        ]
        members = [fresh[index] for index in chosen.family.tiers]
        scores = np.column_stack([t.scores for t in members])
        correct = np.column_stack([t.correct for t in members])
        accepts = scores >= np.array(chosen.thresholds)[None, :]
        accepted = accepts.any(axis=1)
        first = accepts.argmax(axis=1)
        wrong = accepted & ~correct[np.arange(len(first)), first]
        if wrong.sum() / max(1, accepted.sum()) > budget:
            broken += 1
    assert broken <= 1


def test_family_names_follow_the_route() -> None:
    rng = np.random.default_rng(1)
    tiers = [tier(rng, "local", 10, 0.9, 0.0, True), tier(rng, "haiku", 10, 0.9, 0.001)]
    assert Family((0, 1), 2.0).names(tiers) == ("local", "haiku")


def test_a_whole_ladder_has_only_the_whole_ladder_as_family() -> None:
    rng = np.random.default_rng(1)
    paid = [tier(rng, "haiku", 300, 0.9, 0.001), tier(rng, "sonnet", 300, 0.95, 0.003)]
    assert [f.tiers for f in families_of(paid, whole=True)] == [(0, 1)]
    with_local = [tier(rng, "local", 300, 0.9, 0.0, free=True), *paid]
    families = families_of(with_local, whole=True)
    assert {f.tiers for f in families} == {(0, 1, 2)}
    assert {f.free_multiple for f in families} == {1.0, 2.0, 4.0, 8.0}
    walks = walk_all(paid, 0.05, whole=True)
    chosen = walks.fit(0.15, 0.01).chosen
    assert chosen is not None and chosen.family.tiers == (0, 1)
