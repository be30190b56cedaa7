"""The cost command end to end, as a user runs it: a real process, its stdout, stderr and status."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

LESSON = ["--rpm", "10000", "--input-tokens", "400", "--output-tokens", "20"]


def tiergate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tiergate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_worked_example_as_json() -> None:
    done = tiergate("cost", *LESSON, "--escalation", "0.2", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["requests_per_day"] == 14_400_000
    strategies = body["strategies"]
    assert strategies["cheap_only"]["per_request_usd"] == pytest.approx(0.0005)
    assert strategies["strong_only"]["per_request_usd"] == pytest.approx(0.0015)
    assert strategies["tiered"]["per_request_usd"] == pytest.approx(0.0008)
    assert strategies["cheap_only"]["per_day_usd"] == pytest.approx(7_200)
    assert strategies["strong_only"]["per_day_usd"] == pytest.approx(21_600)
    assert strategies["tiered"]["per_day_usd"] == pytest.approx(11_520)
    assert strategies["tiered"]["per_month_usd"] == pytest.approx(345_600)
    assert round(body["savings_vs_strong"], 3) == 0.467
    assert round(body["break_even_escalation"], 3) == 0.667
    assert strategies["tiered"]["p50_latency_s"] < strategies["strong_only"]["p50_latency_s"]


def test_worked_example_as_a_table() -> None:
    done = tiergate("cost", *LESSON)
    assert done.returncode == 0, done.stderr
    for figure in (
        "$0.0005",
        "$0.0015",
        "$0.0008",
        "$7,200.00",
        "$21,600.00",
        "$11,520.00",
        "46.7%",
        "66.7%",
    ):
        assert figure in done.stdout


def test_target_saving_explains_what_it_takes() -> None:
    done = tiergate("cost", *LESSON, "--target-saving", "0.8", "--json")
    target = json.loads(done.stdout)["target"]
    assert target["reachable"] is True
    escalation = next(item for item in target["levers"] if item["lever"] == "escalation")
    assert escalation["needed"] is None and "model choice alone" in escalation["explanation"]


def test_plot_is_written(tmp_path: Path) -> None:
    plot = tmp_path / "cost.png"
    done = tiergate("cost", *LESSON, "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.stat().st_size > 20_000


def test_prices_file_changes_the_answer(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  claude-sonnet-4-6: {input: 6.0, output: 30.0}\n")
    done = tiergate("cost", *LESSON, "--prices", str(prices), "--json")
    assert json.loads(done.stdout)["strategies"]["strong_only"]["per_request_usd"] == pytest.approx(
        0.003
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rpm", "-5", "--input-tokens", "400", "--output-tokens", "20"], "must not be negative"),
        ([*LESSON, "--escalation", "1.2"], "between 0 and 1"),
        ([*LESSON, "--local", "-0.1"], "between 0 and 1"),
        ([*LESSON, "--cheap", "claude-haiku-45"], "did you mean claude-haiku-4-5"),
        ([*LESSON, "--escalation", "0.7", "--local", "0.5"], "exceed 1"),
        ([*LESSON, "--prices", "/nonexistent/prices.yaml"], "cannot read price book"),
        ([*LESSON, "--plot", "cost.jpg"], ".png"),
        (["--input-tokens", "400", "--output-tokens", "20"], "--rpm"),
    ],
)
def test_bad_input_is_one_line_and_status_2(args: list[str], message: str) -> None:
    done = tiergate("cost", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr


def test_demo_runs_offline(tmp_path: Path) -> None:
    done = tiergate("demo", "--out", str(tmp_path), "--calculator-only")
    assert done.returncode == 0, done.stderr
    assert "46.7%" in done.stdout
    assert (tmp_path / "cost_vs_escalation.png").exists()


HEAVY = {"anthropic", "numpy", "torch", "scipy", "aiohttp", "rich.progress", "rich.table"}


@pytest.mark.parametrize(
    ("command", "status"),
    [
        *(
            ([name, "--no-such-option"] if name else ["--no-such-option"], 2)
            for name in (
                "", "cost", "calibrate", "eval", "train", "route", "learn", "batch", "serve",
                "audit", "keys", "router", "emulate", "demo",
            )
        ),
        (["--help"], 0),
    ],
)  # fmt: skip
def test_a_usage_error_imports_nothing_heavy(command: list[str], status: int) -> None:
    """Start-up stays fast: a usage error (or --help) loads no SDK, no numpy, no torch, and
    none of rich's progress bars or tables (measured in README: under half a second per
    command)."""
    code = (
        "import sys\n"
        "from tiergate.cli.main import main\n"
        "try:\n"
        f"    main({command!r})\n"
        "except SystemExit as exit:\n"
        f"    assert exit.code == {status}, exit.code\n"
        f"heavy = sorted(set({sorted(HEAVY)!r}) & set(sys.modules))\n"
        "print('heavy:' + ','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    imported = done.stdout.rsplit("heavy:", 1)[1].strip()
    assert imported == "", f"imported on a usage error: {imported}"
