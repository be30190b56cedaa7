"""The one function that turns usage into dollars. Nothing else in tiergate computes a price."""

from __future__ import annotations

from dataclasses import dataclass

from tiergate.core.prices import MILLION, ModelPrice
from tiergate.core.usage import Usage


@dataclass(frozen=True, slots=True)
class Cost:
    """Dollars for one usage record, split by what was billed."""

    input_usd: float
    output_usd: float
    cache_write_usd: float
    cache_read_usd: float

    @property
    def total_usd(self) -> float:
        return self.input_usd + self.output_usd + self.cache_write_usd + self.cache_read_usd


def price_usage(usage: Usage, model: ModelPrice, *, batch: bool = False) -> Cost:
    """Price one usage record on one model, per the billing rules in the price book.

    A prompt longer than the model's long-prompt threshold is billed wholly at the long-prompt
    rates; the Message Batches API takes ``batch_discount`` off every component.
    """
    input_price, output_price = model.input, model.output
    if (
        model.long_prompt is not None
        and usage.prompt_tokens > model.long_prompt.above_prompt_tokens
    ):
        input_price, output_price = model.long_prompt.input, model.long_prompt.output
    scale = (1.0 - model.batch_discount if batch else 1.0) / MILLION
    return Cost(
        input_usd=usage.input_tokens * input_price * scale,
        output_usd=usage.output_tokens * output_price * scale,
        cache_write_usd=(
            usage.cache_write_5m_tokens * model.cache_write_5m
            + usage.cache_write_1h_tokens * model.cache_write_1h
        )
        * input_price
        * scale,
        cache_read_usd=usage.cache_read_tokens * model.cache_read * input_price * scale,
    )
