"""A `tiers: [local]` route holds nothing out: it trains on all its data and is certified on
the out-of-fold rows of that data (issue 9), as a user runs train -> calibrate -> eval."""

import json
from pathlib import Path

import pytest
from cli_run import tiergate
from test_routing_cli import LABELS, write_splits

from tiergate.routing.route import RouteError, load_route

PER_LABEL = 60


@pytest.fixture(scope="module")
def route(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("local_only")
    write_splits(folder, train=PER_LABEL, test=20)
    (folder / "route.yaml").write_text(
        "name: local-only\ndescription: bank tickets\n"
        f"labels: {json.dumps(LABELS)}\n"
        "tiers: [local]\nerror_budget: 0.03\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
    )
    trained = tiergate("train", str(folder))
    assert trained.returncode == 0, trained.stderr
    return folder


def test_it_trains_on_every_example(route: Path) -> None:
    assert load_route(route).calibration_share == 0.0
    metadata = json.loads((route / "artifacts" / "local" / "metadata.json").read_text())
    examples = (route / "artifacts" / "local" / "examples.jsonl").read_text().splitlines()
    assert len(examples) == PER_LABEL * len(LABELS), metadata


def test_it_is_certified_on_its_out_of_fold_rows_and_keeps_the_budget_on_test(
    route: Path,
) -> None:
    calibrated = tiergate("calibrate", str(route), "--json")
    assert calibrated.returncode == 0, calibrated.stderr
    report = json.loads(calibrated.stdout)
    assert report["calibration_tickets"] == 0
    assert report["local_own_rows"] == PER_LABEL * len(LABELS)
    assert report["ladder"] == ["local"]
    local = report["tiers"][0]
    assert local["reached"] == PER_LABEL * len(LABELS)
    assert 0 < local["accepted"] < local["reached"]
    assert report["expected"]["accepted_share"] == pytest.approx(
        local["accepted"] / local["reached"]
    )
    assert report["expected"]["accepted_accuracy"] >= 0.97
    assert report["every_answer_accepted"]["local"]["accuracy_if_everything_accepted"] > 0.5

    evaluated = json.loads(tiergate("eval", str(route), "--json").stdout)
    assert evaluated["accepted_share"] > 0.3
    assert evaluated["accepted_accuracy"] >= 0.95  # 3% budget; 160 test tickets


def test_a_looser_budget_refits_from_the_same_rows_and_accepts_more(route: Path) -> None:
    tight = json.loads(tiergate("calibrate", str(route), "--json").stdout)
    loose = tiergate("calibrate", str(route), "--budget", "0.1", "--refit", "--json")
    assert loose.returncode == 0, loose.stderr
    looser = json.loads(loose.stdout)
    assert looser["reused_answers"] is True
    assert looser["tiers"][0]["accepted"] >= tight["tiers"][0]["accepted"]


def test_a_ladder_with_paid_tiers_cannot_hold_nothing_out(tmp_path: Path) -> None:
    (tmp_path / "route.yaml").write_text(
        f"labels: {json.dumps(LABELS)}\ntiers: [local, claude-haiku-4-5]\n"
        "data: {train: train.jsonl, calibration_share: 0}\n"
    )
    with pytest.raises(RouteError, match="calibration_share: 0 holds nothing out"):
        load_route(tmp_path)
    (tmp_path / "route.yaml").write_text(
        f"labels: {json.dumps(LABELS)}\ntiers: [local, claude-haiku-4-5]\n"
        "data: {train: train.jsonl}\n"
    )
    assert load_route(tmp_path).calibration_share == 0.2


def test_new_local_settings_are_not_certified_on_the_old_models_recorded_scores(
    tmp_path: Path,
) -> None:
    """Retrained with the lexical view, a refit must score the new model, not reuse the rows
    recorded for the old one (their features lack the view's columns)."""
    write_splits(tmp_path, train=30, test=10)
    spec = (
        "name: settings\ndescription: bank tickets\n"
        f"labels: {json.dumps(LABELS)}\n"
        "tiers: [local]\nerror_budget: 0.05\n"
        "data: {train: train.jsonl, test: test.jsonl}\n"
    )
    (tmp_path / "route.yaml").write_text(spec)
    assert tiergate("train", str(tmp_path)).returncode == 0
    assert tiergate("calibrate", str(tmp_path), "--json").returncode == 0
    same = json.loads(tiergate("calibrate", str(tmp_path), "--refit", "--json").stdout)
    assert same["reused_answers"] is True
    (tmp_path / "route.yaml").write_text(spec + "local: {lexical: true}\n")
    assert tiergate("train", str(tmp_path)).returncode == 0
    refit = tiergate("calibrate", str(tmp_path), "--refit", "--json")
    assert refit.returncode == 0, refit.stderr
    assert json.loads(refit.stdout)["reused_answers"] is False
    assert "lexical_probability" in (tmp_path / "artifacts" / "calibration.json").read_text()
