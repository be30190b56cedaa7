"""The upstream's lean HTTP/1.1 client (transports/http1.py) against a scripted raw server:
keep-alive reuse, framing (chunked, gzip, close-delimited), timeouts, cancellation, the
connection cap, and header injection."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from tiergate.transports.base import ApiCall, NoFirstByte, Unreachable
from tiergate.transports.http import HttpSettings, HttpTransport

Responder = Callable[[bytes, bytes], Coroutine[Any, Any, bytes | None]]
OK = b'{"type":"message"}'


def answer(body: bytes = OK, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + b"".join(extra)
    return head + b"content-length: %d\r\n\r\n" % len(body) + body


class Scripted:
    """A raw server: each request (head, body) is answered with what ``respond`` returns
    (``None``: close the connection without an answer). It counts connections and requests."""

    def __init__(self, respond: Responder, tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.tls = tls
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.closed_by_client = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.hang_up = False  # close each connection after its next answer
        self.base_url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.closed_by_client += 1
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                reply = await self._answer_unless_gone(reader, head, body)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
                if self.hang_up or b"connection: close" in reply:
                    return
        finally:
            self.open_now -= 1
            writer.close()

    async def _answer_unless_gone(
        self, reader: asyncio.StreamReader, head: bytes, body: bytes
    ) -> bytes | None:
        """The answer, or ``None`` if the client closed the connection while it was made."""
        loop = asyncio.get_running_loop()
        answering: asyncio.Task[bytes | None] = loop.create_task(self.respond(head, body))
        gone = loop.create_task(reader.read(1))  # the client sends nothing more unless closing
        await asyncio.wait({answering, gone}, return_when=asyncio.FIRST_COMPLETED)
        if gone.done():
            self.closed_by_client += 1
            answering.cancel()
            return None
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone  # the reader is free again before the next request is read
        return answering.result()

    async def __aenter__(self) -> Scripted:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self._server.sockets[0].getsockname()[1]
        scheme = "https" if self.tls else "http"
        self.base_url = f"{scheme}://{'localhost' if self.tls else '127.0.0.1'}:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.close()


@pytest.fixture
async def transports() -> AsyncIterator[list[HttpTransport]]:
    made: list[HttpTransport] = []
    yield made
    for transport in made:
        await transport.aclose()


def transport_for(made: list[HttpTransport], base_url: str, **settings: float) -> HttpTransport:
    transport = HttpTransport(HttpSettings(base_url, "sk-test-not-real", **settings))  # type: ignore[arg-type]
    made.append(transport)
    return transport


def call(first_byte_s: float | None = None, **headers: str) -> ApiCall:
    """A Messages call; ``x_case="hang"`` sends the header ``x-case: hang``."""
    body = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": []}
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return ApiCall("/v1/messages", body, headers=named, first_byte_s=first_byte_s)


async def test_calls_reuse_one_connection_and_send_the_body_and_key(
    transports: list[HttpTransport],
) -> None:
    async def respond(head: bytes, body: bytes) -> bytes:
        return answer(b'{"echo":%d}' % len(body), b"X-Thing: One\r\n")

    async with Scripted(respond) as server:
        transport = transport_for(transports, server.base_url)
        for _ in range(5):
            reply = await transport.send(call(anthropic_beta="b1"))
            assert reply.status == 200 and reply.headers["x-thing"] == "One"
        assert server.connections == 1 and len(server.requests) == 5
        head, body = server.requests[0]
        assert b"x-api-key: sk-test-not-real\r\n" in head
        assert b"anthropic-beta: b1\r\n" in head
        assert reply.json() == {"echo": len(body)}


async def test_chunked_gzip_early_hints_and_close_delimited_answers(
    transports: list[HttpTransport],
) -> None:
    packed = gzip.compress(OK)
    replies = [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\n" + OK[:5] + b"\r\n" + b"%x\r\n" % (len(OK) - 5) + OK[5:] + b"\r\n0\r\n\r\n",
        answer(packed, b"content-encoding: gzip\r\n"),
        b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" + answer(),  # 1xx first: skipped
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + OK,  # ends with the connection
    ]

    async def respond(head: bytes, body: bytes) -> bytes:
        return replies.pop(0)

    async with Scripted(respond) as server:
        transport = transport_for(transports, server.base_url)
        for _ in range(4):
            reply = await transport.send(call())
            assert reply.status == 200 and reply.body == OK
        # Four answers on the first connection; the close-delimited one ended it.
        assert server.connections == 1
        replies.append(answer())
        assert (await transport.send(call())).body == OK
        assert server.connections == 2


async def test_no_first_byte_in_time_and_a_reset_are_failed_attempts(
    transports: list[HttpTransport],
) -> None:
    async def respond(head: bytes, body: bytes) -> bytes | None:
        if b"hang" in head:
            await asyncio.sleep(5)
        if b"drop" in head:
            return None
        return answer()

    async with Scripted(respond) as server:
        transport = transport_for(transports, server.base_url)
        with pytest.raises(NoFirstByte):
            await transport.send(call(0.2, x_case="hang"))
        with pytest.raises(Unreachable) as caught:
            await transport.send(call(x_case="drop"))
        assert not isinstance(caught.value, NoFirstByte)
        assert (await transport.send(call())).status == 200  # a fresh connection works
        assert server.closed_by_client >= 1  # the timed-out connection was closed, not reused


async def test_a_cancelled_call_closes_its_connection(transports: list[HttpTransport]) -> None:
    async def respond(head: bytes, body: bytes) -> bytes:
        if b"slow" in head:
            await asyncio.sleep(5)
        return answer()

    async with Scripted(respond) as server:
        transport = transport_for(transports, server.base_url)
        task = asyncio.get_running_loop().create_task(transport.send(call(x_case="slow")))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await transport.send(call())).status == 200
        assert server.connections == 2  # the cancelled one was never reused
        for _ in range(50):
            if server.closed_by_client:
                break
            await asyncio.sleep(0.02)
        assert server.closed_by_client == 1  # the upstream saw the client go


async def test_the_connection_cap_queues_calls_beyond_it(transports: list[HttpTransport]) -> None:
    async def respond(head: bytes, body: bytes) -> bytes:
        await asyncio.sleep(0.05)
        return answer()

    async with Scripted(respond) as server:
        transport = transport_for(transports, server.base_url, connections=2)
        replies = await asyncio.gather(*(transport.send(call()) for _ in range(8)))
        assert [reply.status for reply in replies] == [200] * 8
        assert server.most_open == 2 and server.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_reused(
    transports: list[HttpTransport],
) -> None:
    async def respond(head: bytes, body: bytes) -> bytes:
        return answer()

    async with Scripted(respond) as server:
        transport = transport_for(transports, server.base_url)
        await transport.send(call())
        server.hang_up = True
        await transport.send(call())  # a keep-alive answer, then the server hangs up
        server.hang_up = False
        await asyncio.sleep(0.1)
        assert (await transport.send(call())).status == 200  # not a reset: a new connection
        assert server.connections == 2


async def test_bytes_past_a_complete_answer_are_not_read_as_the_next_one(
    transports: list[HttpTransport],
) -> None:
    stray = b"HTTP/1.1 200 OK\r\nx-thing: stray\r\ncontent-length: 5\r\n\r\nstray"

    async def respond(head: bytes, body: bytes) -> bytes:
        # The first answer comes with a second, unasked one in the same write.
        return answer(b'{"n":1}', b"x-thing: first\r\n") + (
            stray if len(server.requests) == 1 else b""
        )

    async with Scripted(respond) as server:
        transport = transport_for(transports, server.base_url)
        first = await transport.send(call())
        assert first.json() == {"n": 1} and first.headers["x-thing"] == "first"
        second = await transport.send(call())
        # Its own answer, on a new connection: the one that talked out of turn is not reused.
        assert second.json() == {"n": 1} and second.headers["x-thing"] == "first"
        assert first.headers["x-thing"] == "first"
        assert server.connections == 2 and len(server.requests) == 2


async def test_a_header_with_a_line_break_is_refused(transports: list[HttpTransport]) -> None:
    async def respond(head: bytes, body: bytes) -> bytes:
        return answer()

    async with Scripted(respond) as server:
        transport = transport_for(transports, server.base_url)
        with pytest.raises(ValueError, match="line break"):
            await transport.send(call(anthropic_beta="x\r\nx-api-key: stolen"))
        assert server.requests == []


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` and its key, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
    command += ["-addext", "subjectAltName=DNS:localhost"]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


async def test_https_with_the_systems_trust_store(
    transports: list[HttpTransport],
    self_signed: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real API is https: the certificate is checked against the default trust store (here
    a self-signed one, trusted through ``SSL_CERT_FILE``), and the name against the URL."""
    cert, key = self_signed
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)

    async def respond(head: bytes, body: bytes) -> bytes:
        return answer()

    async with Scripted(respond, tls=server_side) as server:
        untrusted = transport_for(transports, server.base_url)
        with pytest.raises(Unreachable):  # not in the trust store yet
            await untrusted.send(call())
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = transport_for(transports, server.base_url)
        for _ in range(2):
            assert (await trusted.send(call())).body == OK
        wrong_name = transport_for(transports, server.base_url.replace("localhost", "127.0.0.1"))
        with pytest.raises(Unreachable):  # the certificate names localhost only
            await wrong_name.send(call())
