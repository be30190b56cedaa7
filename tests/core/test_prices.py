from pathlib import Path

import pytest
import yaml

from tiergate.core.prices import PRICES_ENV, PriceBookError, UnknownModelError, load_price_book
from tiergate.core.usage import Usage

MODELS_IN_API_NOTES = [
    "claude-haiku-4-5",
    "claude-sonnet-4-6",
    "claude-sonnet-4-5",
    "claude-opus-4-5",
    "claude-opus-4-8",
    "claude-haiku-5-5",
    "claude-sonnet-5-5",
]


def test_every_row_has_a_source_and_a_date() -> None:
    book = load_price_book(use_env=False)
    for model in book.models.values():
        assert model.source.strip(), model.name
        assert model.as_of.startswith("20"), model.name
        assert model.input > 0 and model.output > 0
        assert model.latency.ttft_s > 0 and model.latency.output_tokens_per_s > 0


@pytest.mark.parametrize("name", MODELS_IN_API_NOTES)
def test_the_models_of_the_api_notes_are_priced(name: str) -> None:
    assert name in load_price_book(use_env=False)


def test_aliases_resolve_to_one_entry() -> None:
    book = load_price_book(use_env=False)
    assert book.get("claude-haiku-4-5-20251001") is book.get("claude-haiku-4-5")
    assert book.get("claude-sonnet-4-5-20250929").name == "claude-sonnet-4-5"


def test_capabilities_match_the_api_notes() -> None:
    book = load_price_book(use_env=False)
    assert book.get("claude-haiku-4-5").forced_tool_choice
    assert book.get("claude-sonnet-4-6").forced_tool_choice
    assert not book.get("claude-sonnet-5-5").forced_tool_choice
    assert book.get("claude-haiku-4-5").min_cacheable_tokens == 4096
    assert book.get("claude-sonnet-4-5").min_cacheable_tokens == 1024
    assert book.get("claude-sonnet-5-5").cache_read == 0.05


def test_unknown_model_suggests_close_names() -> None:
    book = load_price_book(use_env=False)
    with pytest.raises(UnknownModelError) as raised:
        book.get("claude-haiku-45")
    assert "claude-haiku-4-5" in raised.value.suggestions
    assert "did you mean" in str(raised.value)


def _write_override(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "models": {
                    "claude-haiku-4-5": {
                        "input": 0.8,
                        "output": 4.0,
                        "context_window": 200000,
                        "min_cacheable_tokens": 2048,
                        "forced_tool_choice": True,
                        "latency": {"ttft_s": 0.3, "output_tokens_per_s": 100},
                        "source": "our negotiated contract",
                        "as_of": "2026-11-01",
                    },
                    "acme-small": {
                        "input": 0.05,
                        "output": 0.1,
                        "context_window": 32000,
                        "min_cacheable_tokens": 0,
                        "forced_tool_choice": False,
                        "latency": {"ttft_s": 0.1, "output_tokens_per_s": 300},
                        "source": "acme price list",
                        "as_of": "2026-10-01",
                    },
                }
            }
        )
    )
    return path


def test_a_user_file_overrides_and_extends(tmp_path: Path) -> None:
    book = load_price_book(_write_override(tmp_path / "prices.yaml"), use_env=False)
    haiku = book.get("claude-haiku-4-5-20251001")
    assert (haiku.input, haiku.source) == (0.8, "our negotiated contract")
    assert haiku.cache_read == 0.1  # taken from the built-in defaults
    assert book.get("acme-small").output == 0.1
    assert book.get("claude-sonnet-4-6").input == 3.0  # untouched rows stay


def test_the_environment_variable_names_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRICES_ENV, str(_write_override(tmp_path / "prices.yaml")))
    assert load_price_book().get("claude-haiku-4-5").input == 0.8
    assert load_price_book(use_env=False).get("claude-haiku-4-5").input == 1.0


def test_a_malformed_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  x: {input: 1}\n")
    with pytest.raises(
        PriceBookError, match=r"bad\.yaml: models\.x\.output: required field missing"
    ):
        load_price_book(bad, use_env=False)
    with pytest.raises(PriceBookError, match="cannot read"):
        load_price_book(tmp_path / "absent.yaml", use_env=False)


def test_usage_from_api_splits_cache_writes_by_ttl() -> None:
    usage = Usage.from_api(
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        }
    )
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (100, 200)
    plain = Usage.from_api(
        {"input_tokens": 1, "output_tokens": 2, "cache_creation_input_tokens": 50}
    )
    assert (plain.cache_write_5m_tokens, plain.cache_write_1h_tokens) == (50, 0)
    assert plain.prompt_tokens == 51
    with pytest.raises(ValueError):
        Usage(input_tokens=-1)


def test_a_partial_row_changes_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "discount.yaml"
    path.write_text(
        "models:\n  claude-sonnet-4-6: {input: 2.4, source: enterprise deal, as_of: '2026-11-20'}\n"
    )
    sonnet = load_price_book(path, use_env=False).get("claude-sonnet-4-6")
    assert (sonnet.input, sonnet.output, sonnet.min_cacheable_tokens) == (2.4, 15.0, 2048)
    assert sonnet.source == "enterprise deal"


def test_unlisted_claude_ids_are_priced_by_a_conservative_stand_in() -> None:
    book = load_price_book(use_env=False)
    dated = book.stand_in("claude-sonnet-4-6-20260101")
    assert dated is not None and dated.name == "claude-sonnet-4-6-20260101"
    assert (dated.input, dated.output) == (3.0, 15.0)
    sonnets = [row for row in book.models.values() if row.family == "sonnet"]
    newer = book.stand_in("claude-sonnet-7")
    assert newer is not None and newer.output == max(row.output for row in sonnets)
    assert "dearest sonnet" in newer.source
    new_family = book.stand_in("claude-fable-1")
    assert new_family is not None
    assert new_family.output == max(row.output for row in book.models.values())
    for not_claude_or_typo in ("gpt-4", "claude-sonet-4-6", "claude-hiaku-4-5", "claude-haiku-4-5"):
        assert book.stand_in(not_claude_or_typo) is None, not_claude_or_typo


def test_only_a_book_with_stand_ins_answers_unlisted_ids() -> None:
    book = load_price_book(use_env=False)
    with pytest.raises(UnknownModelError):
        book.get("claude-sonnet-7")
    lenient = book.with_stand_ins()
    assert lenient.get("claude-sonnet-7").output == 15.0
    assert "claude-sonnet-7" not in lenient  # `in` still says what the book lists
    assert lenient.get("claude-haiku-4-5-20251001") is book.get("claude-haiku-4-5")
    with pytest.raises(UnknownModelError):
        lenient.get("gpt-4")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{input: -1}", r"input: Input should be greater than or equal"),
        ("{inptu: 0.8}", r"inptu: unknown field \(did you mean input\?\)"),
        ("{latency: {ttft_s: fast}}", r"latency\.ttft_s: Input should be a valid number"),
        ("{batch_discount: 2}", r"batch_discount: Input should be less than or equal to 1"),
        ("{context_window: 0}", r"context_window: Input should be greater than 0"),
    ],
)
def test_a_bad_override_names_the_file_the_model_and_the_field(
    tmp_path: Path, row: str, message: str
) -> None:
    bad = tmp_path / "override.yaml"
    bad.write_text(f"models:\n  claude-haiku-4-5: {row}\n")
    with pytest.raises(
        PriceBookError, match=r"override\.yaml: models\.claude-haiku-4-5\." + message
    ):
        load_price_book(bad, use_env=False)
