"""The dashboard in a real browser: Debian's chromium driven by Playwright.

The page's figures must equal what /v1/usage and /v1/audit report, a breached budget must show
as breached, and a person without a header signs in with the admin key. Screenshots go to the
test's temporary folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gw_audit import Scenario, auditing_gateway, send_stream

pytest_plugins = ("gw_audit_fixtures",)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: scripts/services.sh installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


def value(page: Any, testid: str) -> str:
    return str(page.get_by_test_id(testid).get_attribute("data-value"))


def text(page: Any, testid: str) -> str:
    return str(page.get_by_test_id(testid).inner_text())


def test_the_dashboard_shows_what_the_api_reports_and_a_breach(
    scenario: Scenario, tmp_path: Path, chromium: Any
) -> None:
    with auditing_gateway(tmp_path, scenario, sample_rate=0.5) as (gateway, admin):
        send_stream(gateway, admin, scenario.steady[:40])
        stream = send_stream(gateway, admin, scenario.drifted[:40])
        assert stream.first_breach is not None
        with gateway.client(admin) as operator:
            usage: Any = operator.get("/v1/usage", cast_to=object)
            audit: Any = operator.get("/v1/audit", cast_to=object)
        context = chromium.new_context(
            extra_http_headers={"x-api-key": admin}, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.goto(gateway.base_url + "/dashboard")
        page.wait_for_selector("body[data-loaded='true']")
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

        total = usage["total"]
        for testid, expected in (
            ("total-requests", total["requests"]),
            ("total-spend", total["spend_usd"]),
            ("total-strong-only", total["strong_only_usd"]),
            ("total-savings", total["savings_usd"]),
            ("audit-spend", usage["audit"]["spend_usd"]),
        ):
            assert float(value(page, testid)) == pytest.approx(expected, rel=1e-12), testid
        assert text(page, "total-spend") == f"${total['spend_usd']:.4f}"
        assert text(page, "audit-spend") == f"${usage['audit']['spend_usd']:.4f}"
        for tier, share in usage["by_route"]["tickets"]["tier_shares"].items():
            assert float(value(page, f"route-tickets-share-{tier}")) == pytest.approx(share)

        report = audit["routes"]["tickets"]
        assert report["breached"] is True
        assert value(page, "audit-tickets-status") == "breached"
        assert text(page, "audit-tickets-status") == "BREACHED"
        assert "breached" in str(page.get_by_test_id("audit-tickets").get_attribute("class"))
        window = report["window"]
        assert float(value(page, "audit-tickets-upper")) == pytest.approx(window["upper_bound"])
        assert float(value(page, "audit-tickets-lower")) == pytest.approx(window["lower_bound"])
        assert int(value(page, "audit-tickets-audited")) == window["audited"]
        assert float(value(page, "audit-tickets-budget")) == report["error_budget"]
        assert text(page, "audit-tickets-upper") == f"{window['upper_bound']:.2%}"
        assert page.get_by_test_id("escalation").count() > 0
        assert page.locator("#timeline canvas").count() > 0  # the chart library drew
        context.close()

        # A person: no header, the sign-in form, the admin key kept in a cookie.
        person = chromium.new_context()
        page = person.new_page()
        answer = page.goto(gateway.base_url + "/dashboard")
        assert answer is not None and answer.status == 401
        page.fill("#key", admin)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-loaded='true']")
        assert value(page, "audit-tickets-status") == "breached"
        page.screenshot(path=str(tmp_path / "dashboard-signed-in.png"))
        person.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    print(f"\nscreenshots in {tmp_path}")


def test_the_dashboard_refuses_keys_that_are_not_admin(scenario: Scenario, tmp_path: Path) -> None:
    import anthropic

    with auditing_gateway(tmp_path, scenario) as (gateway, admin):
        with gateway.client() as client, pytest.raises(anthropic.AuthenticationError):
            client.get("/dashboard/data", cast_to=object)
        with gateway.client() as client, pytest.raises(anthropic.PermissionDeniedError):
            client.get("/v1/audit", cast_to=object)
        with gateway.client(admin) as operator:
            data: Any = operator.get("/dashboard/data", cast_to=object)
            script = operator.get("/dashboard/static/vendor/uPlot.iife.min.js", cast_to=str)
            with pytest.raises(anthropic.NotFoundError):
                operator.get("/dashboard/static/../../config.py", cast_to=object)
    assert data["usage"]["total"]["requests"] == 0
    assert "uPlot" in script
