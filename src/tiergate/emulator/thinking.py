"""Extended thinking, emulated: the ``thinking`` parameter checked as the API checks it, and a
thinking block written before the answer when it is on.

- ``enabled`` (``budget_tokens`` >= 1024 and below ``max_tokens``, unless the
  ``interleaved-thinking-2025-05-14`` beta lets the budget span a whole tool loop) and
  ``adaptive`` think; ``disabled`` and ``between_tools`` do not.
- The thought is filler of the usual length scaled by ``output_config.effort``, never longer
  than the budget nor ``max_tokens``; its tokens count as output tokens (and are reported in
  ``usage.output_tokens_details.thinking_tokens``) and leave the answer only what remains.
- ``display: "omitted"`` returns the block with empty text but a valid signature.
- The signature is a keyed hash of the text shown, with a fixed key, so any emulator accepts a
  block any emulator wrote and refuses one whose text was changed, as the API refuses a
  tampered block.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiergate.emulator.errors import invalid
from tiergate.emulator.filler import filler

THINKING_TYPES = ("enabled", "adaptive", "disabled", "between_tools")
DISPLAYS = ("summarized", "omitted")
MIN_BUDGET_TOKENS = 1024
INTERLEAVED_THINKING_BETA = "interleaved-thinking-2025-05-14"
# How much longer a thought runs at each effort than at the default ("high" is the API's).
EFFORT_SCALE = {"low": 0.5, "medium": 0.75, "high": 1.0, "xhigh": 1.5, "max": 2.0}
DEFAULT_EFFORT = "high"
_ALLOWED_KEYS = {
    "enabled": {"type", "budget_tokens", "display"},
    "adaptive": {"type", "display"},
    "disabled": {"type"},
    "between_tools": {"type"},
}
# Fixed, not per seed: a block written by one emulator is valid in another (a gateway may fall
# back to a second upstream), and the emulator signs nothing secret.
_SIGNING_KEY = b"tiergate-emulator-thinking-signature"
_NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class ThinkingConfig:
    kind: str
    budget_tokens: int | None = None
    display: str = "summarized"

    @property
    def thinks(self) -> bool:
        return self.kind in ("enabled", "adaptive")


@dataclass(frozen=True, slots=True)
class Thought:
    block: dict[str, Any]
    tokens: int


def parse_thinking(
    value: Any, max_tokens: int, betas: frozenset[str], *, count_only: bool = False
) -> ThinkingConfig | None:
    """The request's ``thinking``, or a 400 in the API's words."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("type") not in THINKING_TYPES:
        raise invalid(
            "thinking.type: Input should be 'enabled', 'disabled', 'adaptive' or 'between_tools'"
        )
    kind = str(value["type"])
    for key in value:
        if key not in _ALLOWED_KEYS[kind]:
            raise invalid(f"thinking.{kind}.{key}: Extra inputs are not permitted")
    display = value.get("display") or "summarized"
    if display not in DISPLAYS:
        raise invalid(f"thinking.{kind}.display: Input should be 'summarized' or 'omitted'")
    budget = None
    if kind == "enabled":
        if "budget_tokens" not in value:
            raise invalid("thinking.enabled.budget_tokens: Field required")
        budget = value["budget_tokens"]
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise invalid("thinking.enabled.budget_tokens: Input should be a valid integer")
        if budget < MIN_BUDGET_TOKENS:
            raise invalid(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to "
                f"{MIN_BUDGET_TOKENS}"
            )
        if not count_only and budget >= max_tokens and INTERLEAVED_THINKING_BETA not in betas:
            raise invalid(
                "max_tokens: must be greater than thinking.budget_tokens "
                f"({max_tokens} <= {budget}); with the {INTERLEAVED_THINKING_BETA} beta the "
                "budget may exceed it"
            )
    return ThinkingConfig(kind, budget, str(display))


def think(
    config: ThinkingConfig,
    rng: random.Random,
    typical_tokens: tuple[int, int],
    effort: str,
    max_tokens: int,
) -> Thought:
    """A thought of the usual length at this effort, cut by the budget and ``max_tokens``."""
    low, high = typical_tokens
    target = max(1, round(rng.randint(low, high) * EFFORT_SCALE.get(effort, 1.0)))
    limit = max_tokens if config.budget_tokens is None else min(max_tokens, config.budget_tokens)
    text = filler(rng, min(target, limit), limit, ())
    nonce = rng.randbytes(_NONCE_BYTES)
    shown = "" if config.display == "omitted" else text.text
    block = {"type": "thinking", "thinking": shown, "signature": sign(shown, nonce)}
    return Thought(block, max(1, text.output_tokens))


def sign(thinking: str, nonce: bytes) -> str:
    digest = hmac.new(_SIGNING_KEY, nonce + thinking.encode(), hashlib.sha256).digest()
    return base64.b64encode(nonce + digest).decode()


def signature_matches(thinking: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.encode(), validate=True)
    except (ValueError, UnicodeEncodeError):
        return False
    nonce = raw[:_NONCE_BYTES]
    return len(raw) > _NONCE_BYTES and hmac.compare_digest(
        sign(thinking, nonce).encode(), signature.encode()
    )
