"""Fields of a structured answer and the comparisons a route may choose per field."""

import pytest

from tiergate.tasks.fields import as_date, as_number, comparison_for, flatten, same


def test_flatten_names_leaves_by_dotted_path() -> None:
    answer = {"intent": "PlayMusic", "slots": {"artist": "Nina", "year": 1968}, "tags": ["a"]}
    assert flatten(answer) == {
        "intent": "PlayMusic",
        "slots.artist": "Nina",
        "slots.year": 1968,
        "tags": ["a"],
    }
    assert flatten({"intent": "GetWeather", "slots": {}}) == {"intent": "GetWeather"}


def test_exact_is_equality_of_json_values_and_types() -> None:
    assert same("exact", "PlayMusic", "PlayMusic")
    assert not same("exact", "PlayMusic", "playmusic")
    assert not same("exact", 1, "1")
    assert not same("exact", 1, True)


def test_casefold_forgives_case_and_whitespace_only() -> None:
    assert same("casefold", "Flow  Español ", "flow español")
    assert not same("casefold", "Flow Español", "Flow Espanol")
    assert not same("casefold", "the Refugee Playlist", "Refugee Playlist")


@pytest.mark.parametrize(
    ("first", "second", "equal"),
    [("1,200", 1200, True), ("1200.0", "1200", True), (" 6 ", 6, True), ("six", 6, False)],
)
def test_number_compares_numerically(first: object, second: object, equal: bool) -> None:
    assert same("number", first, second) is equal


def test_number_falls_back_to_casefold_when_unparseable() -> None:
    assert as_number("six") is None
    assert same("number", "Six", "six")


@pytest.mark.parametrize("written", ["2024-03-05", "05/03/2024", "March 5, 2024", "5 March 2024"])
def test_date_reads_common_formats(written: str) -> None:
    assert same("date", written, "2024-03-05")


def test_different_dates_differ_and_unparseable_dates_compare_as_text() -> None:
    assert not same("date", "2024-03-06", "2024-03-05")
    assert as_date("tomorrow night") is None
    assert same("date", "Tomorrow  night", "tomorrow night")


def test_set_ignores_order_case_and_duplicates() -> None:
    assert same("set", ["Jazz", "blues"], ["blues", "jazz", "jazz"])
    assert same("set", "jazz, blues", ["Blues", "Jazz"])
    assert not same("set", ["jazz"], ["jazz", "blues"])


def test_lists_compare_item_by_item_in_order_unless_set() -> None:
    assert same("casefold", ["Paris", "Rome"], ["paris", "rome"])
    assert not same("casefold", ["Paris", "Rome"], ["Rome", "Paris"])
    assert not same("casefold", ["Paris"], "Paris")


def test_rule_lookup_prefers_the_exact_path_then_the_first_glob() -> None:
    rules = {"slots.year": "number", "slots.*": "casefold", "intent": "exact"}
    assert comparison_for("slots.year", rules, "set") == "number"  # type: ignore[arg-type]
    assert comparison_for("slots.city", rules, "set") == "casefold"  # type: ignore[arg-type]
    assert comparison_for("other", rules, "set") == "set"  # type: ignore[arg-type]
