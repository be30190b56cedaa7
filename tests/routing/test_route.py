from pathlib import Path

import pytest

from tiergate.routing.route import RouteError, load_route
from tiergate.tasks.classify import ClassifyTask

ROUTE = """
name: tiny
description: test tickets
labels:
  - card_arrival
  - {name: lost_card, description: the card is lost}
tiers: [local, claude-haiku-4-5]
error_budget: 0.02
data: {train: train.csv, calibration_share: 0.3}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "route.yaml"
    path.write_text(text)
    return path


def test_a_route_loads_with_defaults(tmp_path: Path) -> None:
    route = load_route(write(tmp_path, ROUTE))
    task = route.task
    assert isinstance(task, ClassifyTask)
    assert task.label_names == ["card_arrival", "lost_card"]
    assert task.labels[1].description == "the card is lost"
    assert route.claude_tiers == ("claude-haiku-4-5",)
    assert route.train_data == tmp_path / "train.csv"
    assert (route.calibration_share, route.confidence, route.when_unsure) == (0.3, 0.95, "flag")
    assert route.delta == pytest.approx(0.05)
    assert load_route(tmp_path).name == "tiny"  # a folder means its route.yaml


def test_restricting_the_ladder_keeps_its_order(tmp_path: Path) -> None:
    route = load_route(write(tmp_path, ROUTE))
    assert route.restricted(["claude-haiku-4-5", "local"]).tiers == ("local", "claude-haiku-4-5")
    with pytest.raises(RouteError, match="not in this route's ladder"):
        route.restricted(["claude-opus-4-8"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("tiers: [local, claude-haiku-4-5]", "tiers: [claude-haiku-4-5, local]"),
            "must come first",
        ),
        (("error_budget: 0.02", "error_budget: 1.5"), "error_budget"),
        (("error_budget: 0.02", "when_unsure: maybe"), "when_unsure"),
        (("  - card_arrival\n", "  - lost_card\n"), "duplicate labels"),
        (("name: tiny", "task: translate"), "not a kind of task tiergate knows"),
        (("calibration_share: 0.3", "calibration_share: 2"), "calibration_share"),
    ],
)
def test_bad_routes_name_the_problem(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(RouteError, match=message):
        load_route(write(tmp_path, ROUTE.replace(*change)))


def test_the_shipped_example_routes_load() -> None:
    root = Path(__file__).parents[2] / "examples"
    banking = load_route(root / "banking77")
    assert isinstance(banking.task, ClassifyTask)
    assert (
        len(banking.task.labels) == 77
        and banking.train_data is not None
        and banking.train_data.exists()
    )
    clinc = load_route(root / "clinc150")
    assert isinstance(clinc.task, ClassifyTask)
    assert len(clinc.task.labels) == 151 and "out_of_scope" in clinc.task.label_names
    assert clinc.calibration_data is not None and clinc.calibration_data.exists()
    # The local-only copy reads examples/banking77's data and labels, holds nothing out, and
    # asks for the packaged mpnet (float32) with the lexical view.
    local = load_route(root / "banking77_local")
    assert local.tiers == ("local",) and local.calibration_share == 0.0
    assert isinstance(local.task, ClassifyTask) and local.task.labels == banking.task.labels
    assert local.train_data is not None and banking.train_data is not None
    assert local.train_data.resolve() == banking.train_data.resolve()
    assert (local.local.encoder, local.local.quantize, local.local.lexical) == (
        "all-mpnet-base-v2",
        "none",
        True,
    )


def test_an_out_of_scope_label_must_be_a_label(tmp_path: Path) -> None:
    route = load_route(write(tmp_path, ROUTE + "out_of_scope_label: lost_card\n"))
    assert isinstance(route.task, ClassifyTask)
    assert route.task.out_of_scope_label == "lost_card"
    with pytest.raises(RouteError, match="out_of_scope_label"):
        load_route(write(tmp_path, ROUTE + "out_of_scope_label: pizza\n"))
