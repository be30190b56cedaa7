"""Prompt caching: prefixes ending at a ``cache_control`` breakpoint, with a 5m or 1h TTL.

Rules emulated (Anthropic's prompt-caching documentation):
- a prefix is identified by the exact content before and at its breakpoint, per model;
- the longest prefix still alive is read (``cache_read_input_tokens``) and its TTL refreshed;
- each later breakpoint whose prefix has at least the model's ``min_cacheable_tokens`` (from the
  price book) is written (``cache_creation_input_tokens``), the tokens between breakpoints
  charged to the TTL of the breakpoint that closes them; shorter prefixes are silently not cached;
- ``input_tokens`` is what is left: tokens after the last read or written breakpoint.

:meth:`PromptCache.plan` only looks; :meth:`PromptCache.commit` stores. The caller commits only
once the request passed its rate limits, since a refused request writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from tiergate.emulator.prompt import CACHE_TTLS, Prompt

# Expired entries are swept only when the store grows past this, to keep the hot path cheap.
SWEEP_ABOVE_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class CacheOutcome:
    uncached_tokens: int
    read_tokens: int = 0
    written_5m: int = 0
    written_1h: int = 0
    read_key: bytes | None = None
    writes: tuple[tuple[bytes, str], ...] = ()

    @property
    def creation_tokens(self) -> int:
        return self.written_5m + self.written_1h


@dataclass
class _Entry:
    expires_at: float
    ttl: str


@dataclass
class PromptCache:
    _entries: dict[bytes, _Entry] = field(default_factory=dict)

    def plan(self, model: str, prompt: Prompt, min_tokens: int, now: float) -> CacheOutcome:
        if not prompt.has_breakpoints:
            return CacheOutcome(uncached_tokens=prompt.total_tokens)
        breakpoints = _breakpoints(model, prompt)
        read_index, read_tokens, read_key = -1, 0, None
        for index, (key, position, _ttl) in enumerate(breakpoints):
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at > now:
                read_index, read_tokens, read_key = index, position, key
        written: dict[str, int] = {"5m": 0, "1h": 0}
        writes: list[tuple[bytes, str]] = []
        covered, pending = read_tokens, dict(written)
        for key, position, ttl in breakpoints[read_index + 1 :]:
            pending[ttl] += position - covered
            covered = position
            if position >= min_tokens:
                writes.append((key, ttl))
                for name in written:
                    written[name] += pending[name]
                pending = {name: 0 for name in pending}
        cached = read_tokens + written["5m"] + written["1h"]
        return CacheOutcome(
            uncached_tokens=prompt.total_tokens - cached,
            read_tokens=read_tokens,
            written_5m=written["5m"],
            written_1h=written["1h"],
            read_key=read_key,
            writes=tuple(writes),
        )

    def commit(self, outcome: CacheOutcome, now: float) -> None:
        if outcome.read_key is not None:
            entry = self._entries[outcome.read_key]
            entry.expires_at = now + CACHE_TTLS[entry.ttl]
        for key, ttl in outcome.writes:
            self._entries[key] = _Entry(now + CACHE_TTLS[ttl], ttl)
        if outcome.writes and len(self._entries) > SWEEP_ABOVE_ENTRIES:
            self._entries = {
                key: entry for key, entry in self._entries.items() if entry.expires_at > now
            }

    def __len__(self) -> int:
        return len(self._entries)


def _breakpoints(model: str, prompt: Prompt) -> list[tuple[bytes, int, str]]:
    """(prefix key, tokens up to and including the block, ttl) for each breakpoint."""
    running = hashlib.blake2b(model.encode(), digest_size=20)
    position = prompt.leading_tokens
    found: list[tuple[bytes, int, str]] = []
    for segment in prompt.segments:
        running.update(_canonical(segment.block))
        position += segment.tokens
        if segment.ttl is not None:
            found.append((running.copy().digest(), position, segment.ttl))
    return found


def _canonical(block: object) -> bytes:
    # The marker itself is not content: moving a breakpoint must not change earlier prefixes.
    if isinstance(block, Mapping) and "cache_control" in block:
        block = {key: value for key, value in block.items() if key != "cache_control"}
    return orjson.dumps(block, option=orjson.OPT_SORT_KEYS) + b"\x1e"
