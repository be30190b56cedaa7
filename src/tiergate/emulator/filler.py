"""Deterministic free-text answers that honour ``max_tokens`` and ``stop_sequences``.

Every word in the vocabulary is at most seven letters, so by the counting rule of
:mod:`tiergate.emulator.tokens` each word and each full stop is exactly one token: the text is
cut at exactly ``max_tokens`` tokens. Sentences use common words ("the" is frequent) and
paragraphs are split by a blank line, so stop sequences like ``"the"`` or ``"\\n\\n"`` occur.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tiergate.emulator.tokens import count_text

# "the" is frequent on purpose, so a stop sequence like "the" is met in tests and demos.
_VOCABULARY = """
the the the the the the a a an and and of of to to in in is is it that for on with as
this you your can will be are we our may not more when if or by from at here there
answer request result model token tier cost price cheap quick simple clear useful good
next step check plan note reply ticket card account support team data value number
order status time today update review detail option choice route label topic case
"""
_WORDS = tuple(_VOCABULARY.split())
SENTENCES_PER_PARAGRAPH = 3


@dataclass(frozen=True, slots=True)
class Filler:
    text: str
    output_tokens: int
    stop_reason: str
    stop_sequence: str | None


def filler(
    rng: random.Random, target_tokens: int, max_tokens: int, stop_sequences: tuple[str, ...]
) -> Filler:
    """Whole sentences up to about ``target_tokens``, cut by ``max_tokens`` or a stop sequence."""
    pieces: list[str] = []  # one token each
    sentences = 0
    while len(pieces) < target_tokens and len(pieces) <= max_tokens:
        gap = ""
        if sentences:
            gap = "\n\n" if sentences % SENTENCES_PER_PARAGRAPH == 0 else " "
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 14))]
        pieces.append(gap + words[0].capitalize())
        pieces.extend(" " + word for word in words[1:])
        pieces.append(".")
        sentences += 1
    stop_reason = "end_turn"
    if len(pieces) > max_tokens:
        pieces, stop_reason = pieces[:max_tokens], "max_tokens"
    text = "".join(pieces)
    first_stop = _first_stop(text, stop_sequences)
    if first_stop is not None:
        at, stop = first_stop
        kept = text[:at]
        return Filler(kept, min(max_tokens, count_text(kept) + 1), "stop_sequence", stop)
    return Filler(text, len(pieces), stop_reason, None)


def _first_stop(text: str, stops: tuple[str, ...]) -> tuple[int, str] | None:
    found = [(text.find(stop), stop) for stop in stops if stop in text]
    return min(found) if found else None
