"""The audit loop through a real gateway: a scripted drift scenario on a BANKING77 route.

A route calibrated on 8 intents serves a stream whose later part comes from 4 other intents.
The audit (Message Batches against the emulator) must stay quiet on the steady stream, cross
the budget within a bounded number of drifted requests, show it on /metrics and /v1/audit,
engage the reaction (traffic to the top tier) and call the webhook; `calibrate --from-audit`
then refits on the audited traffic and the gateway takes the new calibration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gw_audit import Scenario, Webhook, auditing_gateway, route_copy, send_stream
from gw_helpers import HAIKU, SONNET

pytest_plugins = ("gw_audit_fixtures",)

STEADY = 200
DRIFTED = 100  # detection must come within this many drifted requests


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


def test_a_steady_stream_raises_no_alarm(scenario: Scenario, tmp_path: Path) -> None:
    with auditing_gateway(tmp_path, scenario) as (gateway, admin):
        stream = send_stream(gateway, admin, scenario.steady[:STEADY])
        with gateway.client(admin) as operator:
            report: Any = operator.get("/v1/audit", cast_to=object)
            usage: Any = operator.get("/v1/usage", cast_to=object)
    tickets = report["routes"]["tickets"]
    assert "breached" not in stream.statuses
    assert tickets["reaction_engaged"] is None
    assert tickets["window"]["audited"] >= 30  # a quarter of the stream's accepted answers
    audit_spend = usage["audit"]["by_route"]["tickets"]["spend_usd"]
    assert audit_spend == pytest.approx(tickets["audit_cost_usd"])
    strong_only = usage["total"]["strong_only_usd"]
    # A quarter of the answers asked again at half price (plus the prompt's cache writes).
    assert 0 < audit_spend < 0.3 * strong_only
    print(
        f"\nno drift: {STEADY} requests, 0 false alarms in {len(stream.statuses)} checks; "
        f"{_costs(usage)}"
    )


def _costs(usage: Any) -> str:
    total, audit = usage["total"], usage["audit"]["spend_usd"]
    return (
        f"serving ${total['spend_usd']:.4f}, audit ${audit:.4f} "
        f"({audit / total['strong_only_usd']:.1%} of the strong-only cost "
        f"${total['strong_only_usd']:.4f})"
    )


def test_drift_is_detected_the_reaction_engages_and_recalibration_restores(
    scenario: Scenario, tmp_path: Path, webhook: Webhook
) -> None:
    folder = tmp_path / "gateway"
    route = route_copy(scenario, tmp_path / "route")  # recalibrated below
    with auditing_gateway(folder, scenario, route=route, webhook=webhook.url, sample_rate=0.5) as (
        gateway,
        admin,
    ):
        steady = send_stream(gateway, admin, scenario.steady[: STEADY // 2])
        assert "breached" not in steady.statuses
        drifted = send_stream(gateway, admin, scenario.drifted[:DRIFTED])
        assert drifted.first_breach is not None, drifted.statuses
        detected_after = drifted.first_breach
        # From the chunk after the breach on, the route's traffic goes to the top tier.
        chunk_end = -(-detected_after // 10) * 10
        assert set(drifted.tiers[chunk_end:]) <= {SONNET}
        with gateway.client(admin) as operator:
            report: Any = operator.get("/v1/audit?route=tickets", cast_to=object)
            metrics = operator.get("/metrics", cast_to=str)
            usage: Any = operator.get("/v1/usage", cast_to=object)
        tickets = report["routes"]["tickets"]
        # The breach stands until recalibration, though top-tier answers (agreeing with
        # themselves) now refill the window.
        assert tickets["breached"] is True
        assert tickets["since_calibration"]["errors"] > 0
        assert tickets["reaction_engaged"] == "top_tier"
        assert 'tiergate_audit_breached{route="tickets"} 1.0' in metrics
        assert 'tiergate_audit_reaction_engaged{route="tickets"} 1.0' in metrics
        assert [body["route"] for body in webhook.received] == ["tickets"]
        assert webhook.received[0]["event"] == "error_budget_breached"
        costs = _costs(usage)

        # The command line's report reads the same records from the ledger.
        printed = tiergate("audit", "tickets", "--config", str(folder / "gateway.yaml"))
        assert printed.returncode == 0, printed.stderr
        assert "BREACHED" in printed.stdout

        # The refit asks the gateway's Claude (here its emulator) what the records lack.
        refit = tiergate(
            "calibrate", str(route), "--from-audit", str(folder / "gateway.yaml"),
            "--base-url", scenario.emulator.base_url, key="sk-test-not-a-real-key",
        )  # fmt: skip
        assert refit.returncode == 0, refit.stderr
        assert "silver labels" in refit.stderr
        _until(lambda: gateway.server.app.services.audits.routes["tickets"].engaged is None)
        after = send_stream(gateway, admin, scenario.drifted[DRIFTED:])
        assert "breached" not in after.statuses
        assert gateway.server.app.services.audits.routes["tickets"].breached_at is None
    shares = {tier: after.tiers.count(tier) / len(after.tiers) for tier in sorted(set(after.tiers))}
    print(
        f"\ndrift: breach after {detected_after} drifted requests "
        f"({len(drifted.statuses)} checks); {costs}; "
        f"after recalibration {len(after.statuses)} checks, none breached, tiers {shares}"
    )


def tiergate(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["HF_HUB_OFFLINE"] = "1"
    if key is not None:
        env["ANTHROPIC_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "tiergate", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _until(condition: Any, timeout_s: float = 30.0) -> None:
    """Wait for the gateway's loop to notice a change (it looks once a second)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the gateway did not take the new calibration")
        time.sleep(0.2)


def test_drift_signals_move_away_from_their_calibration_reference(
    scenario: Scenario, tmp_path: Path
) -> None:
    with auditing_gateway(tmp_path, scenario, sample_rate=0.0, reaction="none") as (gw, admin):
        send_stream(gw, admin, scenario.steady[:60])
        with gw.client(admin) as operator:
            before: Any = operator.get("/v1/audit", cast_to=object)
            send_stream(gw, admin, scenario.drifted[:60])  # the window holds 60: drift only
            after: Any = operator.get("/v1/audit", cast_to=object)
            metrics = operator.get("/metrics", cast_to=str)
    steady, drifted = before["routes"]["tickets"]["drift"], after["routes"]["tickets"]["drift"]
    assert steady["first_rung"] == "local"
    similarity = drifted["similarity"]
    assert similarity["reference_count"] > 100 and similarity["live_count"] == 60
    # New intents sit further from the training texts than the calibration tickets did...
    assert similarity["live_mean"] < similarity["reference_mean"] - 0.05
    assert similarity["ks_distance"] > steady["similarity"]["ks_distance"]
    # ...the local tier is less sure of them...
    assert drifted["confidence"]["live_mean"] < steady["confidence"]["live_mean"]
    assert sum(drifted["confidence"]["live_bins"]) == pytest.approx(1.0)
    # The escalation share is counted against its reference (on this small route the local
    # tier accepts nearly everything, before and after: the signal that did not move).
    assert drifted["escalation"]["live_count"] == 60
    assert steady["escalation"]["reference"] is not None
    assert 'tiergate_drift{route="tickets",signal="similarity",source="calibration"}' in metrics
    print(
        f"\ndrift signals (steady -> drifted, calibration reference): similarity "
        f"{steady['similarity']['live_mean']:.3f} -> {similarity['live_mean']:.3f} "
        f"({similarity['reference_mean']:.3f}); local confidence "
        f"{steady['confidence']['live_mean']:.3f} -> {drifted['confidence']['live_mean']:.3f} "
        f"({drifted['confidence']['reference_mean']:.3f}); escalation "
        f"{steady['escalation']['live']:.1%} -> {drifted['escalation']['live']:.1%} "
        f"({steady['escalation']['reference']:.1%})"
    )


def test_shadow_mode_takes_an_uncalibrated_route_to_a_certified_ladder(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Unlabelled traffic only: the top tier serves, the cheaper tiers answer in shadow, and
    `calibrate --from-audit` certifies a ladder from those comparisons."""
    import json

    route = route_copy(scenario, tmp_path / "route", calibrated=False)
    folder = tmp_path / "gateway"
    with auditing_gateway(
        folder, scenario, route=route, shadow=1.0, mode="live", reaction="none"
    ) as (gateway, admin):
        stream = send_stream(gateway, admin, scenario.steady[:160], chunk=40)
        assert set(stream.tiers) == {SONNET}  # the top tier serves while the others shadow it
        with gateway.client(admin) as operator:
            report: Any = operator.get("/v1/audit", cast_to=object)
            usage: Any = operator.get("/v1/usage", cast_to=object)
        agreement = report["routes"]["tickets"]["shadow_agreement"]
        assert set(agreement) == {"local", HAIKU}
        assert agreement["local"]["compared"] == 160
        assert 0.5 < agreement["local"]["agreement"] < 1.0
        assert usage["audit"]["by_route"]["tickets"]["by_kind"]["shadow"]["records"] == 160
        refit = tiergate(
            "calibrate", str(route), "--from-audit", str(folder / "gateway.yaml"), "--json"
        )
        assert refit.returncode == 0, refit.stderr
        calibrated = json.loads(refit.stdout)
        assert calibrated["calibration_tickets"] == 160
        assert calibrated["certified_bound"] is not None
        assert calibrated["certified_bound"] <= calibrated["error_budget"]
        # The same comparisons, as the pre-call router's records (`router train --silver`).
        out = tmp_path / "router-records"
        exported = tiergate(
            "audit", "tickets", "--config", str(folder / "gateway.yaml"),
            "--router-records", str(out),
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        from tiergate.precall.records import read_records, with_silver_labels

        rows = read_records(out / "train.jsonl") + read_records(out / "test.jsonl")
        assert len(rows) == 160 and len(read_records(out / "test.jsonl")) == 32
        silver = with_silver_labels(rows, SONNET)
        local_right = sum(row.models["local"].correct or 0.0 for row in silver) / len(silver)
        assert local_right == pytest.approx(agreement["local"]["agreement"])
        assert all(row.models[SONNET].cost > 0 for row in silver)  # the serving row's cost
        # The new calibration is loaded; the route stays in shadow (its top tier serves).
        auditor = gateway.server.app.services.audits.routes["tickets"]
        _until(lambda: auditor.calibrated_at > 0)
        assert (
            gateway.server.app.services.classifiers["tickets"].router.policies["local"].skipped
        )  # still in shadow: the top tier serves
    print(
        f"\nshadow: 160 unlabelled requests; local agreed with {SONNET} on "
        f"{agreement['local']['agreement']:.1%}, {HAIKU} on {agreement[HAIKU]['agreement']:.1%}; "
        f"certified ladder {' -> '.join(calibrated['ladder'])} (bound "
        f"{calibrated['certified_bound']:.2%} at a {calibrated['error_budget']:.0%} budget), "
        f"accepting {calibrated['expected']['accepted_share']:.1%}"
    )


def test_live_audits_judge_alike_and_cost_about_twice_batches(
    scenario: Scenario, tmp_path: Path
) -> None:
    reports: dict[str, Any] = {}
    for mode in ("batches", "live"):
        with auditing_gateway(tmp_path / mode, scenario, sample_rate=1.0, mode=mode) as (
            gateway,
            admin,
        ):
            send_stream(gateway, admin, scenario.steady[:20], chunk=20)
            with gateway.client(admin) as operator:
                answer: Any = operator.get("/v1/audit", cast_to=object)
            reports[mode] = answer["routes"]["tickets"]
    batches, live = reports["batches"], reports["live"]
    assert batches["window"]["audited"] == live["window"]["audited"] == 20
    assert batches["window"]["errors"] == live["window"]["errors"]  # the same top-tier answers
    assert (
        1.5 * batches["audit_cost_usd"] < live["audit_cost_usd"] < 2.5 * batches["audit_cost_usd"]
    )
