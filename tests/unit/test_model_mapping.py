"""The model mapping table: exact ids, * patterns, deterministic precedence."""

from __future__ import annotations

import itertools
import time

import pytest

from gateway.protocol.model_mapping import PatternTable


def test_exact_match() -> None:
    table = PatternTable({"gemini-pro": "gemini-2.5-pro"})
    assert table.lookup("gemini-pro") == "gemini-2.5-pro"
    assert table.lookup("gemini-pro-x") is None


def test_exact_beats_any_pattern() -> None:
    table = PatternTable({"gemini-2.5-pro*": "a", "gemini-2.5-pro": "exact", "*": "all"})
    assert table.lookup("gemini-2.5-pro") == "exact"


def test_no_match_is_none() -> None:
    assert PatternTable({"a*": "x"}).lookup("b") is None
    assert PatternTable({}).lookup("anything") is None


@pytest.mark.parametrize(
    ("pattern", "model", "matches"),
    [
        ("gemini-*", "gemini-2.5-pro", True),
        ("gemini-*", "gemini-", True),  # * may match nothing
        ("gemini-*", "gemin", False),
        ("*-pro", "gemini-2.5-pro", True),
        ("*-pro", "gemini-2.5-pro-preview", False),
        ("gemini-*-pro", "gemini-2.5-pro", True),
        ("gemini-*-pro", "gemini--pro", True),
        ("gemini-*-pro", "gemini-pro", False),  # pieces may not overlap
        ("*flash*", "gemini-2.5-flash-lite", True),
        ("*flash*", "flash", True),
        ("a*b*c", "abc", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "acb", False),
        ("a*a", "a", False),
        ("a*a", "aa", True),
        ("*", "", True),
        ("*", "anything/with:chars", True),
        ("a**b", "ab", True),
        ("gpt-4.?", "gpt-4.?", True),  # regex characters are literal
        ("gpt-4.?", "gpt-4x", False),
        ("x[1]*", "x[1]y", True),
    ],
)
def test_wildcard_semantics(pattern: str, model: str, matches: bool) -> None:
    assert (PatternTable({pattern: "T"}).lookup(model) == "T") is matches


def test_most_literal_characters_wins() -> None:
    table = PatternTable({"gemini-*": "generic", "gemini-2.5-*": "two-five", "*-pro": "pro"})
    assert table.lookup("gemini-2.5-pro") == "two-five"
    assert table.lookup("gemini-3-pro") == "generic"  # 7 literal chars beat 4
    assert table.lookup("claude-pro") == "pro"


def test_tie_on_literals_fewer_wildcards_wins() -> None:
    # Both have 6 literal characters; "abc*def" has one wildcard, "*abc*def" two.
    table = PatternTable({"*abc*def": "two", "abc*def": "one"})
    assert table.lookup("abcXdef") == "one"


def test_full_tie_is_broken_by_pattern_text_not_table_order() -> None:
    # "a*" and "*z" both have 1 literal and 1 wildcard; "*z" < "a*" as text.
    for order in itertools.permutations([("a*", "from-a-star"), ("*z", "from-star-z")]):
        assert PatternTable(dict(order)).lookup("az") == "from-star-z"


def test_full_tie_deterministic_lexicographic() -> None:
    # Same literal count (1) and wildcard count (1): lexicographically smallest pattern wins.
    for order in itertools.permutations([("b*", "B"), ("*b", "STAR-B")]):
        assert PatternTable(dict(order)).lookup("bb") == "STAR-B"  # "*b" < "b*"


def test_models_prefix_stripped_from_input_patterns_and_targets() -> None:
    table = PatternTable({"models/gemini-*": "models/gemini-2.5-pro", "x": "models/models/y"})
    assert table.lookup("models/gemini-flash") == "gemini-2.5-pro"
    assert table.lookup("gemini-flash") == "gemini-2.5-pro"
    assert table.lookup("models/models/x") == "y"


def test_case_sensitive() -> None:
    table = PatternTable({"Gemini-*": "T"})
    assert table.lookup("gemini-pro") is None
    assert table.lookup("Gemini-pro") == "T"


def test_len_and_repr() -> None:
    table = PatternTable({"a": "b", "c*": "d"})
    assert len(table) == 2
    assert "1 exact" in repr(table) and "1 patterns" in repr(table)


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"": "x"}, "''"),
        ({"   ": "x"}, "'   '"),
        ({" gemini": "x"}, "' gemini'"),
        ({"gem ini": "x"}, "'gem ini'"),
        ({"models/": "x"}, "'models/'"),
        ({"gemini-*": ""}, "'gemini-*'"),
        ({"gemini-*": "   "}, "'gemini-*'"),
        ({"gemini-*": "gemini-*"}, "'gemini-*'"),
        ({"gemini-*": "a b"}, "'gemini-*'"),
        ({"gemini-*": "models/"}, "'gemini-*'"),
        ({"gemini-*": None}, "'gemini-*'"),
        ({1: "x"}, "1"),
    ],
)
def test_bad_entries_raise_naming_the_pattern(mapping: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        PatternTable(mapping)
    assert fragment in str(info.value)


def test_conflicting_duplicates_after_prefix_strip_raise() -> None:
    with pytest.raises(ValueError) as info:
        PatternTable({"models/x*": "a", "x*": "b"})
    assert "'models/x*'" in str(info.value) and "'x*'" in str(info.value)


def test_agreeing_duplicates_are_fine() -> None:
    assert PatternTable({"models/x": "a", "x": "a"}).lookup("x") == "a"


def test_hostile_input_is_fast() -> None:
    table = PatternTable({"a*a*a*a*a*a*b": "T"})
    start = time.perf_counter()
    assert table.lookup("a" * 20_000 + "c") is None
    assert time.perf_counter() - start < 0.5
