"""API keys in a small JSON file, hashed, safe under concurrent writers.

A key is ``sk-tg-`` plus 32 random bytes, shown once when created. The store keeps only
``sha256(salt + key)`` with a random per-store salt: keys are high-entropy, so a slow hash would
add nothing but latency on every request. Lookups go by hash, and the stored hash is compared in
constant time. Keys never appear in logs, the ledger or error messages, only their ``id``.

Every change is a read-modify-write under an exclusive ``fcntl`` lock on a sidecar file, reading
the file afresh inside the lock, and lands by atomic rename: two ``tiergate keys`` commands at
once both land, and a revocation is never undone by a writer that read the file before it.
A running gateway sees a change by the file's identity (inode, size, mtime in ns), since a
rename always gives a new inode even within one mtime tick.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from tiergate.stores.base import ApiKey, KeyStore, KeyStoreError

KEY_PREFIX = "sk-tg-"
STORE_FORMAT = 1


@dataclass(frozen=True)
class KeyTable:
    """An immutable snapshot of the store: the server swaps snapshots, never edits one."""

    salt: bytes
    keys: tuple[ApiKey, ...]

    def by_hash(self) -> dict[str, ApiKey]:
        return {key.hash: key for key in self.keys if not key.revoked}


def hash_key(salt: bytes, key: str) -> str:
    return hashlib.sha256(salt + key.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key(salt: bytes, name: str, **settings: Any) -> tuple[ApiKey, str]:
    secret = new_secret()
    key = ApiKey(
        id="key_" + secrets.token_hex(6),
        name=name,
        hash=hash_key(salt, secret),
        created_at=time.time(),
        **settings,
    )
    return key, secret


def find_one(keys: tuple[ApiKey, ...], id_or_name: str) -> ApiKey:
    named = [key for key in keys if id_or_name in (key.id, key.name)]
    # Revoking twice is not an error (two admins at once): a live key wins over a revoked one.
    matches = [key for key in named if not key.revoked] or named
    if not matches:
        raise KeyStoreError(f"no key with id or name {id_or_name!r}")
    if len(matches) > 1:
        raise KeyStoreError(f"{len(matches)} keys are named {id_or_name!r}: revoke by id")
    return matches[0]


class FileKeyStore(KeyStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._table = self._read()
        self._index = self._table.by_hash()
        self._identity = self._stat()

    def _stat(self) -> tuple[int, int, int]:
        try:
            found = self.path.stat()
        except FileNotFoundError:
            return (0, 0, 0)
        return (found.st_ino, found.st_size, found.st_mtime_ns)

    def _read(self) -> KeyTable:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return KeyTable(os.urandom(16), ())
        except orjson.JSONDecodeError:
            raise KeyStoreError(f"{self.path}: not a tiergate key store") from None
        if not isinstance(raw, dict) or raw.get("format") != STORE_FORMAT:
            raise KeyStoreError(f"{self.path}: not a tiergate key store (format {STORE_FORMAT})")
        return KeyTable(bytes.fromhex(raw["salt"]), tuple(key_from(row) for row in raw["keys"]))

    def reload_if_changed(self) -> bool:
        """Pick up keys created or revoked by ``tiergate keys`` while the server runs."""
        identity = self._stat()
        if identity == self._identity:
            return False
        self._use(self._read(), identity)
        return True

    async def refresh(self) -> bool:
        return self.reload_if_changed()

    def _use(self, table: KeyTable, identity: tuple[int, int, int]) -> None:
        self._table = table
        self._index = table.by_hash()
        self._identity = identity

    def authenticate(self, presented: str) -> ApiKey | None:
        digest = hash_key(self._table.salt, presented)
        found = self._index.get(digest)
        if found is None or not hmac.compare_digest(found.hash, digest):
            return None
        return found

    def list(self) -> tuple[ApiKey, ...]:
        return self._table.keys

    def create(
        self,
        name: str,
        *,
        budget_usd_day: float | None = None,
        rpm: int | None = None,
        admin: bool = False,
    ) -> tuple[ApiKey, str]:
        made: list[tuple[ApiKey, str]] = []

        def add(table: KeyTable) -> KeyTable:
            key, secret = new_key(
                table.salt, name, budget_usd_day=budget_usd_day, rpm=rpm, admin=admin
            )
            made.append((key, secret))
            return replace(table, keys=(*table.keys, key))

        self._change(add)
        return made[0]

    def revoke(self, id_or_name: str) -> ApiKey:
        revoked: list[ApiKey] = []

        def mark(table: KeyTable) -> KeyTable:
            found = replace(find_one(table.keys, id_or_name), revoked=True)
            revoked.append(found)
            keys = tuple(found if key.id == found.id else key for key in table.keys)
            return replace(table, keys=keys)

        self._change(mark)
        return revoked[0]

    def _change(self, change: Callable[[KeyTable], KeyTable]) -> None:
        """Read, change and write the file while holding the store's lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            table = change(self._read())
            self._write(table)
            self._use(table, self._stat())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def _write(self, table: KeyTable) -> None:
        body = {
            "format": STORE_FORMAT,
            "salt": table.salt.hex(),
            "keys": [asdict(key) for key in table.keys],
        }
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        # Hashes only, but still nobody else's business: owner read/write.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(orjson.dumps(body, option=orjson.OPT_INDENT_2))
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)


def key_from(row: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        id=str(row["id"]),
        name=str(row["name"]),
        hash=str(row["hash"]),
        created_at=float(row["created_at"]),
        budget_usd_day=None if row.get("budget_usd_day") is None else float(row["budget_usd_day"]),
        rpm=None if row.get("rpm") is None else int(row["rpm"]),
        admin=bool(row.get("admin", False)),
        revoked=bool(row.get("revoked", False)),
    )
