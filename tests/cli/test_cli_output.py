"""What a person sees: tables with the --json figures, progress bars on a terminal only.

A Claude-only route (nothing to train; the emulator answers), calibrated once; its tables are
read back and compared with the same command's --json, and its progress is watched through a
pseudo-terminal, a pipe and ``--progress``.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cli_run import tiergate
from rich.console import Console

from tiergate.cli.progress import bars

DATA = Path(__file__).parents[2] / "examples" / "banking77" / "data" / "banking77_train.csv"
LABELS = ["card_arrival", "lost_or_stolen_card", "exchange_rate", "pin_blocked"]
ESCAPE = "\x1b"


@pytest.fixture(scope="module")
def route(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import csv

    folder = tmp_path_factory.mktemp("claude_route")
    taken: dict[str, int] = {}
    rows = []
    with DATA.open() as handle:
        for row in csv.DictReader(handle):
            if row["category"] in LABELS and taken.get(row["category"], 0) < 100:
                taken[row["category"]] = taken.get(row["category"], 0) + 1
                rows.append({"text": row["text"], "label": row["category"]})
    for name, part in (("train", rows[::2]), ("test", rows[1::2])):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    (folder / "route.yaml").write_text(
        f"name: claude\nlabels: {json.dumps(LABELS)}\n"
        "tiers: [claude-haiku-4-5, claude-sonnet-4-6]\nerror_budget: 0.1\nfew_shot: 0\n"
        "data: {train: train.jsonl, test: test.jsonl, calibration_share: 0.9}\n"
    )
    done = tiergate("calibrate", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    return folder


def table(text: str, first_header: str) -> dict[str, list[str]]:
    """The rows of the table whose header starts with ``first_header``, by their first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first_header])
    assert set(lines[start + 1].replace(" ", "")) == {"-"}, "a rule of dashes under the header"
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def test_the_calibrate_table_shows_the_json_figures(route: Path) -> None:
    text = tiergate("calibrate", str(route), "--refit")
    data = tiergate("calibrate", str(route), "--refit", "--json")
    assert text.returncode == 0 and data.returncode == 0, text.stderr + data.stderr
    assert ESCAPE not in text.stdout + text.stderr  # piped: no colour, no bars
    report = json.loads(data.stdout)
    rows = table(text.stdout, "tier")
    assert report["certified_bound"] is not None, "the route certifies a ladder"
    shown = [row for row in report["tiers"] if not row["skipped"]]
    for row in shown:
        assert rows[row["tier"]] == [
            f"{row['reached']:,}",
            f"{row['accepted']:,}",
            f"{row['accepted_share']:.1%}",
            pct(row["accepted_accuracy"]),
            f"{row['accepted_accuracy_lower_bound']:.1%}",
            "-" if row["threshold"] is None else f"{row['threshold']:.3f}",
            f"{row['mean_cost_per_call_usd']:.6f}",
        ]
    alone = table(text.stdout.split("Each tier alone")[1], "tier")
    for tier, figures in report["every_answer_accepted"].items():
        assert alone[tier][-1 if figures["certified_share_alone"] else -2] == (
            f"{figures['accuracy_if_everything_accepted']:.1%}"
        )


def test_the_eval_table_shows_the_json_figures(route: Path) -> None:
    text = tiergate("eval", str(route))
    data = tiergate("eval", str(route), "--json")
    assert text.returncode == 0 and data.returncode == 0, text.stderr + data.stderr
    assert ESCAPE not in text.stdout + text.stderr
    assert "tickets/s" not in text.stderr  # no bars into a pipe unless asked
    result = json.loads(data.stdout)
    rows = table(text.stdout, "tier")
    for name, tier in result["tiers"].items():
        assert rows[name] == [
            f"{tier['accepted']:,}",
            f"{tier['accepted_share']:.1%}",
            pct(tier["accepted_accuracy"]),
            f"${tier['cost_usd']:,.4f}",
        ]
    unaccepted = result["flagged"] + result["handed_to_human"]
    (label,) = [name for name in rows if name.startswith("not accepted")]
    assert rows[label] == [f"{unaccepted:,}", f"{result['unaccepted_share']:.1%}"]
    assert f"cost: ${result['cost_usd']:,.4f}" in text.stdout


def run_on_a_terminal(*args: str) -> tuple[str, str, int]:
    """``tiergate ARGS`` with stderr on a pseudo-terminal and stdout on a pipe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "TIERGATE_"))}
    env.update(HF_HUB_OFFLINE="1", COLUMNS="200")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tiergate", *args], stdout=subprocess.PIPE, stderr=follower, env=env
    )
    os.close(follower)
    chunks: list[bytes] = []

    def drain() -> None:  # the terminal's buffer is small: read while the command writes
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the command closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    assert process.stdout is not None
    out = process.stdout.read().decode()
    status = process.wait(timeout=600)
    reader.join(timeout=60)
    os.close(leader)
    return out, b"".join(chunks).decode(errors="replace"), status


def without_timings(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("latency_")}


def test_on_a_terminal_eval_draws_a_bar_to_the_total_and_json_stays_clean(route: Path) -> None:
    out, err, status = run_on_a_terminal("eval", str(route), "--json")
    assert status == 0, err
    piped = tiergate("eval", str(route), "--json")
    assert ESCAPE not in out
    assert without_timings(json.loads(out)) == without_timings(json.loads(piped.stdout))
    result = json.loads(out)
    tickets = result["tickets"]
    assert ESCAPE in err  # drawn in place on the terminal
    last = err.replace("\r", "\n").splitlines()
    final = [line for line in last if "on the test split" in line][-1]
    assert f"{tickets}/{tickets} tickets" in final
    assert "tickets/s" in final and "took " in final
    assert f"${result['cost_usd']:,.4f}" in final  # the running cost ends at the total
    assert "ETA" in err


def test_asked_for_in_a_pipe_the_bars_print_their_final_state_once(
    route: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "route"
    shutil.copytree(route, copy)  # calibrating again here leaves the shared route as it was
    done = tiergate("calibrate", str(copy), "--limit", "40", "--progress", "--json")
    assert done.returncode == 0, done.stderr
    assert ESCAPE not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if "on the calibration split" in line]
    assert len(lines) == 2, done.stderr  # one per Claude tier, printed once
    for line in lines:
        assert "40/40 tickets" in line and "tickets/s" in line and "took" in line
    json.loads(done.stdout)
    quiet = tiergate("eval", str(copy), "--progress", "--no-progress")
    assert "tickets/s" not in quiet.stderr  # the last of the two flags wins


def test_a_bar_shows_rate_eta_and_running_cost_and_reaches_its_total() -> None:
    now = [0.0]
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200, color_system=None)
    with (
        bars(console, clock=lambda: now[0]) as tracker,
        tracker.stage("haiku on the test split", 40, unit="tickets") as stage,
    ):
        for _ in range(20):
            now[0] += 0.5
            stage.advance(cost_usd=0.01)
        tracker.progress.refresh()
        halfway = screen.getvalue().rsplit("\r", 1)[-1]
        for _ in range(20):
            now[0] += 0.5
            stage.advance(cost_usd=0.01)
    assert "20/40 tickets" in halfway and "2.0 tickets/s" in halfway
    assert "ETA 0:00:10" in halfway and "$0.2000" in halfway
    lines = screen.getvalue().replace("\r", "\n").splitlines()
    final = [line for line in lines if "on the test split" in line][-1]
    assert "40/40 tickets" in final and "took 0:00:20" in final and "$0.4000" in final


def test_a_stage_that_ends_early_ends_its_bar_where_the_work_did() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=False, width=200)
    with bars(console) as tracker, tracker.stage("audit records", None, unit="records") as stage:
        stage.advance(3, cost_usd=0.5, note="3 audited")
    assert ESCAPE not in screen.getvalue()
    line = screen.getvalue().strip()
    assert "3/3 records" in line and "$0.5000" in line and "3 audited" in line
