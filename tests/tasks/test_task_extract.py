"""The extraction task: route settings, the request, reading answers, judging, reporting."""

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tiergate.core.prices import ModelPrice, load_price_book
from tiergate.datasets import DatasetError, Example
from tiergate.routing.route import RouteError, load_route
from tiergate.routing.runtime import RuntimeSetupError
from tiergate.tasks.base import Context, Item
from tiergate.tasks.extract import ExtractTask

SNIPS = Path(__file__).parents[2] / "examples" / "snips"
ROUTE = """
name: tiny
task: extract
schema: schema.json
compare: {intent: exact, "slots.party_size_number": number, "slots.*": casefold}
group_by: intent
tiers: [claude-haiku-4-5, claude-sonnet-4-6]
error_budget: 0.05
data: {train: train.jsonl}
"""
TEXT = "Book a table for 4 at a sushi bar in Paris"
SLOTS = {"party_size_number": "4", "restaurant_type": "sushi bar", "city": "Paris"}
GOLD: dict[str, Any] = {"intent": "BookRestaurant", "slots": SLOTS}


def route_file(tmp_path: Path, text: str = ROUTE) -> Path:
    shutil.copy(SNIPS / "schema.json", tmp_path / "schema.json")
    path = tmp_path / "route.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def task(tmp_path: Path) -> ExtractTask:
    loaded = load_route(route_file(tmp_path)).task
    assert isinstance(loaded, ExtractTask)
    return loaded


def without_forced_tools(model: ModelPrice) -> ModelPrice:
    """A model that takes structured output by ``output_config.format`` only."""
    return dataclasses.replace(model, forced_tool_choice=False)


def message(answer: dict[str, Any], *, tool: bool = True) -> dict[str, Any]:
    if tool:
        block = {"type": "tool_use", "id": "toolu_1", "name": "extract_fields", "input": answer}
        return {"content": [block], "stop_reason": "tool_use"}
    return {"content": [{"type": "text", "text": json.dumps(answer)}], "stop_reason": "end_turn"}


def test_a_route_names_its_schema_and_comparisons(task: ExtractTask) -> None:
    assert task.kind == "extract"
    assert task.answer_schema["required"] == ["intent", "slots"]
    assert task.compare["intent"] == "exact"
    assert task.group_by == "intent"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("schema: schema.json", "schema: nowhere.json"), "cannot read"),
        (("schema: schema.json", "schema: {type: object, properties: 3}"), "not a valid JSON"),
        (("schema: schema.json", "schema: {type: array, items: {}}"), "root must be an object"),
        (
            ("schema: schema.json", "schema: {type: object, properties: {confidence: {}}}"),
            "clashes",
        ),
        (("intent: exact", "intent: fuzzy"), "compare"),
        (("group_by: intent", "group_by: intent\nlabels: [a]"), "labels"),
    ],
)
def test_route_mistakes_name_the_file_and_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    path = route_file(tmp_path, ROUTE.replace(*change))
    with pytest.raises(RouteError, match=expected) as raised:
        load_route(path)
    assert str(path) in str(raised.value)


def test_the_request_forces_the_tool_or_asks_for_a_json_format(task: ExtractTask) -> None:
    book = load_price_book()
    haiku = book.get("claude-haiku-4-5")
    body = task.request(haiku, Item(TEXT), Context())
    assert body["tool_choice"] == {"type": "tool", "name": "extract_fields"}
    schema = body["tools"][0]["input_schema"]
    assert schema["required"] == ["intent", "slots", "confidence"]
    assert "confidence" in schema["properties"]
    # Validation-only keywords stay on tiergate's side: the per-intent rules, lengths, $schema.
    dumped = json.dumps(schema)
    assert '"if"' not in dumped and "minLength" not in dumped and "$schema" not in dumped
    assert f"<document>{TEXT}</document>" in body["messages"][0]["content"]
    plain = task.request(without_forced_tools(haiku), Item(TEXT), Context())
    assert "tools" not in plain
    assert plain["output_config"]["format"]["schema"] == schema


def test_padding_examples_reach_the_cacheable_minimum(task: ExtractTask) -> None:
    pool = [
        Example(f"{TEXT} number {n}", {**GOLD, "slots": {**SLOTS, "city": f"c{n}"}})
        for n in range(300)
    ]
    haiku = load_price_book().get("claude-haiku-4-5")
    body = task.prepared(pool).request(haiku, Item(TEXT), Context())
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "<fields>" in body["system"][0]["text"]


def test_a_valid_answer_is_read_with_its_confidence(task: ExtractTask) -> None:
    haiku = load_price_book().get("claude-haiku-4-5")
    for model, tool in ((haiku, True), (without_forced_tools(haiku), False)):
        reading = task.read(model, message({**GOLD, "confidence": 0.8}, tool=tool))
        assert reading.usable
        assert reading.payload == GOLD
        assert reading.stated_confidence == 0.8


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"slots": {}, "confidence": 0.9}, "'intent' is a required property"),
        ({"intent": "Dance", "slots": {}, "confidence": 0.9}, "intent"),
        # A slot the schema does not allow for the intent (its if/then rules).
        ({"intent": "GetWeather", "slots": {"artist": "x"}, "confidence": 0.9}, "schema"),
        ({"intent": "GetWeather", "slots": {"city": 3}, "confidence": 0.9}, "slots/city"),
        ({**GOLD, "confidence": 7}, "not a probability"),
    ],
)
def test_an_answer_failing_the_schema_is_a_problem(
    task: ExtractTask, answer: dict[str, Any], problem: str
) -> None:
    reading = task.read(load_price_book().get("claude-haiku-4-5"), message(answer))
    assert not reading.usable
    assert reading.payload is None
    assert problem in (reading.problem or "")


def test_output_that_is_not_json_is_a_problem(task: ExtractTask) -> None:
    model = without_forced_tools(load_price_book().get("claude-haiku-4-5"))
    broken = {"content": [{"type": "text", "text": '{"intent": '}], "stop_reason": "max_tokens"}
    assert task.read(model, broken).problem == "structured output is not valid JSON"


def test_correct_means_every_field_right_under_its_comparison(task: ExtractTask) -> None:
    same = {
        "intent": "BookRestaurant",
        "slots": {"party_size_number": "4.0", "restaurant_type": "Sushi  Bar", "city": "paris"},
    }
    assert task.correct(same, GOLD)
    dropped = {"intent": "BookRestaurant", "slots": {"party_size_number": "4", "city": "Paris"}}
    assert not task.correct(dropped, GOLD)
    extra = {**GOLD, "slots": {**SLOTS, "cuisine": "sushi"}}
    assert not task.correct(extra, GOLD)
    longer = {**GOLD, "slots": {**SLOTS, "city": "in Paris"}}
    assert not task.correct(longer, GOLD)
    assert not task.correct({**GOLD, "intent": "bookrestaurant"}, GOLD)  # intent is exact
    assert not task.correct(None, GOLD)
    assert task.agree(same, GOLD)


def test_features_say_how_much_is_copied_from_the_document(task: ExtractTask) -> None:
    model = load_price_book().get("claude-haiku-4-5")
    good = task.read(model, message({**GOLD, "confidence": 0.9}))
    features = task.features(good, Item(TEXT), Context())
    # The intent is chosen from a set, not copied: only the slot values count.
    assert features == {"stated_confidence": 0.9, "grounded_share": 1.0, "field_count": 4.0}
    reworded = {**GOLD, "slots": {**SLOTS, "party_size_number": "four"}}
    bad = task.read(model, message({**reworded, "confidence": 0.9}))
    assert task.features(bad, Item(TEXT), Context())["grounded_share"] == pytest.approx(2 / 3)


def test_thresholds_and_splits_follow_group_by(task: ExtractTask, tmp_path: Path) -> None:
    assert task.threshold_key(GOLD) == "BookRestaurant"
    assert task.stratum(GOLD) == "BookRestaurant"
    assert not task.known_gold({})
    by_fields = load_route(route_file(tmp_path, ROUTE.replace("group_by: intent", 'group_by: "*"')))
    keys = {
        by_fields.task.threshold_key(answer)
        for answer in (GOLD, {**GOLD, "intent": "GetWeather"}, {"intent": "GetWeather"})
    }
    assert keys == {"intent,slots.city,slots.party_size_number,slots.restaurant_type", "intent"}
    one = load_route(route_file(tmp_path, ROUTE.replace("group_by: intent\n", "")))
    assert one.task.threshold_key(GOLD) == one.task.threshold_key({"intent": "GetWeather"}) == ""


def test_rows_carry_a_gold_object(task: ExtractTask) -> None:
    example = task.example({"id": "a", "text": TEXT, "label": GOLD}, "f.jsonl:1")
    assert example.label == GOLD and example.id == "a"
    assert task.example({"text": TEXT, "fields": GOLD}, "f.jsonl:2").label == GOLD
    assert task.example({"text": TEXT}, "f.jsonl:3", require_labels=False).label == {}
    with pytest.raises(DatasetError, match=r"f\.jsonl:4: label must be a JSON object"):
        task.example({"text": TEXT, "label": "BookRestaurant"}, "f.jsonl:4")
    with pytest.raises(DatasetError, match=r"f\.jsonl:5: row has no label"):
        task.example({"text": TEXT}, "f.jsonl:5")


def test_gold_that_fails_the_schema_is_refused(task: ExtractTask) -> None:
    task.check_gold([Example(TEXT, GOLD)], "train.jsonl")
    with pytest.raises(RuntimeSetupError, match=r"train\.jsonl: gold of bad fails the schema"):
        task.check_gold([Example(TEXT, {"intent": "Nope", "slots": {}}, id="bad")], "train.jsonl")


def test_the_report_gives_accuracy_per_field(task: ExtractTask) -> None:
    wrong_city = {**GOLD, "slots": {**SLOTS, "city": "Rome"}}
    report = task.report([GOLD, wrong_city, None], [GOLD, GOLD, GOLD], [True, False, False])
    assert report["field_accuracy"]["intent"] == pytest.approx(2 / 3)
    assert report["field_accuracy"]["slots.city"] == pytest.approx(1 / 3)
    assert report["accepted_field_accuracy"]["slots.city"] == 1.0
    assert report["document_accuracy"] == pytest.approx(1 / 3)


def test_the_gateway_renders_the_object_as_json_text(task: ExtractTask) -> None:
    assert json.loads(task.render(GOLD)) == GOLD
