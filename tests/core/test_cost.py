import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiergate.core.cost import price_usage
from tiergate.core.prices import load_price_book
from tiergate.core.usage import Usage

BOOK = load_price_book(use_env=False)
MODEL_NAMES = sorted(BOOK.models)
tokens = st.integers(min_value=0, max_value=2_000_000)


def test_plain_usage_is_list_price() -> None:
    cost = price_usage(
        Usage(input_tokens=1_000_000, output_tokens=1_000_000), BOOK.get("claude-sonnet-4-6")
    )
    assert cost.input_usd == pytest.approx(3.0)
    assert cost.output_usd == pytest.approx(15.0)


def test_cache_writes_and_reads_use_their_multipliers() -> None:
    haiku = BOOK.get("claude-haiku-4-5")
    cost = price_usage(
        Usage(
            cache_write_5m_tokens=1_000_000,
            cache_write_1h_tokens=1_000_000,
            cache_read_tokens=1_000_000,
        ),
        haiku,
    )
    assert cost.cache_write_usd == pytest.approx(1.25 + 2.0)
    assert cost.cache_read_usd == pytest.approx(0.1)


def test_batch_halves_every_component() -> None:
    usage = Usage(1000, 200, 300, 0, 5000)
    model = BOOK.get("claude-sonnet-4-6")
    assert price_usage(usage, model, batch=True).total_usd == pytest.approx(
        price_usage(usage, model).total_usd / 2
    )


def test_long_prompts_switch_the_whole_request_to_the_long_rate() -> None:
    haiku55 = BOOK.get("claude-haiku-5-5")
    short = price_usage(Usage(input_tokens=100_000, output_tokens=1_000_000), haiku55)
    long = price_usage(Usage(input_tokens=100_001, output_tokens=1_000_000), haiku55)
    assert short.output_usd == pytest.approx(0.50)
    assert long.output_usd == pytest.approx(2.50)
    # Cached tokens count toward the prompt length too.
    cached = price_usage(
        Usage(input_tokens=10, cache_read_tokens=100_000, output_tokens=1_000_000), haiku55
    )
    assert cached.output_usd == pytest.approx(2.50)


@given(st.sampled_from(MODEL_NAMES), tokens, tokens, tokens, st.integers(1, 1000))
def test_cost_grows_with_tokens(
    name: str, inputs: int, outputs: int, cached: int, more: int
) -> None:
    model = BOOK.get(name)
    base = price_usage(Usage(inputs, outputs, cache_read_tokens=cached), model).total_usd
    assert (
        price_usage(Usage(inputs + more, outputs, cache_read_tokens=cached), model).total_usd
        >= base
    )
    assert (
        price_usage(Usage(inputs, outputs + more, cache_read_tokens=cached), model).total_usd > base
    )
    assert (
        price_usage(Usage(inputs, outputs, cache_read_tokens=cached + more), model).total_usd
        >= base
    )


@given(st.sampled_from(MODEL_NAMES), st.integers(0, 90_000), tokens)
def test_cache_reads_never_cost_more_than_plain_input(name: str, prompt: int, outputs: int) -> None:
    model = BOOK.get(name)
    plain = price_usage(Usage(input_tokens=prompt, output_tokens=outputs), model).total_usd
    read = price_usage(Usage(cache_read_tokens=prompt, output_tokens=outputs), model).total_usd
    assert read <= plain + 1e-15
