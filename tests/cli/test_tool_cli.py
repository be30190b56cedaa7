"""A tool route as a user runs it: train, calibrate, eval (per category), route, batch; the
Claude tiers emulated (no ANTHROPIC_API_KEY in the environment)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_run import tiergate

BFCL = Path(__file__).parents[2] / "examples" / "bfcl"


def _route(folder: Path) -> Path:
    """The example route on every fourth row of its data (all categories)."""
    shutil.copy(BFCL / "route.yaml", folder / "route.yaml")
    (folder / "data").mkdir()
    for name in ("calibration", "test"):
        lines = (BFCL / "data" / f"{name}.jsonl").read_text().splitlines()[::4]
        (folder / "data" / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "route.yaml"


def test_a_tool_route_from_the_command_line(tmp_path: Path) -> None:
    route = _route(tmp_path)
    trained = tiergate("train", str(route))
    assert trained.returncode == 0 and "nothing to train" in trained.stdout
    calibrated = tiergate("calibrate", str(route), "--json")
    assert calibrated.returncode == 0, calibrated.stderr
    assert "EMULATED" in calibrated.stderr
    report = json.loads(calibrated.stdout)
    assert report["calibration_tickets"] == 186

    evaluated = tiergate("eval", str(route), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    categories = result["categories"]
    assert set(categories) >= {"simple_python", "irrelevance", "live_simple", "live_relevance"}
    assert sum(row["items"] for row in categories.values()) == result["tickets"] == 203
    shares = sum(tier["accepted"] for tier in result["tiers"].values()) / result["tickets"]
    assert abs(shares - result["accepted_share"]) < 1e-9
    text = tiergate("eval", str(route))
    assert "live_parallel_multiple" in text.stdout and "acc. acc." in text.stdout

    row = (tmp_path / "data" / "calibration.jsonl").read_text().splitlines()[0]
    routed = tiergate("route", str(route), row, "--json")
    assert routed.returncode == 0, routed.stderr
    decision = json.loads(routed.stdout)
    assert decision["trace"][0]["tier"] == "claude-haiku-4-5"
    assert isinstance(decision["answer"], list)
    refused = tiergate("route", str(route), "what is the weather?")
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1].endswith("not only a text")

    out = tmp_path / "answers.jsonl"
    source = tmp_path / "data" / "test.jsonl"
    batch = tiergate("batch", str(route), "--in", str(source), "--out", str(out))
    assert batch.returncode == 0, batch.stderr
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(answers) == 203 and all(isinstance(a["answer"], list) for a in answers)
    assert "accuracy of all answers" in batch.stdout
