"""Token usage of one call, as the Messages API reports it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens billed for one request.

    ``input_tokens`` excludes cached tokens, as in the API: the prompt's full size is
    ``input_tokens + cache_write_5m_tokens + cache_write_1h_tokens + cache_read_tokens``.
    Counts may be fractional only when the calculator prices an average request.
    """

    input_tokens: float = 0
    output_tokens: float = 0
    cache_write_5m_tokens: float = 0
    cache_write_1h_tokens: float = 0
    cache_read_tokens: float = 0

    def __post_init__(self) -> None:
        if (  # one comparison chain: built on every request, names looked up only on failure
            self.input_tokens < 0
            or self.output_tokens < 0
            or self.cache_write_5m_tokens < 0
            or self.cache_write_1h_tokens < 0
            or self.cache_read_tokens < 0
        ):
            for name in self.__slots__:
                if getattr(self, name) < 0:
                    raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    @property
    def prompt_tokens(self) -> float:
        return (
            self.input_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
            + self.cache_read_tokens
        )

    @property
    def cache_write_tokens(self) -> float:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
        )

    @classmethod
    def from_api(cls, usage: Mapping[str, Any]) -> Usage:
        """Build from a Messages API ``usage`` object (a dict, or the SDK model's ``model_dump()``).

        Without the TTL breakdown (``cache_creation``), cache writes are taken as 5-minute ones,
        the API's default TTL.
        """
        written = int(usage.get("cache_creation_input_tokens") or 0)
        breakdown = usage.get("cache_creation") or {}
        written_1h = int(breakdown.get("ephemeral_1h_input_tokens") or 0)
        written_5m = int(breakdown.get("ephemeral_5m_input_tokens") or 0)
        if written_1h + written_5m != written:
            written_5m, written_1h = written, 0
        return cls(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_write_5m_tokens=written_5m,
            cache_write_1h_tokens=written_1h,
            cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
        )
