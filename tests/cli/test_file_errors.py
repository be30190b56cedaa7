"""Typical mistakes in the three files a user writes, as the command line reports them.

A gateway config (``tiergate serve --config``), a route (``tiergate eval``) and a price book
(``tiergate cost --prices``), each with one mistake: the command exits with status 2 and one
line on stderr naming the file, the field and what was expected, and nothing starts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_run import tiergate

GATEWAY = """\
upstream:
  base_url: http://127.0.0.1:9
  api_key: sk-test-not-real
keys: keys.json
ledger: sqlite:///ledger.db
budget: {policy: clamp, min_tokens: 64}
routes:
  auto:
    kind: rules
    tiers: {cheap: claude-haiku-4-5, strong: claude-sonnet-4-6}
    rules:
      - {when: {input_tokens_over: 4000}, tier: strong}
"""

ROUTE = """\
name: tickets
labels: [card_arrival, lost_or_stolen_card]
tiers: [local, claude-haiku-4-5, claude-sonnet-4-6]
error_budget: 0.02
few_shot: 4
data: {train: train.csv, test: test.csv, calibration_share: 0.3}
"""

PRICES = """\
models:
  claude-haiku-4-5: {input: 0.8}
"""

CASES = [
    # (file, (old, new) or text appended, the message after "FILE: ")
    (
        "gateway",
        ("  api_key:", "  api_kye:"),
        r"upstream\.api_kye: unknown field \(did you mean api_key\?\)",
    ),
    (
        "gateway",
        ("  api_key: sk", "  timeout_s: fast\n  api_key: sk"),
        r"upstream\.timeout_s: Input should be a valid number",
    ),
    (
        "gateway",
        ("min_tokens: 64", "min_tokens: -5"),
        r"budget\.min_tokens: Input should be greater than 0 \(got -5\)",
    ),
    (
        "gateway",
        ("policy: clamp", "policy: clip"),
        r"budget\.policy: Input should be 'clamp' or 'refuse' \(got 'clip'\)",
    ),
    (
        "gateway",
        ("cheap: claude-haiku-4-5", "cheap: claude-haiku-4-6"),
        r"routes\.auto\.tiers\.cheap: 'claude-haiku-4-6' is not in the price book; "
        r"did you mean claude-haiku-4-5",
    ),
    (
        "gateway",
        ("tier: strong}", "tier: gold}"),
        r"routes\.auto\.rules\[0\]\.tier: tier 'gold' is not one of the route's tiers "
        r"\(cheap, strong\)",
    ),
    (
        "gateway",
        ("input_tokens_over:", "input_tokens_ovre:"),
        r"routes\.auto\.rules\[0\]\.when\.input_tokens_ovre: unknown field "
        r"\(did you mean input_tokens_over\?\)",
    ),
    (
        "gateway",
        ("kind: rules", "kind: rulez"),
        r"routes\.auto\.kind: expected one of rules, classify, extract, learned, agent, "
        r"got 'rulez' \(did you mean rules\?\)",
    ),
    ("gateway", "  tickets: {kind: classify}\n", r"routes\.tickets\.route: required field missing"),
    (
        "gateway",
        "  auto: {tiers: {cheap: claude-haiku-4-5}}\n",
        r"line 13: 'auto' is given twice in one mapping \(first on line 8\)",
    ),
    (
        "gateway",
        ("http://127.0.0.1:9", "localhost:8090"),
        r"upstream\.base_url: expected an http:// or https:// URL, got 'localhost:8090'",
    ),
    ("gateway", ("keys: keys.json", "keys: [keys.json"), r"not valid YAML: line \d+, column \d+: "),
    (
        "gateway",
        "  chat: {kind: learned, router: no-router, "
        "tiers: {cheap: claude-haiku-4-5, strong: claude-sonnet-4-6}}\n",
        r"routes\.chat\.router: .*no-router: not a router \(router\.json missing\); "
        r"train one with `tiergate router train",
    ),
    (
        "gateway",
        "  claude-haiku-4-5: {tiers: {cheap: claude-haiku-4-5}}\n",
        r"routes\.claude-haiku-4-5: a route name must not be a model id",
    ),
    (
        "gateway",
        "  tickets: {kind: classify, route: route.yaml}\n",
        r"routes\.tickets\.route: .*route\.yaml: error_budjet: unknown field "
        r"\(did you mean error_budget\?\)",
    ),
    (
        "route",
        ("error_budget: 0.02", "error_budjet: 0.02"),
        r"error_budjet: unknown field \(did you mean error_budget\?\)",
    ),
    (
        "route",
        ("error_budget: 0.02", "error_budget: -0.02"),
        r"error_budget: Input should be greater than 0 \(got -0\.02\)",
    ),
    ("route", ("few_shot: 4", "few_shot: many"), r"few_shot: Input should be a valid integer"),
    (
        "route",
        ("claude-haiku-4-5,", "claude-haiku-4-6,"),
        r"tiers\[1\]: 'claude-haiku-4-6' is neither `local` nor a model of the price book; "
        r"did you mean claude-haiku-4-5",
    ),
    (
        "route",
        ("tiers: [local, claude-haiku-4-5, claude-sonnet-4-6]\n", ""),
        r"tiers: required field missing",
    ),
    (
        "route",
        ("calibration_share: 0.3", "calibration_share: 3"),
        r"data\.calibration_share: Input should be less than 1 \(got 3\)",
    ),
    (
        "route",
        "tiers: [local]\n",
        r"line 7: 'tiers' is given twice in one mapping \(first on line 3\)",
    ),
    (
        "prices",
        ("{input: 0.8}", "{inptu: 0.8}"),
        r"models\.claude-haiku-4-5\.inptu: unknown field \(did you mean input\?\)",
    ),
    (
        "prices",
        ("{input: 0.8}", "{input: -1}"),
        r"models\.claude-haiku-4-5\.input: Input should be greater than or equal to 0 \(got -1\)",
    ),
    ("prices", ("models:", "modles:"), r"modles: unknown field \(did you mean models\?\)"),
    (
        "prices",
        "  acme-small: {input: 0.1}\n",
        r"models\.acme-small\.output: required field missing",
    ),
    (
        "prices",
        "defaults: {cache_reed: 0.1}\n",
        r"defaults\.cache_reed: unknown field \(did you mean cache_read\?\)",
    ),
]

COMMANDS = {
    "gateway": ("gateway.yaml", ["serve", "--config"]),
    "route": ("route.yaml", ["eval"]),
    "prices": (
        "prices.yaml",
        ["cost", "--rpm", "100", "--input-tokens", "400", "--output-tokens", "20", "--prices"],
    ),
}
TEXTS = {"gateway": GATEWAY, "route": ROUTE, "prices": PRICES}


@pytest.mark.parametrize(("kind", "change", "expected"), CASES)
def test_one_mistake_is_one_line_naming_the_file_and_the_field(
    tmp_path: Path, kind: str, change: tuple[str, str] | str, expected: str
) -> None:
    text = TEXTS[kind]
    if isinstance(change, tuple):
        assert change[0] in text, change
        text = text.replace(*change)
    else:
        text += change
    # A good route beside the config, except where a case breaks it on purpose.
    (tmp_path / "route.yaml").write_text(ROUTE.replace("error_budget", "error_budjet"))
    (tmp_path / "train.csv").write_text("text,label\nmy card,card_arrival\n")
    (tmp_path / "test.csv").write_text("text,label\nmy card,card_arrival\n")
    name, command = COMMANDS[kind]
    path = tmp_path / name
    path.write_text(text)
    done = tiergate(*command, str(path))
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    prefix = f"tiergate {command[0]}: error: {path}: "
    assert lines[0].startswith(prefix), lines[0]
    assert re.match(expected, lines[0].removeprefix(prefix)), lines[0]
    assert not (tmp_path / "ledger.db").exists()  # nothing started


def test_a_config_built_in_code_is_checked_the_same_way() -> None:
    from tiergate.gateway.config import ConfigError, parse_config

    raw = {"upstream": {"base_url": "http://x", "connections": 0}}
    with pytest.raises(ConfigError, match=r"^cfg: upstream\.connections: Input should be greater"):
        parse_config(raw, Path("."), {}, "cfg")
    config = parse_config({"limits": None}, Path("/srv"), {"ANTHROPIC_BASE_URL": "http://up:1/"})
    assert config.upstream.base_url == "http://up:1"  # from the environment, made canonical
    assert config.keys_path == Path("/srv/tiergate-keys.json")  # beside the config
    assert json.loads(config.model_dump_json(by_alias=True))["keys"] == "/srv/tiergate-keys.json"
