"""`tiergate batch` end to end against the emulator: live, malformed rows, kill -9 and resume,
batches mode and its resume. One small route, trained and calibrated once for the module."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from bulk_helpers import (
    RecordingApp,
    answers,
    banking_split,
    batch_command,
    kill_when,
    line_count,
    read_jsonl,
    recording_emulator,
    run_to_end,
    train_and_calibrate,
    write_input,
    write_route,
)

from tiergate.cli.main import main
from tiergate.datasets import Example
from tiergate.emulator import EmulatorConfig
from tiergate.emulator.scenario_build import scenario_from_examples


class Setup:
    def __init__(self, route: Path, rows: list[Example], base_url: str, app: RecordingApp):
        self.route = route
        self.rows = rows
        self.base_url = base_url
        self.app = app


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    train, rows = banking_split()
    route = write_route(tmp_path_factory.mktemp("route"), train)
    asyncio.run(train_and_calibrate(route, train + rows))
    # Some latency, so that a run lasts long enough to be killed in the middle of it.
    config = EmulatorConfig(
        seed=11,
        scenario=scenario_from_examples(train + rows),
        latency_scale=0.15,
        batch_processing_s=0.5,
    )
    server, app = recording_emulator(config)
    server.start()
    try:
        yield Setup(route, rows, server.base_url, app)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def reference(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted live run (in this process): what every other run must reproduce."""
    directory = tmp_path_factory.mktemp("reference")
    source = directory / "in.jsonl"
    write_input(source, setup.rows)
    out = directory / "out.jsonl"
    argv = ["batch", str(setup.route), "--in", str(source), "--out", str(out)]
    assert main([*argv, "--base-url", setup.base_url, "--no-progress", "--concurrency", "4"]) == 0
    return out


def test_an_uninterrupted_run_answers_every_row_in_input_order(
    setup: Setup, reference: Path
) -> None:
    rows = read_jsonl(reference)
    assert [row["id"] for row in rows] == [f"r{i}" for i in range(len(setup.rows))]
    tiers = Counter(row["tier"] for row in rows if row["accepted"])
    assert tiers["local"] > 0 and tiers["local"] < len(rows)
    assert any(row["escalated"] for row in rows) and not all(row["escalated"] for row in rows)


def test_malformed_rows_are_reported_with_line_numbers_and_the_run_goes_on(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    bad = {3: "{not json", 7: '{"id": "no-text"}', 12: '["a", "list"]', 15: '{"text": 5}'}
    write_input(source, setup.rows[:40], bad)
    out = tmp_path / "out.jsonl"
    argv = ["batch", str(setup.route), "--in", str(source), "--out", str(out)]
    status = main([*argv, "--base-url", setup.base_url, "--no-progress", "--json"])
    assert status == 0
    errors = read_jsonl(tmp_path / "out.jsonl.errors")
    assert [error["line"] for error in errors] == [3, 7, 12, 15]
    assert "not valid JSON" in errors[0]["error"]
    assert errors[1]["id"] == "no-text" and "text" in errors[1]["error"]
    assert "not a JSON object" in errors[2]["error"]
    written = read_jsonl(out)
    assert [row["id"] for row in written] == [f"r{i}" for i in range(40)]
    assert all(row["line"] not in bad for row in written)
    assert '"errors": 4' in capsys.readouterr().out


def test_killed_three_times_and_resumed_the_output_equals_an_uninterrupted_run(
    setup: Setup, reference: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    write_input(source, setup.rows)
    out = tmp_path / "out.jsonl"
    journal = tmp_path / "out.jsonl.state" / "journal.jsonl"
    command = batch_command(setup.route, source, out, setup.base_url, "--concurrency", "4")
    asked_before = len(setup.app.asked)

    moments = (15, 120, 230)  # rows written when the kill comes
    for rows_written in moments:
        assert kill_when(command, partial(_written_at_least, out, rows_written)), "ended first"
    summary = run_to_end(command)

    assert answers(out) == answers(reference)  # none lost, none twice, the same answers
    assert summary["rows"] == len(setup.rows)
    assert summary["resumed_after_line"] >= moments[-1]
    records = [record for record in read_jsonl(journal) if record["k"] == "answer"]
    recorded = Counter((record["line"], record["tier"]) for record in records)
    assert max(recorded.values()) == 1  # no row asked of a model again once its answer is in
    asked = setup.app.asked[asked_before:]
    # The emulator saw each request once, except those in flight when a kill came (whose
    # answers were never recorded): at most the concurrency per kill.
    assert len(set(asked)) == len(records)
    assert len(asked) - len(records) <= 4 * len(moments)


def test_batches_mode_resumes_and_gives_the_live_answers_at_half_the_price(
    setup: Setup, reference: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    write_input(source, setup.rows)
    out = tmp_path / "out.jsonl"
    journal = tmp_path / "out.jsonl.state" / "journal.jsonl"
    extra = ["--mode", "batches", "--batch-size", "20", "--poll-first", "0.05"]
    command = batch_command(setup.route, source, out, setup.base_url, *extra)
    batches_before = setup.app.batches_created

    assert kill_when(command, lambda: '"k":"batch"' in _text(journal)), "ended first"
    summary = run_to_end(command)

    assert answers(out) == answers(reference)
    assert summary["mode"] == "batches" and summary["resumed_after_line"] == 0
    assert summary["cost_usd"] == pytest.approx(summary["live_cost_usd"] / 2)
    assert summary["batch_saving_usd"] > 0
    batches = [record for record in read_jsonl(journal) if record["k"] == "batch"]
    assert len(batches) > 1
    # A kill between the API creating a batch and its id reaching the journal orphans that one
    # batch (documented in bulk/batches.py): at most one per kill.
    assert 0 <= setup.app.batches_created - batches_before - len(batches) <= 1
    sent = Counter((record["tier"], line) for record in batches for line in record["lines"])
    assert max(sent.values()) == 1  # the batch created before the kill was polled, not resent
    assert len(sent) == sum(len(row["calls"]) for row in read_jsonl(out))


def test_another_input_for_the_same_output_is_refused(
    setup: Setup, reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.jsonl"
    write_input(other, setup.rows[:10])
    argv = ["batch", str(setup.route), "--in", str(other), "--out", str(reference)]
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--base-url", setup.base_url, "--no-progress"])
    assert stopped.value.code == 2
    assert "another input" in capsys.readouterr().err


def _written_at_least(path: Path, rows: int) -> bool:
    return line_count(path) >= rows


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_asked_for_in_a_pipe_the_bar_ends_at_every_row_with_the_runs_cost(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    write_input(source, setup.rows[:30], {5: "{not json"})
    out = tmp_path / "out.jsonl"
    argv = ["batch", str(setup.route), "--in", str(source), "--out", str(out)]
    assert main([*argv, "--base-url", setup.base_url, "--progress", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # stdout holds the JSON alone
    bars = [line for line in captured.err.splitlines() if "rows/s" in line]
    assert len(bars) == 1 and "\x1b" not in captured.err  # printed once, no escape codes
    assert "31/31 rows" in bars[0] and "escalated" in bars[0]
    assert f"${summary['cost_usd']:,.4f}" in bars[0]
