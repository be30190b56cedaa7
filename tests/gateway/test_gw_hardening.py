"""The gateway against what no well-behaved client sends: every malformed input gets the API's
error shape with a 4xx, oversized heads and slow or idle sockets are cut off, open connections
are capped, /metrics can be kept for admins, and the ledger file is the owner's alone."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import httpx2
import orjson
import pytest
from gw_helpers import HAIKU, Gateway, running_gateway
from gw_raw import RawAnswer, RawConnection, http_request, one_shot

from tiergate.emulator import EmulatorServer

pytest_plugins = ("gw_fixtures",)

GOOD = {"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def port_of(gateway: Gateway) -> int:
    return int(gateway.base_url.rsplit(":", 1)[1])


def post(
    gateway: Gateway, body: bytes, *extra: tuple[bytes, bytes], path: str = "/v1/messages"
) -> bytes:
    headers = [(b"x-api-key", gateway.key.encode()), (b"content-type", b"application/json")]
    return http_request("POST", path, "127.0.0.1", [*headers, *extra], body)


def refused(answer: RawAnswer | None, status: int) -> RawAnswer:
    assert answer is not None, "the server closed without an answer"
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.anthropic_error, answer.body[:300]
    return answer


def deep(levels: int) -> bytes:
    """A JSON value nested ``levels`` deep (orjson will not write one past 254)."""
    return b"[" * levels + b'"x"' + b"]" * levels


@pytest.mark.parametrize(
    ("payload_of", "status"),
    [
        # framing errors: the parser's 400, in the API's shape rather than plain text
        (lambda g: b"GARBAGE / HTTP/1.1\r\n\r\n", 400),
        (lambda g: b"POST /v1/messages HTTP/1.1\r\ncontent-length: x\r\n\r\n", 400),
        (lambda g: b"POST /v1/messages HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", 400),
        # a rules route reads `tools` to pick a tier: a number there is the client's mistake
        (lambda g: post(g, orjson.dumps({**GOOD, "model": "auto", "tools": 5})), 400),
        (lambda g: post(g, orjson.dumps({**GOOD, "system": 7})), 400),
        (lambda g: post(g, orjson.dumps({**GOOD, "messages": [3]})), 400),
        # orjson cannot serialise past 254 levels, and a fallback re-serialises the body
        (
            lambda g: post(
                g,
                orjson.dumps({**GOOD, "model": "auto"})[:-1]
                + b',"metadata":{"x":'
                + deep(254)
                + b"}}",
            ),
            400,
        ),
        (
            lambda g: post(
                g, b'{"model":"auto","max_tokens":8,"messages":' + b"[" * 900 + b"]" * 900 + b"}"
            ),
            400,
        ),
        (
            lambda g: post(
                g, orjson.dumps({**GOOD, "model": "auto"}), (b"x-tiergate-mark", b"\xff\xfe")
            ),
            400,
        ),
        (
            lambda g: http_request(
                "GET", "/v1/usage?days=1000000000000", "h", [(b"x-api-key", g.key.encode())]
            ),
            400,
        ),
        (
            lambda g: http_request(
                "GET", "/v1/usage?days=%ff%fe", "h", [(b"x-api-key", g.key.encode())]
            ),
            400,
        ),
        (
            lambda g: http_request(
                "GET",
                "/v1/messages",
                "h",
                [
                    (b"connection", b"Upgrade"),
                    (b"upgrade", b"websocket"),
                    (b"sec-websocket-version", b"13"),
                    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
                ],
            ),
            400,
        ),
        (lambda g: post(g, b"\xff" * 10), 400),
    ],
)
def test_malformed_input_is_an_anthropic_4xx(
    gateway: Gateway, payload_of: object, status: int
) -> None:
    payload = payload_of(gateway)  # type: ignore[operator]
    answer = asyncio.run(one_shot(port_of(gateway), payload))
    refused(answer, status)
    # and the gateway still serves
    with gateway.client() as client:
        client.messages.create(
            model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )


def test_an_oversized_head_is_refused_before_it_is_parsed(gateway: Gateway) -> None:
    huge = b"x-filler: " + b"a" * (8 * 1024 * 1024) + b"\r\n"
    head = b"POST /v1/messages HTTP/1.1\r\nhost: h\r\n" + huge + b"\r\n"

    async def send() -> RawAnswer | None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(gateway))
        writer.write(head)
        from gw_raw import read_answer

        try:
            return await read_answer(reader)
        finally:
            writer.close()

    answer = refused(asyncio.run(send()), 431)
    assert "32768 bytes" in answer.json()["error"]["message"]


def test_idle_slow_and_excess_connections_are_cut_off(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    limits = {
        "idle_timeout_s": 0.3,
        "header_timeout_s": 0.3,
        "body_timeout_s": 0.3,
        "max_connections": 4,
    }
    with running_gateway(tmp_path, emulator.base_url, server=limits) as gateway:
        port = port_of(gateway)

        async def scenario() -> None:
            # a socket that never sends a byte is closed (uvicorn alone kept it forever)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), 30) == b""
            writer.close()
            # a head that never ends: 408
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: h\r\n")
            from gw_raw import read_answer

            refused(await read_answer(reader), 408)
            writer.close()
            # a body that never ends: 408
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(post(gateway, orjson.dumps(GOOD))[:-5])
            refused(await read_answer(reader), 408)
            writer.close()
            # past the cap, a new connection gets 529 overloaded at once
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answer = refused(await read_answer(reader), 529)
            assert answer.json()["error"]["type"] == "overloaded_error"
            writer.close()
            for _, held_writer in held:
                held_writer.close()
            await asyncio.sleep(0.1)
            connection = RawConnection(port)
            served = await connection.exchange(post(gateway, orjson.dumps(GOOD)))
            await connection.close()
            assert served is not None and served.status == 200

        asyncio.run(scenario())


def test_metrics_can_be_kept_for_admin_keys(tmp_path: Path, emulator: EmulatorServer) -> None:
    with running_gateway(tmp_path, emulator.base_url, metrics_admin_only=True) as gateway:
        admin = gateway.new_key("ops", admin=True)
        url = gateway.base_url + "/metrics"
        assert httpx2.get(url).status_code == 401
        assert httpx2.get(url, headers={"x-api-key": gateway.key}).status_code == 403
        answer = httpx2.get(url, headers={"x-api-key": admin})
        assert answer.status_code == 200 and b"tiergate_requests_total" in answer.content


def test_the_ledger_files_are_the_owners_alone(gateway: Gateway) -> None:
    with gateway.client() as client:
        client.messages.create(
            model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    gateway.rows()
    files = [path for path in gateway.folder.iterdir() if path.name.startswith("ledger.db")]
    assert files
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_the_emulator_bounds_its_body_read_like_the_gateway(emulator: EmulatorServer) -> None:
    port = int(emulator.base_url.rsplit(":", 1)[1])
    head = (
        b"POST /v1/messages HTTP/1.1\r\nhost: h\r\nx-api-key: sk-test-not-real\r\n"
        b"content-type: application/json\r\ncontent-length: 40000000\r\n\r\n"
    )
    answer = refused(asyncio.run(one_shot(port, head + b"{")), 413)
    assert answer.json()["error"]["type"] == "request_too_large"


def test_the_default_body_limit_is_the_apis_32_mb(tmp_path: Path) -> None:
    from tiergate.gateway.config import load_config, parse_config

    example = Path(__file__).parents[2] / "examples" / "gateway.yaml"
    assert parse_config({}, tmp_path, {}).max_body_bytes == 32 * 1024 * 1024
    # a 3.5 MB image fits: the example config's old 4 MiB limit refused it with its JSON
    assert load_config(example, {}).max_body_bytes == 32 * 1024 * 1024


def test_a_started_head_is_held_to_the_header_timeout_not_the_idle_one(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    limits = {"idle_timeout_s": 600, "header_timeout_s": 0.3}
    with running_gateway(tmp_path, emulator.base_url, server=limits) as gateway:

        async def scenario() -> RawAnswer | None:
            from gw_raw import read_answer

            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(gateway))
            writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: h\r\n")
            try:
                return await read_answer(reader)  # within READ_LIMIT_S, far below 600 s
            finally:
                writer.close()

        answer = refused(asyncio.run(scenario()), 408)
        assert "0.3 s" in answer.json()["error"]["message"]


def test_the_connection_cap_leaves_room_for_the_gateways_own_files() -> None:
    from tiergate.gateway.hardening import connection_cap

    # ulimit -n 1024 with a 200-connection upstream pool: 1,000 clients would exhaust it
    assert connection_cap(1000, reserved=264, open_files=1024) == 760
    assert connection_cap(1000, reserved=264, open_files=65536) == 1000
    assert connection_cap(1000, reserved=264, open_files=100) == 1
