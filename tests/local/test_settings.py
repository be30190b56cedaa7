from __future__ import annotations

from pathlib import Path

import pytest

from tiergate.classifier.settings import FinetuneSettings, LocalSettings, LocalSettingsError
from tiergate.routing.route import RouteError, load_route


def test_an_absent_block_means_every_default() -> None:
    assert LocalSettings.from_mapping(None) == LocalSettings() == LocalSettings.from_mapping({})
    assert LocalSettings().finetune is None


def test_finetune_true_takes_the_default_fine_tuning_settings() -> None:
    settings = LocalSettings.from_mapping({"finetune": True})
    assert settings.finetune == FinetuneSettings()
    custom = LocalSettings.from_mapping({"finetune": {"max_pairs": 500, "folds": 3}})
    assert custom.finetune == FinetuneSettings(max_pairs=500, folds=3)
    assert LocalSettings.from_mapping({"finetune": False}).finetune is None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"runtime": "tensorflow"}, "local.runtime"),
        ({"quantize": "int4"}, "local.quantize"),
        ({"max_seq_length": 0}, "local.max_seq_length"),
        ({"encoder": ""}, "local.encoder"),
        ({"finetune": {"max_pairs": "many"}}, "local.finetune.max_pairs"),
        ({"finetune": {"epochs": 0}}, "local.finetune.epochs"),
        ({"finetune": {"folds": 1}}, "local.finetune.folds"),
        ({"finetune": {"learning_rate": 2}}, "local.finetune.learning_rate"),
        ({"finetune": {"warmup": 3}}, "local.finetune: unknown setting(s) warmup"),
        ({"finetune": "yes"}, "local.finetune must be"),
        ({"encoder": "static:all-MiniLM-L6-v2", "finetune": True}, "local.finetune: a static"),
        ({"runtim": "onnx"}, "local: unknown setting(s) runtim"),
    ],
)
def test_a_bad_setting_fails_naming_its_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(LocalSettingsError) as caught:
        LocalSettings.from_mapping(raw)
    assert field in str(caught.value)


def test_a_route_reads_its_local_block_and_reports_bad_settings_with_its_path(
    tmp_path: Path,
) -> None:
    route = tmp_path / "route.yaml"
    body = "name: r\ntask: classify\nlabels: [a, b]\ntiers: [local]\n"
    route.write_text(body + "local:\n  runtime: torch\n  finetune: {max_pairs: 100}\n")
    loaded = load_route(route)
    assert loaded.local.runtime == "torch"
    assert loaded.local.finetune == FinetuneSettings(max_pairs=100)
    route.write_text(body + "local:\n  quantize: fp4\n")
    with pytest.raises(RouteError, match=r"route\.yaml: local\.quantize must be one of"):
        load_route(route)
