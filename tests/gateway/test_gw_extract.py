"""An extraction route served by the gateway: a Messages request in, the JSON object out."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import jsonschema
import pytest
from gw_helpers import Gateway, running_gateway, user

from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.emulator.extract_scenario import extract_scenario_from_examples
from tiergate.gateway.config import ConfigError, load_config

SNIPS = Path(__file__).parents[2] / "examples" / "snips"
TIERS = ("claude-haiku-4-5", "claude-sonnet-4-6")


@pytest.fixture(scope="module")
def snips(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, EmulatorServer]]:
    """A small SNIPS route calibrated against an emulator that knows its documents."""
    from tiergate.core.prices import load_price_book
    from tiergate.routing.calibrate import calibrate_route
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import route_data
    from tiergate.transports import anthropic_transport

    folder = tmp_path_factory.mktemp("snips")
    shutil.copy(SNIPS / "schema.json", folder / "schema.json")
    lines = (SNIPS / "data" / "snips_train.jsonl").read_text("utf-8").splitlines()[:250]
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    text = (SNIPS / "route.yaml").read_text().replace("data/snips_train.jsonl", "train.jsonl")
    text = text.replace("error_budget: 0.05", "error_budget: 0.2")
    (folder / "route.yaml").write_text(text.replace("  test: data/snips_test.jsonl\n", ""))
    route = load_route(folder)
    data = route_data(route)
    scenario = extract_scenario_from_examples(data.train + data.calibration, name="snips")
    config = EmulatorConfig(seed=2, scenario=scenario, latency_scale=0.0)
    with EmulatorServer(config) as emulator:

        async def calibrate() -> None:
            transport = anthropic_transport(emulator.base_url, "sk-test-not-real")
            await calibrate_route(route, load_price_book(), transport)
            await transport.aclose()

        asyncio.run(calibrate())
        yield folder, emulator


@pytest.fixture
def fields_gateway(tmp_path: Path, snips: tuple[Path, EmulatorServer]) -> Iterator[Gateway]:
    folder, emulator = snips
    routes = {"fields": {"kind": "extract", "route": str(folder)}}
    with running_gateway(tmp_path, emulator.base_url, routes=routes) as gateway:
        yield gateway


def known_documents(folder: Path, count: int) -> list[dict[str, Any]]:
    lines = (folder / "train.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines[:count]]


def test_the_sdk_gets_a_json_object_valid_against_the_schema(
    fields_gateway: Gateway, snips: tuple[Path, EmulatorServer]
) -> None:
    folder = snips[0]
    schema = json.loads((folder / "schema.json").read_text())
    documents = known_documents(folder, 6)
    with fields_gateway.client() as client:
        raws = [
            client.messages.with_raw_response.create(
                model="fields", max_tokens=400, messages=user(document["text"])
            )
            for document in documents
        ]
    answered = 0
    for raw, document in zip(raws, documents, strict=True):
        message = raw.parse()
        block: Any = message.content[0]
        assert block.type == "text"
        assert raw.headers["x-tiergate-route"] == "fields"
        assert float(raw.headers["x-tiergate-cost-usd"]) > 0
        if raw.headers["x-tiergate-tier"] == "":
            assert block.text == ""  # no tier had a usable answer: handed to a human
            continue
        assert raw.headers["x-tiergate-tier"] in TIERS
        answer = json.loads(block.text)
        jsonschema.validate(answer, schema)
        assert answer["intent"] == document["label"]["intent"]
        answered += 1
    assert answered >= 5
    rows = fields_gateway.rows(route="fields")
    assert len(rows) == len(documents)
    assert sum(row["cost_usd"] for row in rows) == pytest.approx(
        sum(float(raw.headers["x-tiergate-cost-usd"]) for raw in raws), abs=1e-6
    )


def test_a_streamed_answer_carries_the_same_object(
    fields_gateway: Gateway, snips: tuple[Path, EmulatorServer]
) -> None:
    document = known_documents(snips[0], 1)[0]
    with fields_gateway.client() as client:
        plain = client.messages.create(
            model="fields", max_tokens=400, messages=user(document["text"])
        )
        with client.messages.stream(
            model="fields", max_tokens=400, messages=user(document["text"])
        ) as stream:
            streamed = stream.get_final_message()
    first: Any = plain.content[0]
    again: Any = streamed.content[0]
    assert json.loads(again.text) == json.loads(first.text)


def test_the_classify_endpoint_returns_the_object_and_its_trace(fields_gateway: Gateway) -> None:
    with fields_gateway.client() as client:
        answer = client.post(
            "/v1/classify",
            body={"route": "fields", "text": "what is the weather in Paris tomorrow"},
            cast_to=object,
        )
    assert isinstance(answer, dict)
    assert answer["trace"] and answer["trace"][0]["tier"] in TIERS
    assert answer["answer"] is None or isinstance(answer["answer"], dict)


def test_a_route_file_of_another_task_is_refused(
    snips: tuple[Path, EmulatorServer], tmp_path: Path
) -> None:
    folder, emulator = snips
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"upstream: {{base_url: {emulator.base_url}, api_key_env: NO_SUCH_KEY}}\n"
        f"routes:\n  fields: {{kind: classify, route: {folder / 'route.yaml'}}}\n"
    )
    with pytest.raises(ConfigError, match=r"routes\.fields\.kind: classify but .* extract"):
        load_config(config, {})


def test_an_empty_request_is_an_anthropic_error(fields_gateway: Gateway) -> None:
    with pytest.raises(anthropic.BadRequestError), fields_gateway.client() as client:
        client.messages.create(model="fields", max_tokens=50, messages=user(" "))


def test_the_sdk_through_tiergate_serve_gets_a_valid_object(
    snips: tuple[Path, EmulatorServer], tmp_path: Path
) -> None:
    """The same through the command line's server: `tiergate serve` in its own process."""
    from gw_procs import gateway_processes, write_config

    from tiergate.gateway import KeyStore

    folder, emulator = snips
    routes = {"fields": {"kind": "extract", "route": str(folder)}}
    config = write_config(tmp_path, emulator.base_url, routes=routes)
    _, key = KeyStore(tmp_path / "keys.json").create("extract-test")
    schema = json.loads((folder / "schema.json").read_text())
    documents = known_documents(folder, 4)
    with gateway_processes([config], tmp_path) as (gateway,):
        client = anthropic.Anthropic(api_key=key, base_url=gateway.base_url, max_retries=0)
        raws = [
            client.messages.with_raw_response.create(
                model="fields", max_tokens=400, messages=user(document["text"])
            )
            for document in documents
        ]
    valid = 0
    for raw in raws:
        assert raw.headers["x-tiergate-route"] == "fields"
        assert float(raw.headers["x-tiergate-cost-usd"]) > 0
        if raw.headers["x-tiergate-tier"] in TIERS:
            block: Any = raw.parse().content[0]
            jsonschema.validate(json.loads(block.text), schema)
            valid += 1
    assert valid >= 3
