"""Shadow answers through Message Batches (live when configured); the answers kept for a refit.

The drift scenario's 8-intent route (gw_audit) behind a real gateway, the emulator upstream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gw_audit import Scenario, auditing_gateway, route_copy, send_stream
from gw_helpers import HAIKU

pytest_plugins = ("gw_audit_fixtures",)


def test_shadow_answers_go_through_message_batches_unless_live(
    scenario: Scenario, tmp_path: Path
) -> None:
    state = scenario.emulator.state
    seen: dict[str, dict[str, Any]] = {}
    for mode in ("batches", "live"):
        route = route_copy(scenario, tmp_path / mode / "route", calibrated=False)
        state.log.clear()  # what this gateway asks, apart from what came before
        with auditing_gateway(
            tmp_path / mode, scenario, route=route, shadow=1.0, mode=mode, reaction="none"
        ) as (gateway, admin):
            send_stream(gateway, admin, scenario.steady[:20], chunk=20)
            with gateway.client(admin) as operator:
                report: Any = operator.get("/v1/audit", cast_to=object)
                usage: Any = operator.get("/v1/usage", cast_to=object)
        seen[mode] = {
            "agreement": report["routes"]["tickets"]["shadow_agreement"],
            "spend": usage["audit"]["by_route"]["tickets"]["by_kind"]["shadow"],
            "haiku_calls": sum(r.model == HAIKU for r in state.records("/v1/messages")),
            "batches": sum(r.method == "POST" for r in state.records("/v1/messages/batches")),
        }
    batches, live = seen["batches"], seen["live"]
    # Batches by default: Haiku is never called live for a shadow answer, one batch carries them.
    assert batches["haiku_calls"] == 0 and batches["batches"] == 1
    assert live["haiku_calls"] == 20 and live["batches"] == 0
    # The same answers either way (the emulator answers a text alike), judged alike.
    assert batches["agreement"] == live["agreement"]
    assert batches["agreement"][HAIKU]["compared"] == 20
    # Metered as shadow spend, at about half the live price.
    assert batches["spend"]["records"] == live["spend"]["records"] == 20
    assert 1.5 * batches["spend"]["spend_usd"] < live["spend"]["spend_usd"]
    assert live["spend"]["spend_usd"] < 2.5 * batches["spend"]["spend_usd"]


def test_calibrate_from_audit_reuses_the_recorded_answers(
    scenario: Scenario, tmp_path: Path
) -> None:
    """The top tier's audit answers, the Claude answers the hot path paid for and the shadow
    answers are kept with each record; the refit asks only for what is missing."""
    from gw_helpers import SONNET

    # Audits: Sonnet's answer on every text; Haiku's only where the hot path asked it.
    route = route_copy(scenario, tmp_path / "audited" / "route")
    folder = tmp_path / "audited" / "gateway"
    with auditing_gateway(folder, scenario, route=route, sample_rate=1.0, reaction="none") as (
        gateway,
        admin,
    ):
        stream = send_stream(gateway, admin, scenario.drifted[:40], chunk=40)
    report, asked, said = _refit(scenario, route, folder)
    tickets, recorded = report["calibration_tickets"], report["recorded_answers"]
    assert tickets == 40
    assert recorded[SONNET] == tickets and asked[SONNET] == 0
    assert recorded[HAIKU] <= sum(tier != "local" for tier in stream.tiers)
    assert asked[HAIKU] == tickets - recorded[HAIKU] > 0
    assert f"{SONNET} {tickets:,} recorded, 0 asked" in said

    # Shadow mode: every tier's answer is recorded, nothing is asked again.
    route = route_copy(scenario, tmp_path / "shadowed" / "route", calibrated=False)
    folder = tmp_path / "shadowed" / "gateway"
    with auditing_gateway(folder, scenario, route=route, shadow=1.0, reaction="none") as (
        gateway,
        admin,
    ):
        send_stream(gateway, admin, scenario.steady[:40], chunk=40)
    report, asked, said = _refit(scenario, route, folder)
    assert report["recorded_answers"] == {HAIKU: 40, SONNET: 40}
    assert asked == {HAIKU: 0, SONNET: 0}


def _refit(scenario: Scenario, route: Path, folder: Path) -> tuple[Any, dict[str, int], str]:
    """`calibrate --from-audit --json` against the scenario's emulator (the gateway's Claude):
    the report, the Messages calls it made per model, what it said."""
    import json
    import os
    import subprocess
    import sys

    from gw_helpers import SONNET

    state = scenario.emulator.state
    state.log.clear()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(HF_HUB_OFFLINE="1", ANTHROPIC_API_KEY="sk-test-not-a-real-key")
    command = [sys.executable, "-m", "tiergate", "calibrate", str(route), "--json"]
    command += ["--from-audit", str(folder / "gateway.yaml")]
    command += ["--base-url", scenario.emulator.base_url]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    asked = {
        model: sum(r.model == model for r in state.records("/v1/messages"))
        for model in (HAIKU, SONNET)
    }
    return json.loads(done.stdout), asked, done.stderr
