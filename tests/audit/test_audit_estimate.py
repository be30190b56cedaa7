"""The live estimate: counts, Clopper-Pearson bounds and the verdict; the audit config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tiergate.audit.estimate import BREACHED, UNPROVEN, WITHIN, Audited, Tally
from tiergate.calibration.bounds import clopper_pearson_upper
from tiergate.gateway.config import ConfigError, GatewayConfig, parse_config


def test_no_audits_prove_nothing_and_raise_no_alarm() -> None:
    report = Tally(window=50).report(budget=0.05, confidence=0.9)
    assert report["status"] == UNPROVEN
    assert report["window"]["upper_bound"] == 1.0 and report["window"]["lower_bound"] == 0.0


def test_enough_agreement_certifies_and_enough_errors_breach() -> None:
    tally = Tally(window=100)
    tally.extend(Audited("local", "a", True, True) for _ in range(60))
    report = tally.report(budget=0.05, confidence=0.9)
    assert report["status"] == WITHIN  # 0 of 60: the upper bound is 3.8%
    assert report["window"]["upper_bound"] == pytest.approx(clopper_pearson_upper(0, 60, 0.1))
    tally.extend(Audited("local", "b", False, True) for _ in range(10))
    report = tally.report(budget=0.05, confidence=0.9)
    assert report["status"] == BREACHED  # 10 of 70: the lower bound is above 5%
    assert report["window"]["lower_bound"] > 0.05
    labels = {row["label"]: row for row in report["tiers"][0]["labels"]}
    assert labels["b"]["errors"] == 10 and labels["a"]["errors"] == 0


def test_the_references_own_error_is_allowed_before_an_alarm() -> None:
    """Disagreement with a reference wrong 7% of the time is no breach of a 1% budget until
    it exceeds the budget plus those 7% (the error is at least disagreement less 7%)."""
    steady = [Audited("local", "a", i % 12 != 0, True) for i in range(300)]  # 8.3% disagree
    plain, allowing = Tally(window=300), Tally(window=300, allowance=0.07)
    for tally in (plain, allowing):
        tally.extend(steady)
    assert plain.report(budget=0.01, confidence=0.95)["status"] == BREACHED
    report = allowing.report(budget=0.01, confidence=0.95)
    assert report["status"] == UNPROVEN and report["reference_error"] == 0.07
    allowing.extend(Audited("local", "b", False, True) for _ in range(60))  # the drift
    report = allowing.report(budget=0.01, confidence=0.95)
    assert report["window"]["lower_bound"] > 0.08
    assert report["status"] == BREACHED


def test_the_window_forgets_and_since_calibration_does_not() -> None:
    tally = Tally(window=20)
    tally.extend(Audited("local", "a", False, True) for _ in range(10))
    tally.extend(Audited("local", "a", True, True) for _ in range(20))
    report = tally.report(budget=0.05, confidence=0.9)
    assert report["window"]["errors"] == 0 and report["window"]["audited"] == 20
    assert report["since_calibration"]["errors"] == 10
    assert report["status_since_calibration"] == BREACHED


def test_stratum_minimum_samples_count_for_their_tier_not_for_the_route() -> None:
    tally = Tally(window=20)
    tally.extend(Audited("haiku", "x", False, False) for _ in range(5))
    report = tally.report(budget=0.05, confidence=0.9)
    assert report["window"]["audited"] == 0
    assert report["tiers"][0]["since_calibration"]["errors"] == 5
    assert tally.count("haiku", "x") == 5


def gateway_config(audit: object, routes: object = None, base: Path = Path("/")) -> GatewayConfig:
    raw = {"routes": routes or {}, "audit": audit}
    return parse_config(raw, base, {}, "gateway.yaml")


@pytest.mark.parametrize(
    ("audit", "field"),
    [
        ({"r": {"sample_rate": 1.5}}, "audit.r.sample_rate"),
        ({"r": {"mode": "later"}}, "audit.r.mode"),
        ({"r": {"reaction": "panic"}}, "audit.r.reaction"),
        ({"r": {"window": 0}}, "audit.r.window"),
        ({"r": {"webhook": "ftp://x"}}, "audit.r.webhook"),
        ({"r": {"rate": 0.1}}, "audit.r.rate"),
        ({"r": {"shadow": -0.1}}, "audit.r.shadow"),
        ([1], "audit"),
    ],
)
def test_bad_audit_settings_name_the_field(audit: object, field: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(field)):
        gateway_config(audit)


def test_an_audited_route_must_be_an_engine_route() -> None:
    with pytest.raises(ConfigError, match=re.escape("audit.nope: not an engine route")):
        gateway_config({"nope": {}})


def test_audit_settings_default_to_half_price_batches(tmp_path: Path) -> None:
    route = {"name": "t", "labels": ["a", "b"], "tiers": ["claude-haiku-4-5", "claude-sonnet-4-6"]}
    (tmp_path / "route.yaml").write_text(yaml.safe_dump(route))
    routes = {"tickets": {"kind": "classify", "route": "route.yaml"}}
    audit = {"tickets": {"sample_rate": 0.1, "reaction": "tighten"}}
    config = gateway_config(audit, routes, tmp_path)
    settings = config.audits["tickets"]
    assert (settings.route, settings.mode, settings.sample_rate) == ("tickets", "batches", 0.1)
    assert settings.reaction == "tighten" and settings.shadow == 0.0
