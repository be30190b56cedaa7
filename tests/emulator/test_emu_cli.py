"""``tiergate emulate`` as a user runs it: a separate process, reached by the SDK over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import anthropic
import pytest
from conftest import FAKE_KEY, HAIKU, user

from tiergate.cli.main import main


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_emulate_command_serves_the_sdk() -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tiergate",
        "emulate",
        "--port",
        str(port),
        "--latency",
        "zero",
        "--rpm",
        "5",
        "--seed",
        "4",
        "--fail",
        "529:0.0",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=f"http://127.0.0.1:{port}")
        raw = sdk.messages.with_raw_response.create(model=HAIKU, max_tokens=5, messages=user("Hi"))
        assert raw.parse().content
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "5"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert b"emulated" in stderr


@pytest.mark.parametrize(
    "arguments",
    [["--fail", "529"], ["--latency", "fast"], ["--slow-first-byte", "2"], ["--rpm", "0"]],
)
def test_bad_flags_fail_in_one_line(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["emulate", *arguments])
    assert exited.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
