"""API keys of the gateway, stored hashed in a small JSON file.

A key is ``sk-tg-`` plus 32 random bytes, shown once when created. The store keeps only
``sha256(salt + key)`` with a random per-store salt: keys are high-entropy, so a slow hash would
add nothing but latency on every request. Lookups go by hash, and the stored hash is compared in
constant time. Keys never appear in logs, the ledger or error messages, only their ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson

KEY_PREFIX = "sk-tg-"
STORE_FORMAT = 1


class KeyStoreError(ValueError):
    """A key store that cannot be read or changed."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    hash: str
    created_at: float
    budget_usd_day: float | None = None
    rpm: int | None = None
    admin: bool = False
    revoked: bool = False


@dataclass(frozen=True)
class KeyTable:
    """An immutable snapshot of the store: the server swaps snapshots, never edits one."""

    salt: bytes
    keys: tuple[ApiKey, ...]

    def by_hash(self) -> dict[str, ApiKey]:
        return {key.hash: key for key in self.keys if not key.revoked}


def hash_key(salt: bytes, key: str) -> str:
    return hashlib.sha256(salt + key.encode()).hexdigest()


class KeyStore:
    """The file on disk; ``authenticate`` is what the request path calls."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._table = self._read()
        self._index = self._table.by_hash()
        self._mtime = self._stat()

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def _read(self) -> KeyTable:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return KeyTable(os.urandom(16), ())
        except orjson.JSONDecodeError:
            raise KeyStoreError(f"{self.path}: not a tiergate key store") from None
        if not isinstance(raw, dict) or raw.get("format") != STORE_FORMAT:
            raise KeyStoreError(f"{self.path}: not a tiergate key store (format {STORE_FORMAT})")
        return KeyTable(bytes.fromhex(raw["salt"]), tuple(_key(row) for row in raw["keys"]))

    def reload_if_changed(self) -> bool:
        """Pick up keys created or revoked by ``tiergate keys`` while the server runs."""
        mtime = self._stat()
        if mtime == self._mtime:
            return False
        self._table = self._read()
        self._index = self._table.by_hash()
        self._mtime = mtime
        return True

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
        """A new key and its secret; the secret is not kept anywhere."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id="key_" + secrets.token_hex(6),
            name=name,
            hash=hash_key(self._table.salt, secret),
            created_at=time.time(),
            budget_usd_day=budget_usd_day,
            rpm=rpm,
            admin=admin,
        )
        self._write(replace(self._table, keys=(*self._table.keys, key)))
        return key, secret

    def revoke(self, id_or_name: str) -> ApiKey:
        matches = [key for key in self._table.keys if id_or_name in (key.id, key.name)]
        if not matches:
            raise KeyStoreError(f"no key with id or name {id_or_name!r}")
        if len(matches) > 1:
            raise KeyStoreError(f"{len(matches)} keys are named {id_or_name!r}: revoke by id")
        revoked = replace(matches[0], revoked=True)
        keys = tuple(revoked if key.id == revoked.id else key for key in self._table.keys)
        self._write(replace(self._table, keys=keys))
        return revoked

    def _write(self, table: KeyTable) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "format": STORE_FORMAT,
            "salt": table.salt.hex(),
            "keys": [asdict(key) for key in table.keys],
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        # Hashes only, but still nobody else's business: owner read/write.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        temporary.replace(self.path)
        self._table = table
        self._index = table.by_hash()
        self._mtime = self._stat()


def _key(row: Mapping[str, Any]) -> ApiKey:
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


def presented_key(authorization: bytes | None, api_key: bytes | None) -> str | None:
    """The key a client sent: ``Authorization: Bearer`` (SDK 2.x) or ``x-api-key`` (0.x)."""
    if api_key:
        return api_key.decode("latin-1")
    if authorization and authorization[:7].lower() == b"bearer ":
        return authorization[7:].decode("latin-1").strip()
    return None
