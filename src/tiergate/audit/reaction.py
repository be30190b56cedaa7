"""What a breached budget does to a route: the serving router, rebuilt with other policies.

The engine is unchanged: a reaction is a :class:`~tiergate.routing.engine.Router` over the same
tiers and local model with other policies, swapped in for the route until it is recalibrated.

- ``top_tier``: every tier but the top one is skipped, so the route's traffic goes to it.
- ``tighten``: each cheaper tier's thresholds move toward 1 by a share (``t + (1 - t) * s``):
  the doubt it may accept shrinks by that share; the top tier's are kept.
"""

from __future__ import annotations

import math
from dataclasses import replace

from tiergate.calibration.thresholds import PerLabelThresholds, ThresholdResult
from tiergate.routing.engine import Router
from tiergate.routing.policy import TierPolicy


def top_tier_router(router: Router) -> Router:
    """Only the top tier answers (even when the calibrated ladder left it out: then its
    answers are flagged rather than accepted, as the route's ``when_unsure`` says)."""
    top = router.route.tiers[-1]
    policies = {
        name: replace(policy, skipped=name != top) for name, policy in router.policies.items()
    }
    return _with(router, policies)


def tightened_router(router: Router, share: float) -> Router:
    top = router.route.tiers[-1]
    policies = {
        name: policy if name == top else _tighten(policy, share)
        for name, policy in router.policies.items()
    }
    return _with(router, policies)


def _tighten(policy: TierPolicy, share: float) -> TierPolicy:
    def moved(result: ThresholdResult) -> ThresholdResult:
        if not math.isfinite(result.threshold):
            return result
        return replace(result, threshold=result.threshold + (1.0 - result.threshold) * share)

    thresholds = PerLabelThresholds(
        moved(policy.thresholds.global_result),
        {label: moved(result) for label, result in policy.thresholds.per_label.items()},
    )
    return replace(policy, thresholds=thresholds)


def _with(router: Router, policies: dict[str, TierPolicy]) -> Router:
    return Router(router.route, router.tiers, policies, router.local)
