"""Fuzzing the running gateway: at least 10,000 generated requests, not one 5xx.

Hypothesis draws batches of requests (methods, paths, query strings, headers with arbitrary
bytes, bodies from almost-valid Messages bodies to arbitrary JSON and bytes, and raw byte
strings that are not HTTP at all), and each batch goes to a real gateway process (`tiergate
serve`, so it runs beside the generator, not under its GIL) in front of the
emulator over keep-alive connections. Every answer must be below 500, and every error must have
the API's shape. Failures are collected rather than asserted one by one, so no time goes into
shrinking; the first few are printed.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import orjson
from gw_helpers import HAIKU, SONNET, config_dict
from gw_procs import gateway_processes
from gw_raw import RawAnswer, RawConnection, http_request, one_shot
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tiergate.emulator import EmulatorServer
from tiergate.gateway import KeyStore

pytest_plugins = ("gw_fixtures",)

BATCH = 10
BATCHES = int(os.environ.get("TIERGATE_FUZZ_BATCHES", "1001"))
CONNECTIONS = 8

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=40)}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["image", "document", "tool_result", "x"])},
        optional={"source": json_value, "content": json_value},
    ),
    json_value,
)
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", 3]),
        "content": st.one_of(st.text(max_size=60), st.lists(block, max_size=3), json_value),
    }
)
messages_body = st.fixed_dictionaries(
    {
        "model": st.one_of(
            st.sampled_from([HAIKU, SONNET, "auto", "claude-nope-9", ""]), json_value
        ),
        "max_tokens": st.one_of(st.integers(-3, 40), json_value),
        "messages": st.one_of(st.lists(message, min_size=1, max_size=3), json_value),
    },
    optional={
        "system": st.one_of(st.text(max_size=30), json_value),
        "tools": json_value,
        "tool_choice": json_value,
        "stream": st.one_of(st.booleans(), json_value),
        "metadata": st.one_of(st.fixed_dictionaries({"tiergate_mark": json_value}), json_value),
        "thinking": json_value,
        "stop_sequences": json_value,
        "temperature": json_value,
        "cache_control": json_value,
    },
)
header_value = st.binary(max_size=40).map(lambda raw: bytes(b for b in raw if b not in b"\r\n\x00"))
paths = st.one_of(
    st.sampled_from(
        [
            "/v1/messages",
            "/v1/messages/count_tokens",
            "/v1/classify",
            "/v1/usage",
            "/v1/models",
            "/v1/models/claude-haiku-4-5",
            "/healthz",
            "/metrics",
            "/",
        ]
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-_.%~", max_size=30).map(
        lambda p: "/" + p
    ),
)
queries = st.one_of(
    st.just(""),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789=&%-_.", max_size=30).map(
        lambda q: "?" + q
    ),
    st.sampled_from(
        ["?days=1000000000000", "?days=-1", "?since=2026-13-45", "?limit=0", "?limit=99999999999"]
    ),
)
bodies = st.one_of(
    messages_body.map(orjson.dumps),
    messages_body.map(orjson.dumps),
    json_value.map(orjson.dumps),
    st.binary(max_size=200),
    st.sampled_from(
        [
            b'{"model":"auto","max_tokens":123456789012345678901234567890,"messages":[]}',
            b'{"model":"auto","max_tokens":8,"messages":[{"role":"user","content":"\\ud800"}]}',
            b'{"model":"auto","max_tokens":8,"messages":' + b"[" * 300 + b"]" * 300 + b"}",
        ]
    ),
)


@st.composite
def requests(draw: st.DrawFn, key: str) -> tuple[bool, bytes]:
    """(own connection?, the bytes to send)."""
    kind = draw(st.integers(0, 19))
    if kind == 0:  # not HTTP at all, or broken framing
        garbage = draw(
            st.one_of(
                st.binary(min_size=1, max_size=100),
                st.sampled_from(
                    [
                        b"POST /v1/messages HTTP/1.1\r\ncontent-length: -5\r\n\r\n",
                        b"POST /v1/messages HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
                        b"fff\r\nab\r\n0\r\n\r\n",
                        b"GET /\xff\xfe HTTP/1.1\r\nhost: h\r\n\r\n",
                        b"GET / HTTP/9.9\r\n\r\n",
                    ]
                ),
            )
        )
        return True, garbage + b"\r\n\r\n"
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "OPTIONS", "PATCH"]))
    path = draw(paths) + draw(queries)
    headers = [(b"content-type", b"application/json")]
    auth = draw(st.integers(0, 9))
    if auth < 8:
        headers.append((b"x-api-key", key.encode()))
    elif auth == 8:
        headers.append((b"authorization", b"Bearer " + draw(header_value)))
    for name in draw(
        st.lists(
            st.sampled_from(
                [
                    b"x-tiergate-mark",
                    b"anthropic-version",
                    b"anthropic-beta",
                    b"x-anything",
                    b"expect",
                ]
            ),
            max_size=3,
        )
    ):
        headers.append((name, draw(header_value)))
    body = draw(bodies) if method != "GET" else b""
    return False, http_request(method, path, "127.0.0.1", headers, body)


def test_ten_thousand_fuzzed_requests_get_no_5xx(tmp_path: Path, emulator: EmulatorServer) -> None:
    failures: list[tuple[bytes, int, bytes]] = []
    counted = {"requests": 0, "answers": 0}
    statuses: Counter[int] = Counter()
    # The gateway runs as its own process (``tiergate serve``), beside this one's generator.
    settings_ = config_dict(emulator.base_url)
    settings_["upstream"]["forward_fault_header"] = False
    config = tmp_path / "gateway.yaml"
    config.write_bytes(orjson.dumps(settings_))
    _, key = KeyStore(tmp_path / "keys.json").create("fuzz")
    with gateway_processes([config], tmp_path) as [gateway]:
        port = gateway.port
        loop = asyncio.new_event_loop()
        pool = [RawConnection(port) for _ in range(CONNECTIONS)]

        def check(payload: bytes, answer: RawAnswer | None) -> None:
            counted["requests"] += 1
            if answer is None:
                return  # the server closed the connection (a framing error after its 400)
            counted["answers"] += 1
            statuses[answer.status] += 1
            if answer.status >= 500 or (answer.status >= 400 and not answer.anthropic_error):
                failures.append((payload[:400], answer.status, answer.body[:300]))

        async def run(batch: list[tuple[bool, bytes]]) -> None:
            queue: asyncio.Queue[tuple[bool, bytes]] = asyncio.Queue()
            for item in batch:
                queue.put_nowait(item)

            async def worker(connection: RawConnection) -> None:
                while not queue.empty():
                    alone, payload = queue.get_nowait()
                    if alone:
                        check(payload, await one_shot(port, payload))
                    else:
                        check(payload, await connection.exchange(payload))

            await asyncio.gather(*(worker(connection) for connection in pool))

        @settings(
            max_examples=BATCHES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(requests(key), min_size=BATCH, max_size=BATCH))
        def fuzz(batch: list[tuple[bool, bytes]]) -> None:
            loop.run_until_complete(run(batch))

        try:
            fuzz()
        finally:
            for connection in pool:
                loop.run_until_complete(connection.close())
            loop.close()
    assert counted["requests"] >= 10_000
    assert counted["answers"] >= 9_000
    # the fuzz reaches the upstream too, not only the gateway's checks
    assert statuses[200] >= 300, statuses
    shown = "\n".join(f"{status} {body!r} <- {payload!r}" for payload, status, body in failures[:8])
    assert not failures, f"{len(failures)} of {counted['requests']} answers were bad:\n{shown}"
