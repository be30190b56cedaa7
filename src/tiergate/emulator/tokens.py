"""Deterministic token counts that approximate Claude's tokenizer.

Claude's tokenizer is not public, so the emulator counts with a fixed, documented rule that
lands near its counts for English text (about 1.3 tokens per word):

- a run of ASCII letters is one token per started 7 letters (``cat`` 1, ``international`` 2);
- a run of digits is one token per started 3 digits (``2026`` 2);
- every other visible character (punctuation, symbols, each non-ASCII character) is one token;
- whitespace is free.

On top of the text, a request pays fixed framing costs (see :mod:`tiergate.emulator.prompt`).
The same rule counts output tokens, so ``usage.output_tokens`` matches the text returned.
"""

from __future__ import annotations

import re

_PIECES = re.compile(r"[A-Za-z]+|[0-9]+|[^\sA-Za-z0-9]")
LETTERS_PER_TOKEN = 7
DIGITS_PER_TOKEN = 3


def count_text(text: str) -> int:
    """Tokens in ``text`` by the rule above."""
    total = 0
    for piece in _PIECES.findall(text):
        first = piece[0]
        if first.isascii() and first.isalpha():
            total += (len(piece) + LETTERS_PER_TOKEN - 1) // LETTERS_PER_TOKEN
        elif first.isascii() and first.isdigit():
            total += (len(piece) + DIGITS_PER_TOKEN - 1) // DIGITS_PER_TOKEN
        else:
            total += 1
    return total
