"""The classification scenario: accuracy as configured, labels from the set, reproducible."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import anthropic
import jsonschema
import pytest
import yaml
from conftest import FAKE_KEY, HAIKU, text_of, tool_input

from tiergate.cli.main import main
from tiergate.emulator import (
    EmulatorConfig,
    EmulatorServer,
    Scenario,
    build_scenario,
    load_scenario,
    scenario_from_dict,
)

# The copy that ships with the example route, so the test never skips on a clean clone.
BANKING_TEST = Path(__file__).parents[2] / "examples" / "banking77" / "data" / "banking77_test.csv"
SONNET = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def banking() -> Scenario:
    return scenario_from_dict(build_scenario([BANKING_TEST]))


def texts_of(scenario: Scenario, count: int) -> list[str]:
    with BANKING_TEST.open(newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)][:count]


def route_tool(labels: tuple[str, ...]) -> Any:
    return {
        "name": "route_ticket",
        "description": "Route the ticket",
        "input_schema": {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": list(labels)},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "reason": {"type": "string"},
            },
            "required": ["label", "confidence", "reason"],
        },
    }


async def classify(base_url: str, model: str, texts: list[str], tool: Any) -> list[dict[str, Any]]:
    async with anthropic.AsyncAnthropic(api_key=FAKE_KEY, base_url=base_url) as sdk:
        limit = asyncio.Semaphore(32)

        async def one(text: str) -> dict[str, Any]:
            async with limit:
                message = await sdk.messages.create(
                    model=model,
                    max_tokens=200,
                    tools=[tool],
                    tool_choice={"type": "tool", "name": "route_ticket"},
                    messages=[{"role": "user", "content": f"Route this.\n<ticket>{text}</ticket>"}],
                )
            block = message.content[0]
            assert block.type == "tool_use"
            jsonschema.validate(block.input, tool["input_schema"])
            return dict(block.input)

        return await asyncio.gather(*(one(text) for text in texts))


async def test_scenario_answers_through_the_sdk(banking: Scenario) -> None:
    texts = texts_of(banking, 400)
    tool = route_tool(banking.labels)
    async with EmulatorServer(EmulatorConfig(seed=3, scenario=banking)) as running:
        haiku = await classify(running.base_url, HAIKU, texts, tool)
        sonnet = await classify(running.base_url, SONNET, texts, tool)
    truth = [banking.true_label(text) for text in texts]
    haiku_right = [answer["label"] == label for answer, label in zip(haiku, truth, strict=True)]
    sonnet_right = [answer["label"] == label for answer, label in zip(sonnet, truth, strict=True)]
    assert abs(sum(haiku_right) / len(texts) - 0.85) < 0.05
    assert abs(sum(sonnet_right) / len(texts) - 0.92) < 0.04
    assert all(answer["label"] in banking.labels for answer in haiku + sonnet)
    right = [a["confidence"] for a, ok in zip(haiku, haiku_right, strict=True) if ok]
    wrong = [a["confidence"] for a, ok in zip(haiku, haiku_right, strict=True) if not ok]
    assert sum(right) / len(right) > sum(wrong) / len(wrong) + 0.1  # informative...
    assert max(wrong) > min(right)  # ...but overlapping, so not perfectly calibrated
    # Correlated through per-text difficulty: Sonnet is right more often where Haiku is.
    both = sum(h and s for h, s in zip(haiku_right, sonnet_right, strict=True))
    assert both / sum(haiku_right) > 0.95


def test_accuracy_over_the_whole_set_is_close(banking: Scenario) -> None:
    answers = [banking.answer(9, HAIKU, "haiku", text) for text in banking.items]
    accuracy = sum(answer.correct for answer in answers if answer) / len(answers)
    assert abs(accuracy - 0.85) < 0.02
    wrong = [answer for answer in answers if answer and not answer.correct]
    assert all(answer.label in banking.labels for answer in wrong)


def test_answers_are_deterministic_per_seed(banking: Scenario) -> None:
    texts = list(banking.items)[:300]
    first = [banking.answer(1, HAIKU, "haiku", text) for text in texts]
    again = [banking.answer(1, HAIKU, "haiku", text) for text in texts]
    other = [banking.answer(2, HAIKU, "haiku", text) for text in texts]
    assert first == again
    assert first != other


def test_file_overrides_pattern_fields_and_accuracy(tmp_path: Path) -> None:
    raw = {
        "ticket_pattern": r"TICKET: (.*)$",
        "fields": {"label": "intent", "confidence": "certainty", "reason": "why"},
        "models": {"haiku": {"accuracy": 0.0}, SONNET: {"accuracy": 1.0}},
        "labels": ["card_arrival", "card_delivery_estimate", "refund"],
        "confusable": {"card_arrival": ["card_delivery_estimate"]},
        "items": [{"text": "Where is my card?", "label": "card_arrival"}],
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw))
    schema: Any = {
        "type": "object",
        "properties": {
            "intent": {"type": "string"},
            "certainty": {"type": "integer", "minimum": 0, "maximum": 100},
            "why": {"type": "string"},
        },
        "required": ["intent", "certainty", "why"],
    }
    with EmulatorServer(EmulatorConfig(scenario=load_scenario(path))) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        answers = {}
        for model in (HAIKU, SONNET):
            message = sdk.messages.create(
                model=model,
                max_tokens=200,
                output_config={"format": {"type": "json_schema", "schema": schema}},
                messages=[{"role": "user", "content": "Classify.\nTICKET: where is  my CARD?"}],
            )
            answers[model] = json.loads(text_of(message))
        free = sdk.messages.create(
            model=SONNET,
            max_tokens=200,
            messages=[{"role": "user", "content": "TICKET: Where is my card?"}],
        )
    assert answers[HAIKU]["intent"] == "card_delivery_estimate"
    assert answers[SONNET]["intent"] == "card_arrival"
    assert 0 <= answers[HAIKU]["certainty"] <= 100
    jsonschema.validate(answers[HAIKU], schema)
    assert json.loads(text_of(free))["intent"] == "card_arrival"


def test_unknown_text_gets_a_generic_valid_answer(banking: Scenario) -> None:
    tool = route_tool(banking.labels)
    with EmulatorServer(EmulatorConfig(scenario=banking)) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        message = sdk.messages.create(
            model=HAIKU,
            max_tokens=200,
            tools=[tool],
            tool_choice={"type": "any"},
            messages=[{"role": "user", "content": "<ticket>Never seen this sentence</ticket>"}],
        )
    jsonschema.validate(tool_input(message), tool["input_schema"])


def test_build_scenario_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "banking.json"
    status = main(
        [
            "emulate",
            "build-scenario",
            "--from",
            str(BANKING_TEST),
            "--out",
            str(out),
            "--accuracy",
            "haiku=0.7",
        ]
    )
    assert status == 0
    assert "77 labels" in capsys.readouterr().out
    scenario = load_scenario(out)
    assert isinstance(scenario, Scenario)
    assert scenario.behaviour(HAIKU, "haiku").accuracy == 0.7
    assert scenario.true_label("How do I locate my card?") == "card_arrival"
