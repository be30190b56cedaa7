"""Identifiers shaped like the API's (``msg_01...``, ``req_01...``), reproducible per seed."""

from __future__ import annotations

import hashlib
import itertools

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class IdMaker:
    """Counter-based ids: two emulators with one seed hand out the same ids in the same order."""

    def __init__(self, seed: int) -> None:
        self._seed = seed.to_bytes(8, "big", signed=True)
        self._counter = itertools.count()

    def make(self, prefix: str) -> str:
        digest = hashlib.blake2b(
            next(self._counter).to_bytes(8, "big"), key=self._seed, digest_size=16
        ).digest()
        number = int.from_bytes(digest, "big")
        chars = []
        for _ in range(22):
            number, remainder = divmod(number, len(_ALPHABET))
            chars.append(_ALPHABET[remainder])
        return f"{prefix}_01{''.join(chars)}"
