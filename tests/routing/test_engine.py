import math

import pytest
from routing_fakes import sigmoid_policy, view

from tiergate.routing.engine import NotCalibratedError, Router
from tiergate.routing.route import Route, load_route
from tiergate.tasks.base import Context, Item
from tiergate.tiers.base import TierAnswer
from tiergate.tiers.replay import ReplayTier, ReplayViewer

HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.fixture
def route(tmp_path) -> Route:  # type: ignore[no-untyped-def]
    (tmp_path / "route.yaml").write_text(
        "name: t\nlabels: [card_arrival, lost_card, refund]\n"
        f"tiers: [local, {HAIKU}, {SONNET}]\nwhen_unsure: flag\n"
    )
    return load_route(tmp_path)


def claude(
    tier: str, label: str | None, stated: float, cost: float, problem: str | None = None
) -> TierAnswer:
    return TierAnswer(
        tier,
        label,
        {"stated_confidence": stated} if label else {},
        cost_usd=cost,
        stated_confidence=stated,
        problem=problem,
        model=tier,
    )


def make_router(
    route: Route, text: str, local_probability: float, haiku: TierAnswer, sonnet: TierAnswer
) -> Router:
    policies = {
        "local": sigmoid_policy("local_probability", sigmoid(0.9)),  # local accepts p >= 0.9
        HAIKU: sigmoid_policy("stated_confidence", sigmoid(0.8)),
        SONNET: sigmoid_policy("stated_confidence", sigmoid(0.7)),
    }
    tiers = {HAIKU: ReplayTier(HAIKU, {text: haiku}), SONNET: ReplayTier(SONNET, {text: sonnet})}
    viewer = ReplayViewer({text: view("card_arrival", local_probability)})
    return Router(route, tiers, policies, viewer)


async def test_the_local_tier_answers_when_it_is_sure(route: Route) -> None:
    router = make_router(
        route,
        "t",
        0.95,
        claude(HAIKU, "refund", 0.99, 0.001),
        claude(SONNET, "refund", 0.99, 0.003),
    )
    decision = await router.classify("t")
    assert (decision.label, decision.tier, decision.accepted, decision.escalated) == (
        "card_arrival",
        "local",
        True,
        False,
    )
    assert decision.cost_usd == 0.0 and len(decision.trace) == 1


async def test_a_ticket_climbs_until_a_tier_is_sure(route: Route) -> None:
    router = make_router(
        route,
        "t",
        0.5,
        claude(HAIKU, "refund", 0.6, 0.001),
        claude(SONNET, "lost_card", 0.95, 0.003),
    )
    decision = await router.classify("t")
    assert (decision.label, decision.tier, decision.accepted) == ("lost_card", SONNET, True)
    assert [step.tier for step in decision.trace] == ["local", HAIKU, SONNET]
    assert [step.accepted for step in decision.trace] == [False, False, True]
    assert decision.cost_usd == pytest.approx(0.004)
    assert decision.escalated


async def test_an_unusable_answer_is_never_returned(route: Route) -> None:
    bad = claude(HAIKU, None, 0.99, 0.001, problem="label outside the label set: 'pizza'")
    router = make_router(route, "t", 0.5, bad, claude(SONNET, "refund", 0.99, 0.003))
    decision = await router.classify("t")
    assert (decision.label, decision.tier) == ("refund", SONNET)
    assert decision.trace[1].problem is not None and decision.trace[1].payload is None


async def test_when_nobody_is_sure_the_top_answer_is_flagged(route: Route) -> None:
    router = make_router(
        route,
        "t",
        0.5,
        claude(HAIKU, "refund", 0.5, 0.001),
        claude(SONNET, "lost_card", 0.5, 0.003),
    )
    decision = await router.classify("t")
    assert (decision.label, decision.tier, decision.accepted, decision.flagged) == (
        "lost_card",
        SONNET,
        False,
        True,
    )


async def test_or_handed_to_a_human(route: Route) -> None:
    from dataclasses import replace

    human = replace(route, when_unsure="human")
    router = make_router(
        human,
        "t",
        0.5,
        claude(HAIKU, "refund", 0.5, 0.001),
        claude(SONNET, "lost_card", 0.5, 0.003),
    )
    decision = await router.classify("t")
    assert decision.label is None and decision.handed_to_human and not decision.flagged
    assert decision.to_dict()["handed_to_human"] is True


async def test_a_ladder_without_calibration_is_refused(route: Route) -> None:
    with pytest.raises(NotCalibratedError, match="tiergate calibrate"):
        Router(route, {}, {}, None)


class Recording:
    """A tier that answers with a fixed label and keeps the contexts it was asked with."""

    def __init__(self, name: str, label: str, stated: float) -> None:
        self.name = name
        self.label, self.stated = label, stated
        self.seen: list[Context] = []

    async def answer(self, item: Item, context: Context) -> TierAnswer:
        self.seen.append(context)
        return claude(self.name, self.label, self.stated, 0.001)

    async def aclose(self) -> None:
        return None


async def test_a_tier_sees_the_usable_answers_of_the_tiers_below(route: Route) -> None:
    haiku, sonnet = Recording(HAIKU, "lost_card", -5.0), Recording(SONNET, "refund", 5.0)
    policies = {
        "local": sigmoid_policy("local_probability", 0.99),
        HAIKU: sigmoid_policy("stated_confidence", 0.5),
        SONNET: sigmoid_policy("stated_confidence", 0.5),
    }
    viewer = ReplayViewer({"where is my card": view("card_arrival", 0.6)})
    router = Router(route, {HAIKU: haiku, SONNET: sonnet}, policies, viewer)
    decision = await router.decide("where is my card")
    assert decision.tier == SONNET and decision.payload == "refund"
    assert [c.earlier for c in haiku.seen] == [(("local", "card_arrival"),)]
    assert [c.earlier for c in sonnet.seen] == [(("local", "card_arrival"), (HAIKU, "lost_card"))]
