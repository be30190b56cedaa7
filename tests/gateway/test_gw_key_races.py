"""The key store under concurrent writers (real processes), and the ledger file's mode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gw_helpers import HAIKU, Gateway, user

from tiergate.stores import FileKeyStore

pytest_plugins = ("gw_fixtures",)

KEYS = [sys.executable, "-m", "tiergate", "keys"]


def _run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    started = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    finished = []
    for process in started:
        out, err = process.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return finished


def test_sixteen_concurrent_creates_all_land(tmp_path: Path) -> None:
    store = tmp_path / "keys.json"
    results = _run_all(
        [[*KEYS, "create", "--store", str(store), "--name", f"app-{i}"] for i in range(16)]
    )
    assert all(result.returncode == 0 for result in results), [r.stderr for r in results]
    reopened = FileKeyStore(store)
    secrets = [result.stdout.strip() for result in results]
    assert all(reopened.authenticate(secret) is not None for secret in secrets)
    assert len(reopened.list()) == 16


def test_concurrent_revokes_and_creates_undo_nothing(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys.json")
    secrets = [store.create(f"old-{i}")[1] for i in range(10)]
    commands = [[*KEYS, "revoke", "--store", str(store.path), f"old-{i}"] for i in range(10)]
    commands += [
        [*KEYS, "create", "--store", str(store.path), "--name", f"new-{i}"] for i in range(6)
    ]
    results = _run_all(commands)
    assert all(result.returncode == 0 for result in results), [r.stderr for r in results]
    assert all("revoked" in result.stdout for result in results[:10])
    reopened = FileKeyStore(store.path)
    assert all(reopened.authenticate(secret) is None for secret in secrets)
    new = [result.stdout.strip() for result in results[10:]]
    assert all(reopened.authenticate(secret) is not None for secret in new)


def test_a_revocation_by_another_process_reaches_the_running_gateway(gateway: Gateway) -> None:
    secret = gateway.new_key("to-revoke")
    with gateway.client(key=secret) as client:
        client.messages.create(model=HAIKU, max_tokens=5, messages=user("ok"))
        revoked = subprocess.run(
            [*KEYS, "revoke", "--store", str(gateway.store.path), "to-revoke"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "revoked" in revoked.stdout
        gateway.reload_keys()  # what the server does by itself every second
        try:
            client.messages.create(model=HAIKU, max_tokens=5, messages=user("no"))
            raise AssertionError("a revoked key was served")
        except Exception as error:  # the SDK's AuthenticationError
            assert getattr(error, "status_code", None) == 401


def test_the_ledger_file_is_the_owners_alone(gateway: Gateway) -> None:
    with gateway.client() as client:
        client.messages.create(model=HAIKU, max_tokens=5, messages=user("private"))
    gateway.rows()
    for path in gateway.folder.glob("ledger.db*"):
        assert path.stat().st_mode & 0o077 == 0, path
