"""The extraction scenario: assumed accuracy per model, realistic mistakes, through the SDK."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
from conftest import FAKE_KEY, HAIKU, text_of, tool_input

from tiergate.core.prices import load_price_book
from tiergate.emulator import EmulatorConfig, EmulatorServer, load_scenario
from tiergate.emulator.extract_scenario import (
    ExtractScenario,
    extract_scenario_from_dict,
    extract_scenario_from_examples,
)
from tiergate.emulator.scenario import ScenarioError
from tiergate.routing.route import load_route
from tiergate.routing.runtime import read_examples
from tiergate.tasks.base import Context, Item
from tiergate.tasks.extract import ExtractTask

SNIPS = Path(__file__).parents[2] / "examples" / "snips"
SONNET = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def task() -> ExtractTask:
    loaded = load_route(SNIPS).task
    assert isinstance(loaded, ExtractTask)
    return loaded


@pytest.fixture(scope="module")
def examples(task: ExtractTask) -> list[Any]:
    route = load_route(SNIPS)
    return read_examples(route, SNIPS / "data" / "snips_test.jsonl")


@pytest.fixture(scope="module")
def scenario(examples: list[Any]) -> ExtractScenario:
    return extract_scenario_from_examples(examples, name="snips-test")


def request_schema(task: ExtractTask) -> dict[str, Any]:
    return task.schema()


def test_each_model_is_right_about_as_often_as_assumed(
    task: ExtractTask, examples: list[Any], scenario: ExtractScenario
) -> None:
    schema = request_schema(task)
    model = load_price_book().get(HAIKU)
    for name, family, assumed in ((HAIKU, "haiku", 0.80), (SONNET, "sonnet", 0.90)):
        usable = right = 0
        for example in examples:
            found = scenario.answer(0, name, family, example.text, schema)
            assert found is not None
            reading = task.read(model, {"content": [tool_block(found.value)]})
            usable += reading.usable
            right += reading.usable and task.correct(reading.payload, example.label)
            # The scenario's own verdict agrees with the task's judgement.
            assert found.correct == (
                reading.usable and task.correct(reading.payload, example.label)
            )
        # 700 documents: the right share is within about 4 points of the assumption (the
        # invalid objects come on top of the wrong ones).
        assert abs(right / len(examples) - assumed) < 0.05
        assert usable / len(examples) > 0.9


def test_mistakes_are_the_realistic_kinds(
    task: ExtractTask, examples: list[Any], scenario: ExtractScenario
) -> None:
    schema = request_schema(task)
    kinds: collections.Counter[str] = collections.Counter()
    for example in examples:
        found = scenario.answer(0, HAIKU, "haiku", example.text, schema)
        assert found is not None
        kinds.update(found.mistakes)
    assert set(kinds) == {"drop", "extra_words", "format", "similar_field", "made_up", "invalid"}
    assert kinds["drop"] > kinds["made_up"]


def test_an_extra_word_comes_from_the_document(
    scenario: ExtractScenario, task: ExtractTask
) -> None:
    schema = request_schema(task)
    for text, gold in list(scenario.items.items())[:400]:
        found = scenario.answer(0, HAIKU, "haiku", text, schema)
        assert found is not None
        if found.mistakes == ("extra_words",):
            changed = [
                value
                for key, value in found.value["slots"].items()
                if value != gold["slots"].get(key)
            ]
            assert len(changed) == 1 and changed[0].casefold() in text
            return
    pytest.fail("no document with only an extra-words mistake")


def test_stated_confidence_is_informative(task: ExtractTask, scenario: ExtractScenario) -> None:
    schema = request_schema(task)
    right: list[float] = []
    wrong: list[float] = []
    for text in scenario.items:
        found = scenario.answer(0, HAIKU, "haiku", text, schema)
        assert found is not None
        (right if found.correct else wrong).append(found.value["confidence"])
    assert sum(right) / len(right) > sum(wrong) / len(wrong) + 0.1
    assert max(wrong) > min(right)  # overlapping: informative, not a give-away


def test_answers_are_reproducible_and_models_err_on_the_same_documents(
    task: ExtractTask, scenario: ExtractScenario
) -> None:
    schema = request_schema(task)
    texts = list(scenario.items)
    first = [scenario.answer(3, HAIKU, "haiku", t, schema) for t in texts]
    again = [scenario.answer(3, HAIKU, "haiku", t, schema) for t in texts]
    assert first == again
    sonnet = [scenario.answer(3, SONNET, "sonnet", t, schema) for t in texts]
    haiku_wrong = [not (a and a.correct) for a in first]
    sonnet_wrong = [not (a and a.correct) for a in sonnet]
    both = sum(h and s for h, s in zip(haiku_wrong, sonnet_wrong, strict=True))
    # Correlated difficulty: Sonnet's errors fall mostly where Haiku errs too.
    assert both / sum(sonnet_wrong) > 0.5


def test_the_sdk_gets_the_scenario_object_by_tool_or_by_json_format(
    task: ExtractTask, scenario: ExtractScenario, examples: list[Any]
) -> None:
    model = load_price_book().get(HAIKU)
    known = examples[0]
    body = task.request(model, Item(known.text), Context())
    config = EmulatorConfig(seed=0, scenario=scenario)
    with (
        EmulatorServer(config) as emulator,
        anthropic.Anthropic(api_key=FAKE_KEY, base_url=emulator.base_url) as client,
    ):
        called = client.messages.create(**body)
        plain = {key: value for key, value in body.items() if key not in ("tools", "tool_choice")}
        plain["output_config"] = {"format": {"type": "json_schema", "schema": task.schema()}}
        formatted = client.messages.create(**plain)
        unknown = task.request(model, Item("a document nobody labelled"), Context())
        generic = client.messages.create(**unknown)
    expected = scenario.answer(0, HAIKU, "haiku", known.text, task.schema())
    assert expected is not None
    assert tool_input(called) == expected.value
    assert json.loads(text_of(formatted)) == expected.value
    # A document the scenario does not know gets a schema-shaped sample, not a scenario answer.
    assert set(tool_input(generic)) <= {"intent", "slots", "confidence"}


def test_a_scenario_file_of_kind_extract_loads(tmp_path: Path) -> None:
    path = tmp_path / "extract.json"
    path.write_text(
        json.dumps(
            {
                "kind": "extract",
                "models": {"haiku": {"accuracy": 0.5, "invalid": 0.0}},
                "items": [{"text": "Play jazz", "label": {"intent": "PlayMusic", "slots": {}}}],
            }
        )
    )
    loaded = load_scenario(path)
    assert isinstance(loaded, ExtractScenario)
    assert loaded.behaviour(HAIKU, "haiku").accuracy == 0.5
    with pytest.raises(ScenarioError, match="accuracy"):
        extract_scenario_from_dict(
            {"items": [{"text": "x", "label": {"intent": "PlayMusic"}}], "models": {"haiku": {}}}
        )
    with pytest.raises(ScenarioError, match="'label' object"):
        extract_scenario_from_dict({"items": [{"text": "x", "label": "PlayMusic"}]})


def tool_block(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_1", "name": "extract_fields", "input": value}
