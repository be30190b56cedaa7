"""Token estimates where a count is needed before the API gives one. One home for the ratio.

Claude's tokenizer averages about 3.5 characters a token on English text. Estimates size the
cache padding, rate-limit requests and stream metering before usage arrives; bills always come
from the API's usage fields, never from here.
"""

from __future__ import annotations

import math

CHARACTERS_PER_TOKEN = 3.5


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARACTERS_PER_TOKEN)


def tokens_for_characters(characters: int) -> int:
    return math.ceil(characters / CHARACTERS_PER_TOKEN)
