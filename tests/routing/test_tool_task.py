"""Tool-call decisions: BFCL's scoring rules, the conversion for the Claude API, the task's
reading and features, and the emulator's tool scenario."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tiergate.core.prices import load_price_book
from tiergate.datasets import DatasetError
from tiergate.emulator.tool_scenario import request_key, tool_scenario_from_examples
from tiergate.routing.route import load_route
from tiergate.routing.runtime import read_examples
from tiergate.tasks.base import Context, Item
from tiergate.tasks.tool import ToolTask, instructed, without_confidence
from tiergate.tasks.tool_bfcl import convert_row
from tiergate.tasks.tool_gold import canonical_answer, decision_correct

BFCL = Path(__file__).parents[2] / "examples" / "bfcl"

AREA = {
    "category": "simple_python",
    "calls": [
        {
            "geometry.area": {
                "base": [10],
                "height": [5.0],
                "unit": ["", "units"],
                "when": ["April 1, 2024"],
                "interval": [[1.0, 3.0]],
            }
        }
    ],
    "signatures": {
        "geometry.area": {
            "required": ["base", "height"],
            "types": {
                "base": "integer",
                "height": "float",
                "unit": "string",
                "when": "string",
                "interval": "tuple",
            },
        }
    },
}
RIGHT: dict[str, Any] = {
    "name": "geometry_area",
    "arguments": {"base": 10, "height": 5, "when": "april 1 2024", "interval": [1.0, 3.0]},
}


def _with(**arguments: Any) -> list[dict[str, Any]]:
    merged = {**RIGHT["arguments"], **arguments}
    return [{"name": RIGHT["name"], "arguments": {k: v for k, v in merged.items() if v != ...}}]


def test_bfcl_rules_accept_what_the_gold_allows() -> None:
    assert decision_correct([RIGHT], AREA)  # dotted name, int for float, normalised string
    assert decision_correct(_with(unit="Units"), AREA)  # an optional value from the list
    assert decision_correct(_with(height=5.0), AREA)


@pytest.mark.parametrize(
    ("calls", "why"),
    [
        (_with(base=...), "a required parameter left out"),
        (_with(when=...), "a gold parameter without '' left out"),
        (_with(base=10.0), "a float where an integer is declared"),
        (_with(base=11), "a value not in the list"),
        (_with(unit="metres"), "an optional value not in the list"),
        (_with(precision=2), "a parameter the gold does not list"),
        (_with(interval=[3.0, 1.0]), "a list in another order"),
        (_with(base=True), "a boolean for an integer"),
        ([{**RIGHT, "name": "geometry_volume"}], "another function"),
        ([], "no call"),
        ([RIGHT, RIGHT], "one call too many"),
    ],
)
def test_bfcl_rules_refuse(calls: list[dict[str, Any]], why: str) -> None:
    assert not decision_correct(calls, AREA), why


def test_parallel_calls_match_in_any_order_each_once() -> None:
    gold = {
        "calls": [{"play": {"artist": ["Taylor Swift"]}}, {"play": {"artist": ["Maroon 5"]}}],
        "signatures": {"play": {"required": ["artist"], "types": {"artist": "string"}}},
    }
    swift = {"name": "play", "arguments": {"artist": "taylor swift"}}
    maroon = {"name": "play", "arguments": {"artist": "Maroon 5"}}
    assert decision_correct([maroon, swift], gold)
    assert not decision_correct([swift, swift], gold)


def test_nested_dicts_irrelevance_and_relevance() -> None:
    gold = {
        "calls": [{"set": {"body": [{"mode": ["AIR_DRY"], "wind": ["", "MID"]}]}}],
        "signatures": {"set": {"required": ["body"], "types": {"body": "dict"}}},
    }
    assert decision_correct([{"name": "set", "arguments": {"body": {"mode": "air_dry"}}}], gold)
    wrong = {"body": {"mode": "AIR_DRY", "wind": "HIGH"}}
    assert not decision_correct([{"name": "set", "arguments": wrong}], gold)
    assert canonical_answer(gold) == [
        {"name": "set", "arguments": {"body": {"mode": "AIR_DRY", "wind": "MID"}}}
    ]
    assert decision_correct([], {"calls": []})
    assert not decision_correct([RIGHT], {"calls": []})
    assert decision_correct([RIGHT], {"calls": None})
    assert not decision_correct([], {"calls": None})


def test_conversion_maps_types_and_names_for_the_api() -> None:
    row = {
        "id": "live_simple_1-0-0",
        "category": "live_simple",
        "question": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "functions": [
            {
                "name": "a.b",
                "description": "d",
                "parameters": {
                    "type": "dict",
                    "properties": {
                        "x": {"type": "float", "optional": True},
                        "y": {"type": "tuple", "items": {"type": "float"}},
                        "z": {"type": "any"},
                    },
                    "required": ["x"],
                },
            }
        ],
        "gold": [{"a.b": {"x": [1.0]}}],
    }
    converted = convert_row(row)
    tool = converted["request"]["tools"][0]
    assert tool["name"] == "a_b"
    assert tool["input_schema"] == {
        "type": "object",
        "properties": {
            "x": {"type": "number"},
            "y": {"type": "array", "items": {"type": "number"}},
            "z": {},
        },
        "required": ["x"],
    }
    assert converted["request"]["system"] == "Be brief."
    assert converted["request"]["messages"] == [{"role": "user", "content": "Hi"}]
    assert converted["label"]["signatures"]["a.b"]["types"]["x"] == "float"  # kept for scoring


def test_the_example_data_converts_and_scores_its_own_gold() -> None:
    route = load_route(BFCL)
    examples = read_examples(route, BFCL / "data" / "calibration.jsonl")
    assert len(examples) == 744
    assert {e.label["category"] for e in examples} == {
        "simple_python",
        "multiple",
        "parallel",
        "parallel_multiple",
        "irrelevance",
    }
    scored = [decision_correct(canonical_answer(e.label), e.label) for e in examples]
    assert sum(scored) >= len(scored) - 5  # a few gold entries contradict their own types
    with pytest.raises(DatasetError, match="request"):
        ToolTask().example({"text": "x", "label": {"calls": []}}, "f.jsonl:3")


def _message(*blocks: dict[str, Any], stop: str = "tool_use") -> dict[str, Any]:
    return {"content": list(blocks), "stop_reason": stop, "usage": {}}


def test_reading_a_turn_and_its_features() -> None:
    task = ToolTask()
    book = load_price_book()
    haiku = book.get("claude-haiku-4-5")
    request = {
        "messages": [{"role": "user", "content": "What is the weather in Paris tomorrow?"}],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather forecast for a city",
                "input_schema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                    "required": ["city"],
                },
            },
            {"name": "book_flight", "description": "Book a plane ticket", "input_schema": {}},
        ],
    }
    item = Item("What is the weather in Paris tomorrow?", request=request)
    body = task.request(haiku, item, Context())
    assert body["tools"] == request["tools"] and body["model"] == "claude-haiku-4-5"
    assert "confidence: P" in body["system"][-1]["text"]
    good = task.read(
        haiku,
        _message(
            {"type": "text", "text": "confidence: 0.9"},
            {"type": "tool_use", "id": "t", "name": "get_weather", "input": {"city": "Paris"}},
        ),
    )
    assert good.payload == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert good.stated_confidence == 0.9
    bad = task.read(
        haiku,
        _message({"type": "tool_use", "id": "t", "name": "get_weather", "input": {"days": "2"}}),
    )
    good_features = task.features(good, item, Context())
    bad_features = task.features(bad, item, Context())
    assert good_features["invalid_calls"] == 0 and bad_features["argument_problems"] == 2
    assert bad_features["stated_missing"] == 1.0
    assert good_features["similarity_margin"] > 0
    wrong_tool = task.read(
        haiku, _message({"type": "tool_use", "id": "t", "name": "book_flight", "input": {}})
    )
    assert task.features(wrong_tool, item, Context())["similarity_margin"] < 0
    above = Context(earlier=(("claude-haiku-4-5", good.payload),))
    assert "agrees_with_below" not in good_features
    assert task.features(good, item, above)["agrees_with_below"] == 1.0
    assert task.features(wrong_tool, item, above)["agrees_with_below"] == 0.0
    assert not task.read(haiku, _message(stop="max_tokens")).usable
    assert (
        task.read(haiku, _message({"type": "text", "text": "No."}, stop="end_turn")).payload == []
    )
    shown = without_confidence(
        _message({"type": "text", "text": "confidence: 0.9"}, {"type": "tool_use", "id": "t"})
    )
    assert shown["content"] == [{"type": "tool_use", "id": "t"}]
    assert instructed({"system": "Be brief.", "messages": []})["system"][0]["text"] == "Be brief."


def test_agreement_and_the_per_category_report() -> None:
    task = ToolTask()
    first = [RIGHT, {"name": "x", "arguments": {}}]
    assert task.agree(first, list(reversed(first)))
    assert not task.agree(first, [RIGHT])
    gold_b = {**AREA, "category": "multiple"}
    report = task.report([[RIGHT], [], [RIGHT]], [AREA, AREA, gold_b], [True, True, False])
    assert report["categories"]["simple_python"] == {
        "items": 2,
        "accuracy": 0.5,
        "accepted_share": 1.0,
        "accepted_accuracy": 0.5,
    }
    assert report["categories"]["multiple"]["accepted_accuracy"] is None


def test_the_emulated_models_make_realistic_mistakes() -> None:
    route = load_route(BFCL)
    examples = read_examples(route, BFCL / "data" / "calibration.jsonl")
    scenario = tool_scenario_from_examples(examples)
    right: Counter[str] = Counter()
    confidence: dict[bool, list[float]] = {True: [], False: []}
    kinds: Counter[str] = Counter()
    for example in examples:
        request = example.request
        assert request is not None
        for model, family in (("claude-haiku-4-5", "haiku"), ("claude-sonnet-4-6", "sonnet")):
            decision = scenario.decide(0, model, family, request["messages"], request["tools"])
            assert decision is not None
            assert decision.correct == decision_correct(decision.calls, example.label)
            right[family] += decision.correct
            confidence[decision.correct].append(decision.confidence)
            if not decision.correct and family == "haiku":
                kinds[_mistake(decision.calls, example.label)] += 1
    assert 0.82 < right["haiku"] / len(examples) < 0.92
    assert right["sonnet"] > right["haiku"]
    mean = {key: sum(values) / len(values) for key, values in confidence.items()}
    assert mean[True] > mean[False] + 0.1  # informative...
    assert min(confidence[True]) < max(confidence[False])  # ...but not a perfect separator
    assert {"no call", "wrong tool", "wrong arguments", "a call when none fits"} <= set(kinds)
    other = scenario.decide(0, "claude-haiku-4-5", "haiku", [{"role": "user", "content": "?"}], [])
    assert other is None
    assert request_key([{"role": "user", "content": " A  b"}], [{"name": "t"}]) == "a b|t"


def _mistake(calls: list[dict[str, Any]], gold: dict[str, Any]) -> str:
    expected = gold["calls"]
    if not calls:
        return "no call"
    if expected == []:
        return "a call when none fits"
    names = Counter(c["name"] for c in calls)
    if names != Counter(json.dumps(list(call))[2:-2].replace(".", "_") for call in expected):
        return "wrong tool" if len(calls) == len(expected) else "missing call"
    return "wrong arguments"
