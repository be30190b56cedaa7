"""The README's library example, run as it stands, and the lazy public surface.

The example is read out of README.md (the first ``python`` block of its "The library" section)
and run in a fresh interpreter whose working folder holds a small ``examples/banking77`` route
(8 BANKING77 queues), with the emulator as the Claude API: the code a reader copies is the code
that is tested.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import tiergate
from tiergate.datasets import load_dataset
from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.emulator.scenario_build import scenario_from_examples

ROOT = Path(__file__).resolve().parents[2]
BANKING77 = ROOT / "examples" / "banking77" / "data"
# The first eight of BANKING77's queues, as its labels file lists them.
QUEUES = tuple(yaml.safe_load((BANKING77.parent / "labels.yaml").read_text())["labels"][:8])


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## The library\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "README.md: no python block under '## The library'"
    return found.group(1)


def _sample(source: Path, target: Path, per_queue: int) -> None:
    counts = dict.fromkeys(QUEUES, 0)
    with source.open() as rows, target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "category"])
        for row in csv.DictReader(rows):
            if row["category"] in counts and counts[row["category"]] < per_queue:
                counts[row["category"]] += 1
                writer.writerow([row["text"], row["category"]])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``examples/banking77``: 8 queues, 100 training and 10 test tickets each
    (calibration needs a few hundred held-out tickets to certify anything)."""
    root = tmp_path_factory.mktemp("readme")
    route = root / "examples" / "banking77"
    (route / "data").mkdir(parents=True)
    _sample(BANKING77 / "banking77_train.csv", route / "data" / "train.csv", 100)
    _sample(BANKING77 / "banking77_test.csv", route / "data" / "test.csv", 10)
    settings = {
        "name": "banking77",
        "description": "Messages from customers of an online bank; each label is a queue.",
        "labels": list(QUEUES),
        "tiers": ["local", "claude-haiku-4-5", "claude-sonnet-4-6"],
        "error_budget": 0.1,
        "confidence": 0.9,
        "data": {"train": "data/train.csv", "test": "data/test.csv", "calibration_share": 0.4},
        "few_shot": 4,
        "local": {"runtime": "torch"},  # no ONNX export: the example, not the export, is tested
    }
    (route / "route.yaml").write_text(yaml.safe_dump(settings))
    return root


@pytest.fixture(scope="module")
def emulator(workspace: Path) -> Iterator[EmulatorServer]:
    data = workspace / "examples" / "banking77" / "data"
    known = load_dataset(data / "train.csv") + load_dataset(data / "test.csv")
    scenario = scenario_from_examples(known, name="banking77")
    with EmulatorServer(EmulatorConfig(seed=2, scenario=scenario, latency_scale=0.0)) as running:
        yield running


def test_the_readme_library_example_runs_as_written(
    workspace: Path, emulator: EmulatorServer
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "TIERGATE_"))}
    env.update(
        ANTHROPIC_BASE_URL=emulator.base_url,
        ANTHROPIC_API_KEY="sk-test-not-a-real-key",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(ROOT / "src"),
    )
    done = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    trained = re.fullmatch(r"local tier: ([\d.]+)% right on held-out tickets", lines[0])
    assert trained is not None and float(trained.group(1)) > 60.0, lines[0]
    scored = re.fullmatch(
        r"accepted ([\d.]+)% at ([\d.]+)%, (-?[\d.]+)% less than claude-sonnet-4-6 alone", lines[1]
    )
    assert scored is not None, lines[1]
    assert 0.0 < float(scored.group(1)) <= 100.0 and float(scored.group(3)) > 0.0
    label, tier, _confidence, cost = lines[2].split()
    assert label in QUEUES
    assert tier in ("local", "claude-haiku-4-5", "claude-sonnet-4-6")
    assert float(cost) >= 0.0
    artifacts = workspace / "examples" / "banking77" / "artifacts"
    assert (artifacts / "local").is_dir() and (artifacts / "calibration.json").is_file()


def test_the_public_names_load_on_first_use() -> None:
    """``import tiergate`` loads no engine, SDK or parser; each public name resolves."""
    code = (
        "import sys, tiergate\n"
        "heavy = {'numpy', 'anthropic', 'aiohttp', 'pydantic', 'yaml', 'torch', 'scipy'}\n"
        "print(','.join(sorted(heavy & {m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == ""
    exported = set(tiergate._EXPORTS)
    assert set(tiergate.__all__) == exported | {"__version__"}
    for name in sorted(exported):
        value = getattr(tiergate, name)
        assert getattr(value, "__name__", name) == name
    assert "calibrate_route" in dir(tiergate)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = tiergate.no_such_name
