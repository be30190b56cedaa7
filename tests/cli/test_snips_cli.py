"""train -> calibrate -> eval -> route -> batch on a small extraction route (SNIPS), as a user
runs them, with the Claude tiers emulated."""

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from cli_run import tiergate

SNIPS = Path(__file__).parents[2] / "examples" / "snips"


def head(source: Path, target: Path, count: int) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in source.read_text("utf-8").splitlines()[:count]]
    target.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    return rows


@pytest.fixture(scope="module")
def route(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("snips")
    shutil.copy(SNIPS / "schema.json", folder / "schema.json")
    head(SNIPS / "data" / "snips_train.jsonl", folder / "train.jsonl", 300)
    head(SNIPS / "data" / "snips_test.jsonl", folder / "test.jsonl", 700)
    text = (SNIPS / "route.yaml").read_text()
    text = text.replace("data/snips_train.jsonl", "train.jsonl").replace(
        "data/snips_test.jsonl", "test.jsonl"
    )
    # 120 calibration documents cannot certify 5%: a looser budget for the small copy.
    text = text.replace("error_budget: 0.05", "error_budget: 0.2")
    (folder / "route.yaml").write_text(text)
    trained = tiergate("train", str(folder))
    assert trained.returncode == 0, trained.stderr
    assert "nothing to train" in trained.stdout
    calibrated = tiergate("calibrate", str(folder), "--json")
    assert calibrated.returncode == 0, calibrated.stderr
    assert "EMULATED" in calibrated.stderr
    (folder / "calibrate-report.json").write_text(calibrated.stdout)
    return folder


def test_calibration_fits_both_tiers_on_held_out_documents(route: Path) -> None:
    report = json.loads((route / "calibrate-report.json").read_text())
    assert 110 <= report["calibration_tickets"] <= 130  # 40% of 300, balanced per intent
    assert [row["tier"] for row in report["tiers"]] == ["claude-haiku-4-5", "claude-sonnet-4-6"]
    assert report["ladder"]
    # Invalid objects are counted as unusable, not as answers.
    assert all(0.8 < row["usable_share"] < 1.0 for row in report["tiers"])


def test_eval_reports_fields_documents_tiers_and_costs(route: Path) -> None:
    done = tiergate("eval", str(route), "--limit", "140", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["task"] == "extract" and result["tickets"] == 140
    assert set(result["tiers"]) == {"claude-haiku-4-5", "claude-sonnet-4-6"}
    assert result["accepted_share"] > 0.5
    assert result["accepted_accuracy"] >= 1 - 0.2 - 0.1  # the budget, with room for 140 docs
    assert result["document_accuracy"] == pytest.approx(result["accuracy"])
    fields = result["field_accuracy"]
    assert "intent" in fields and any(name.startswith("slots.") for name in fields)
    assert all(value is None or 0.0 <= value <= 1.0 for value in fields.values())
    assert fields["intent"] > result["accuracy"]  # a document is right only if every field is
    assert result["cheap_only_cost_usd"] < result["strong_only_cost_usd"]
    assert result["savings_vs_strong"] is not None


def test_eval_prints_the_fields_it_gets_wrong_most(route: Path) -> None:
    done = tiergate("eval", str(route), "--limit", "140")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("fields"))
    assert "mean" in line and "lowest slots." in line


def test_route_answers_one_document_with_a_json_object(route: Path) -> None:
    known = json.loads((route / "train.jsonl").read_text().splitlines()[0])
    done = tiergate("route", str(route), known["text"], "--json")
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    schema = json.loads((route / "schema.json").read_text())
    jsonschema.validate(decision["answer"], schema)
    assert decision["answer"]["intent"] == known["label"]["intent"]
    ladder = json.loads((route / "calibrate-report.json").read_text())["ladder"]
    assert [step["tier"] for step in decision["trace"]] == ladder[: len(decision["trace"])]


def test_batch_writes_an_object_per_row_and_scores_it(route: Path, tmp_path: Path) -> None:
    rows = head(route / "test.jsonl", tmp_path / "in.jsonl", 30)
    out = tmp_path / "out.jsonl"
    done = tiergate(
        "batch", str(route), "--in", str(tmp_path / "in.jsonl"), "--out", str(out), "--json"
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [r["id"] for r in rows]
    schema = json.loads((route / "schema.json").read_text())
    for record in records:
        if record["answer"] is not None:
            jsonschema.validate(record["answer"], schema)
    summary = json.loads(done.stdout)
    assert summary["rows"] == 30
    assert 0.5 < summary["accuracy"] <= 1.0


def test_a_row_whose_gold_is_not_an_object_is_one_line_naming_it(
    route: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"text": "play jazz", "label": "PlayMusic"}) + "\n")
    done = tiergate("eval", str(route), "--data", str(broken))
    assert done.returncode != 0
    assert f"{broken}:1: label must be a JSON object" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_learn_says_in_one_line_that_there_is_no_local_tier(route: Path) -> None:
    done = tiergate("learn", str(route))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("learning teaches the local tier, and this ladder has none")
    assert len(done.stderr.strip().splitlines()) == 1
