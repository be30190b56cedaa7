"""Reactions to a breach: routers over the same tiers with other policies."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from tiergate.audit.reaction import tightened_router, top_tier_router
from tiergate.calibration import Calibrator, PerLabelThresholds
from tiergate.calibration.thresholds import ThresholdResult
from tiergate.routing.engine import Router
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import load_route

HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"


def policy(threshold: float, **per_label: float) -> TierPolicy:
    def result(value: float) -> ThresholdResult:
        return ThresholdResult(value, 0.05, 0.1, 0.5, 10, 0, 0.2, 20)

    return TierPolicy(
        Calibrator(("x",), (0.0,), (1.0,), (1.0,), 0.0),
        PerLabelThresholds(result(threshold), {k: result(v) for k, v in per_label.items()}),
    )


@pytest.fixture
def router(tmp_path: Path) -> Router:
    (tmp_path / "route.yaml").write_text(
        yaml.safe_dump(
            {"name": "r", "labels": ["a", "b"], "tiers": [HAIKU, SONNET], "error_budget": 0.05}
        )
    )
    policies = {HAIKU: policy(0.8, a=0.6), SONNET: policy(0.7)}
    return Router(load_route(tmp_path / "route.yaml"), {}, policies, None)


def test_tighten_moves_cheaper_thresholds_toward_one_and_keeps_the_top(router: Router) -> None:
    tightened = tightened_router(router, 0.5)
    haiku = tightened.policies[HAIKU]
    assert haiku.threshold_for("b") == pytest.approx(0.9)  # 0.8 + 0.2 / 2
    assert haiku.threshold_for("a") == pytest.approx(0.8)  # 0.6 + 0.4 / 2
    assert tightened.policies[SONNET].threshold_for("b") == pytest.approx(0.7)
    assert router.policies[HAIKU].threshold_for("b") == pytest.approx(0.8)  # unchanged


def test_tighten_leaves_a_tier_that_accepts_nothing_as_it_is(router: Router) -> None:
    router.policies[HAIKU] = policy(math.inf)
    assert tightened_router(router, 0.5).policies[HAIKU].threshold_for("a") == math.inf


def test_top_tier_skips_every_cheaper_tier(router: Router) -> None:
    forced = top_tier_router(router)
    assert forced.policies[HAIKU].skipped and not forced.policies[SONNET].skipped


def test_top_tier_answers_even_where_the_calibrated_ladder_left_it_out(router: Router) -> None:
    from dataclasses import replace

    router.policies[SONNET] = replace(router.policies[SONNET], skipped=True)
    forced = top_tier_router(router)
    assert not forced.policies[SONNET].skipped and forced.policies[HAIKU].skipped
