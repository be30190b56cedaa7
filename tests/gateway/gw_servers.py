"""Real Redis and PostgreSQL servers for the tests, started and stopped by the session.

Each runs from a temporary folder on a free port of 127.0.0.1 and is stopped at the end.
``make test`` installs the Debian packages where they are missing (scripts/services.sh). A
server that cannot start fails its tests and says why: nothing is skipped in silence.
PostgreSQL refuses to run as root, so as root the cluster is made and run as ``postgres``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gw_helpers import free_port


def _wait_for_port(port: int, process: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within 30 s")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test` (scripts/services.sh)")
    folder = tempfile.mkdtemp(prefix="tiergate-redis-")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", folder, "--daemonize", "no"]
    log = Path(folder) / "redis.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, "redis-server")
    except RuntimeError as error:
        process.kill()
        pytest.fail(f"{error}: {log.read_text()[-500:]}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _postgres_bin() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).parent
    pytest.fail("PostgreSQL (initdb) is not installed: run `make test` (scripts/services.sh)")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bindir = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="tiergate-pg-"))
    data = folder / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*as_user, *command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{command[0]} failed: {done.stderr[-800:]}")

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(folder / "pg.log"),
        "-w",
        "start",
    )
    try:
        _wait_for_port(port, None, "postgres")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def fresh_postgres(postgres_url: str) -> str:
    """A database of its own for one test, on the session's server."""
    import psycopg

    name = f"t{os.getpid()}_{next(_databases)}"
    dsn = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def fresh_redis(redis_url: str) -> str:
    """The session's Redis, emptied for one test."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    return redis_url
