"""``tiergate router train|eval`` on a small slice of RouterBench, and its one-line errors.

RouterBench has no clear licence, so it is read where it lives (``../shared/data/routing``,
next to the repository), never copied into the project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiergate.precall import LearnedRouter

ROUTING = (Path(__file__).parents[2] / ".." / "shared" / "data" / "routing").resolve()
CHEAP, STRONG = "claude-instant-v1", "gpt-4-1106-preview"
SLICE = ["--limit", "40"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert (ROUTING / "arc_challenge_train.jsonl").is_file(), (
        f"RouterBench records not found at {ROUTING} (expected ../shared/data/routing)"
    )
    return tmp_path_factory.mktemp("cache")


def tiergate(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(HF_HUB_OFFLINE="1", TIERGATE_CACHE=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "tiergate", "router", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def pair(*extra: str) -> list[str]:
    return ["--data", str(ROUTING), "--cheap", CHEAP, "--strong", STRONG, *SLICE, *extra]


def test_eval_reports_every_variant_on_test_prompts_as_json(cache: Path) -> None:
    result = tiergate(cache, "eval", *pair("--quality", "0.9", "--bootstraps", "300", "--json"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["test_prompts"] == 80 and report["train_prompts"] == 80
    assert report["cheap"] == CHEAP and report["strong"] == STRONG
    rows = {row["key"]: row for row in report["variants"]}
    assert rows["strong-only"]["saving"] == 0.0
    assert rows["strong-only"]["quality_vs_strong"] == 1.0
    assert rows["cheap-only"]["to_strong"] == 0.0
    assert "precall" in rows
    chosen = rows[report["chosen"]]
    assert report["saving"] == chosen["saving"]
    assert report["quality_vs_strong"] == chosen["quality_vs_strong"]
    for row in report["variants"]:
        if row["certified"]:
            # Each variant's certificate: its bound met the target, or it routes nothing cheap.
            train = row["train"]
            assert train["quality_lower_bound"] >= 0.9 or train["cheap_side_share"] == 0.0
            assert row["random_same_share"]["to_strong"] == row["to_strong"]
    seconds = {row["second"] for row in report["variants"] if row["second"]}
    # The default candidates cost no more than the cheap model: never gpt-4 or claude-v1.
    assert seconds and not seconds & {STRONG, "claude-v1", "claude-v2", "gpt-3.5-turbo-1106"}
    for second in seconds:
        assert f"cascade:{second}" in rows
        assert rows[f"cascade:{second}"]["cheap_calls_per_prompt"] == 2.0


def test_train_saves_a_router_that_decides(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "router"
    result = tiergate(
        cache, "train", *pair("--second", "mistralai/mixtral-8x7b-chat", "--out", str(out))
    )
    assert result.returncode == 0, result.stderr
    assert "pre-call + cascade (mistralai/mixtral-8x7b-chat)" in result.stdout
    assert f"saved: {out}" in result.stdout
    router = LearnedRouter.load(out)
    decision = router.decide("Which gas do plants take in?\nA) oxygen\nB) carbon dioxide")
    assert decision.tier in ("cheap", "strong")
    assert 0.0 <= decision.score <= 1.0
    assert decision.threshold == router.threshold


def test_eval_prints_one_table(cache: Path) -> None:
    result = tiergate(cache, "eval", *pair("--second", "none", "--bootstraps", "300"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "figures on 80 test prompts the router never saw" in out
    assert "pre-call router" in out and "<- chosen" in out
    assert "random, same share to strong" in out
    assert "agreement cascade (" not in out  # --second none: the pre-call router alone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/no/such/folder"], "/no/such/folder: not a folder"),
        (["--cheap", "claude-instant"], "no model 'claude-instant' in the records"),
        (["--quality", "1.5"], "argument --quality: must be a share in (0, 1], got 1.5"),
        (["--confidence", "1"], "argument --confidence: must be in (0, 1), got 1"),
        (["--second", "none", "--second", "gpt-3.5-turbo-1106"], "cannot be combined"),
        (["--second", STRONG], "a second opinion must be a third model"),
        (["--strong", CHEAP], "the cheap and strong models are both"),
        (["--sample-size", "test"], "--sample-size test works with `router eval`"),
    ],
)
def test_bad_input_fails_on_one_line(cache: Path, args: list[str], message: str) -> None:
    base = {"--data": str(ROUTING), "--cheap": CHEAP, "--strong": STRONG}
    for flag in args[::2]:
        base.pop(flag, None)
    given = [part for item in base.items() for part in item] + args
    result = tiergate(cache, "train", *given, "--out", "/tmp/unused-router")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_a_bad_records_file_is_named(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"prompt": "p", "models": {}}\n')
    result = tiergate(cache, "eval", "--data", str(tmp_path), "--cheap", "a", "--strong", "b")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"tiergate router: error: {tmp_path}: no test files (test.jsonl or *_test.jsonl)"
    )
    (tmp_path / "test.jsonl").write_text("{oops\n")
    result = tiergate(cache, "eval", "--data", str(tmp_path), "--cheap", "a", "--strong", "b")
    assert result.returncode == 2
    assert f"{tmp_path / 'test.jsonl'}:1: not JSON" in result.stderr
