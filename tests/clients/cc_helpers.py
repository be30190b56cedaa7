"""The real Claude Code CLI for tests: installed from npm once, run in print mode offline.

The install goes to ``.venv/claude-code/<version>`` (kept across runs, as the venv is) and is
reused while ``claude --version`` answers; ``TIERGATE_CLAUDE_CODE_VERSION`` picks another
version (``latest`` is installed afresh into the session's temporary folder). A failed install
fails the test with npm's own words: there is no skip.

Claude Code runs with a fresh ``HOME`` (no user settings, no credentials), a fake key,
``ANTHROPIC_BASE_URL`` at the server under test, and telemetry, error reporting, the
auto-updater and other non-essential traffic off (without them it also sends
``HEAD /api/hello`` to the base URL and reaches for Anthropic's own hosts).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PACKAGE = "@anthropic-ai/claude-code"
# The version whose traffic the emulator was checked against (see docs/emulator.md).
PINNED_VERSION = "2.1.332"
VERSION_ENV = "TIERGATE_CLAUDE_CODE_VERSION"
REPO = Path(__file__).parents[2]
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 300
QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class ClaudeCode:
    binary: Path
    version: str
    install_seconds: float | None  # None when an earlier run's install was reused


def install(session_folder: Path) -> ClaudeCode:
    version = os.environ.get(VERSION_ENV, PINNED_VERSION)
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH: the Claude Code test installs the CLI with npm")
    folder = session_folder / "claude-code" if version == "latest" else _cached(version)
    binary = folder / "node_modules" / ".bin" / "claude"
    if _answers(binary):
        return ClaudeCode(binary, version, None)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "package.json").write_text('{"private": true}\n')
    started = time.monotonic()
    try:
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", f"{PACKAGE}@{version}"],
            cwd=partial,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm install {PACKAGE}@{version} took over {INSTALL_TIMEOUT_S} s")
    seconds = time.monotonic() - started
    if done.returncode != 0:
        pytest.fail(
            f"npm install {PACKAGE}@{version} failed (exit {done.returncode}):\n"
            + (done.stderr or done.stdout)[-3000:]
        )
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    if not _answers(binary):
        pytest.fail(f"{binary} was installed but `claude --version` does not answer")
    return ClaudeCode(binary, version, seconds)


def _cached(version: str) -> Path:
    return REPO / ".venv" / "claude-code" / version


def _answers(binary: Path) -> bool:
    if not binary.exists():
        return False
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=60, env=_env({})
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "Claude Code" in done.stdout


def _env(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment: nothing of the developer's (keys, base URLs, settings) leaks in."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **extra}


def run_print_mode(
    claude: ClaudeCode, base_url: str, api_key: str, folder: Path, prompt: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """``claude -p PROMPT`` in ``folder``, with its own HOME, against ``base_url``."""
    home = folder / "home"
    home.mkdir(exist_ok=True)
    env = _env(
        {"HOME": str(home), "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": api_key, **QUIET}
    )
    return subprocess.run(
        [str(claude.binary), "-p", prompt, *options],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Seen:
    method: str
    path: str
    betas: list[str]
    body: Any
    status: int = 0

    def brief(self) -> str:
        keys = sorted(self.body) if isinstance(self.body, dict) else []
        return f"{self.method} {self.path} -> {self.status} betas={self.betas} fields={keys}"


@dataclass
class Recorder:
    """ASGI middleware keeping every request's path, betas and JSON body, and its status."""

    app: Any
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        betas = [
            beta.strip()
            for name, value in scope["headers"]
            if name == b"anthropic-beta"
            for beta in value.decode().split(",")
        ]
        query = scope.get("query_string", b"").decode()
        path = scope["path"] + (f"?{query}" if query else "")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = Seen(scope["method"], path, betas, body)
        self.seen.append(record)
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()  # what comes next: the client leaving
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def watch(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        await self.app(scope, replay, watch)

    def messages(self) -> list[Seen]:
        return [seen for seen in self.seen if seen.path.split("?")[0] == "/v1/messages"]

    def report(self) -> str:
        return "\n".join(seen.brief() for seen in self.seen)
