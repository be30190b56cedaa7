"""train -> calibrate -> eval -> route, as a user runs them, on a small BANKING77 route.

The Claude tiers run against the emulator (no ANTHROPIC_API_KEY in the environment), which the
commands must say plainly.
"""

import csv
import json
import shutil
from pathlib import Path

import pytest
from cli_run import tiergate

DATA = Path(__file__).parents[2] / "examples" / "banking77" / "data"
LABELS = [
    "card_arrival",
    "lost_or_stolen_card",
    "exchange_rate",
    "cash_withdrawal_charge",
    "pin_blocked",
    "Refund_not_showing_up",
    "top_up_failed",
    "change_pin",
]


def rows(path: Path, per_label: int) -> list[dict[str, str]]:
    taken: dict[str, int] = {}
    chosen = []
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["category"] in LABELS and taken.get(row["category"], 0) < per_label:
                taken[row["category"]] = taken.get(row["category"], 0) + 1
                chosen.append({"text": row["text"], "label": row["category"]})
    return chosen


def write_splits(folder: Path, *, train: int, test: int) -> None:
    """train.jsonl and test.jsonl of the LABELS, so many per label from each split."""
    for name, source, count in (
        ("train", "banking77_train.csv", train),
        ("test", "banking77_test.csv", test),
    ):
        with (folder / f"{name}.jsonl").open("w") as handle:
            for row in rows(DATA / source, count):
                handle.write(json.dumps(row) + "\n")


@pytest.fixture(scope="module")
def route(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small_route")
    write_splits(folder, train=90, test=20)
    (folder / "route.yaml").write_text(
        "name: small\ndescription: bank tickets\n"
        f"labels: {json.dumps(LABELS)}\n"
        "tiers: [local, claude-haiku-4-5, claude-sonnet-4-6]\n"
        "error_budget: 0.1\nwhen_unsure: flag\nfew_shot: 4\n"
        "data: {train: train.jsonl, test: test.jsonl, calibration_share: 0.35}\n"
    )
    trained = tiergate("train", str(folder))
    assert trained.returncode == 0, trained.stderr
    assert "saved to" in trained.stdout
    assert (folder / "artifacts" / "local").is_dir()
    calibrated = tiergate("calibrate", str(folder), "--json")
    assert calibrated.returncode == 0, calibrated.stderr
    assert "EMULATED" in calibrated.stderr
    (folder / "calibrate-report.json").write_text(calibrated.stdout)
    return folder


def test_calibrate_writes_policies_and_a_plot(route: Path) -> None:
    report = json.loads((route / "calibrate-report.json").read_text())
    assert report["emulated"] is True
    assert [row["tier"] for row in report["tiers"]] == [
        "local",
        "claude-haiku-4-5",
        "claude-sonnet-4-6",
    ]
    local = report["tiers"][0]
    assert local["accepted"] > 0 and local["mean_cost_per_call_usd"] == 0
    assert report["tiers"][1]["mean_cost_per_call_usd"] > 0
    assert (route / "artifacts" / "calibration.json").exists()
    assert (route / "artifacts" / "calibration_runs.json").exists()  # what learn refits from
    assert report["reused_answers"] is False


def test_a_sweep_refits_from_the_recorded_answers_without_asking_again(route: Path) -> None:
    swept = tiergate("calibrate", str(route), "--sweep", "--json")
    assert swept.returncode == 0, swept.stderr
    assert "EMULATED" not in swept.stderr  # no emulator was started: nothing was asked
    report = json.loads(swept.stdout)
    assert report["reused_answers"] is True
    assert Path(report["plot"]).read_bytes()[:4] == b"\x89PNG"
    budgets = [point["budget"] for point in report["budgets"]]
    assert budgets == sorted(budgets)
    shares = [point["accepted_share"] for point in report["budgets"]]
    assert shares == sorted(shares)  # a looser budget never accepts less


def test_a_budget_given_on_the_command_line_holds_until_the_next_calibration(
    route: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(route, copy)
    refitted = tiergate("calibrate", str(copy), "--budget", "0.2", "--json")
    assert refitted.returncode == 0, refitted.stderr
    assert json.loads(refitted.stdout)["error_budget"] == 0.2
    evaluated = json.loads(tiergate("eval", str(copy), "--json").stdout)
    assert evaluated["error_budget"] == 0.2
    bad = tiergate("calibrate", str(copy), "--budget", "2")
    assert bad.returncode == 2 and "--budget must be between 0 and 1" in bad.stderr


def test_eval_scores_the_ladder(route: Path) -> None:
    done = tiergate("eval", str(route), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in (
        "accuracy",
        "cost_usd",
        "strong_only_cost_usd",
        "cheap_only_cost_usd",
        "escalation_rate",
        "latency_p50_s",
        "latency_p95_s",
    ):
        assert result[key] is not None, key
    assert result["tickets"] == 8 * 20
    shares = [tier["accepted_share"] for tier in result["tiers"].values()]
    assert sum(shares) + result["unaccepted_share"] == pytest.approx(1.0)
    for tier in result["tiers"].values():
        assert {"accepted_share", "accepted_accuracy"} <= set(tier)
    assert result["cost_usd"] < result["strong_only_cost_usd"]

    local_only = json.loads(tiergate("eval", str(route), "--tiers", "local", "--json").stdout)
    assert list(local_only["tiers"]) == ["local"]
    assert local_only["cost_usd"] == 0
    # With only the local tier, whatever it does not accept counts as escalated.
    assert local_only["escalation_rate"] == pytest.approx(
        1 - local_only["tiers"]["local"]["accepted_share"]
    )


def test_route_shows_one_answer_and_its_trace(route: Path) -> None:
    done = tiergate(
        "route", str(route), "my card has not arrived yet, it has been two weeks", "--json"
    )
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert decision["trace"][0]["tier"] == "local"
    assert decision["label"] in LABELS
    assert decision["cost_usd"] == pytest.approx(
        sum(step["cost_usd"] for step in decision["trace"])
    )


def test_bad_input_is_one_line_naming_the_problem(route: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine", "label": "card_arrival"}\n{"label": "card_arrival"}\n')
    done = tiergate("eval", str(route), "--data", str(broken))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert f"{broken}:2" in done.stderr

    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"text": "hello", "label": "pizza_order"}\n')
    done = tiergate("eval", str(route), "--data", str(unknown))
    assert done.returncode == 2 and "pizza_order" in done.stderr

    done = tiergate("eval", str(route), "--tiers", "claude-opus-4-8")
    assert done.returncode == 2 and "not in this route's ladder" in done.stderr

    done = tiergate("route", str(tmp_path / "nowhere"), "text")
    assert done.returncode == 2 and "cannot read route" in done.stderr


def test_learn_teaches_the_local_tier_from_accepted_escalations(
    route: Path, tmp_path: Path
) -> None:
    # The fixture's local tier takes every ticket at its 10% budget, so nothing would escalate;
    # a copy whose local tier trains on a tenth of the data leaves work for Claude.
    strict = tmp_path / "strict"
    shutil.copytree(route, strict, ignore=shutil.ignore_patterns("artifacts"))
    spec = strict / "route.yaml"
    spec.write_text(spec.read_text().replace("calibration_share: 0.35", "calibration_share: 0.9"))
    assert tiergate("train", str(strict)).returncode == 0
    assert tiergate("calibrate", str(strict), "--budget", "0.03").returncode == 0
    done = tiergate(
        "learn", str(strict), "--chunk", "40", "--json", "--plot", str(strict / "learning.png")
    )
    assert done.returncode == 0, done.stderr
    chunks = json.loads(done.stdout)
    assert sum(chunk["tickets"] for chunk in chunks) == 8 * 20
    learned = sum(chunk["learned"] for chunk in chunks)
    assert learned > 0
    # Each accepted Claude answer joined the local pool: it grows by exactly what was learned.
    assert chunks[-1]["pool"] - chunks[0]["pool"] == learned - chunks[0]["learned"]
    assert (strict / "learning.png").read_bytes()[:4] == b"\x89PNG"
    # Without --save the trained model on disk is untouched.
    assert "saved the learned" not in done.stderr
