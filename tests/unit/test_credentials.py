"""Where a client key is found, how it is logged, how it is compared."""

from __future__ import annotations

import hmac

import pytest

from gateway.protocol import credentials
from gateway.protocol.credentials import extract_credential, keys_match, redact


def test_order_goog_header_first() -> None:
    headers = {"x-goog-api-key": "g", "authorization": "Bearer b", "x-api-key": "x"}
    assert extract_credential(headers, {"key": ["q"]}) == "g"


def test_then_bearer() -> None:
    assert extract_credential({"authorization": "Bearer b", "x-api-key": "x"}, {"key": ["q"]}) == "b"


def test_then_x_api_key() -> None:
    assert extract_credential({"x-api-key": "x"}, {"key": ["q"]}) == "x"


def test_then_query_key() -> None:
    assert extract_credential({}, {"key": ["q"]}) == "q"


def test_nothing() -> None:
    assert extract_credential({}, {}) is None
    assert extract_credential({"other": "v"}, {"notkey": ["v"]}) is None


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert extract_credential({"authorization": f"{scheme} tok"}, {}) == "tok"


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "tok", "Bearer", "Bearer    ", "Bearertok", ""])
def test_non_bearer_authorization_is_not_a_key(value: str) -> None:
    assert extract_credential({"authorization": value}, {}) is None


def test_bearer_extra_spaces_are_stripped() -> None:
    assert extract_credential({"authorization": "  Bearer   tok  "}, {}) == "tok"


def test_empty_values_count_as_absent() -> None:
    headers = {"x-goog-api-key": "", "authorization": "Bearer ", "x-api-key": "  "}
    assert extract_credential(headers, {"key": ["", " ", "real"]}) == "real"
    assert extract_credential(headers, {"key": [""]}) is None


def test_values_are_stripped() -> None:
    assert extract_credential({"x-goog-api-key": " k \t"}, {}) == "k"


def test_first_non_empty_query_value() -> None:
    assert extract_credential({}, {"key": ["a", "b"]}) == "a"


def test_tolerates_bytes_from_twisted() -> None:
    assert extract_credential({b"x-goog-api-key": b"g"}, {}) == "g"  # type: ignore[dict-item]
    assert extract_credential({}, {b"key": [b"q"]}) == "q"  # type: ignore[dict-item]
    assert extract_credential({}, {"key": "single"}) == "single"  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("sk-abcdefghijklmnop", "…mnop"),
        ("AIzaSyA48NBQu6n3AzKtmx1pHc5yLhFq8WwiKHA", "…iKHA"),
        ("123456789012", "…9012"),
        ("12345678901", "****"),
        ("abc", "****"),
        ("", "****"),
    ],
)
def test_redact(secret: str, shown: str) -> None:
    assert redact(secret) == shown


def test_redact_never_shows_more_than_four_chars() -> None:
    for length in range(0, 64):
        secret = "".join(chr(0x41 + (i % 26)) for i in range(length))
        out = redact(secret)
        visible = out.replace("…", "").replace("*", "")
        assert len(visible) <= 4
        if length < 12:
            assert out == "****"  # not even the length of a short secret leaks


def test_keys_match() -> None:
    keys = ["alpha-key", "beta-key"]
    assert keys_match("alpha-key", keys)
    assert keys_match("beta-key", keys)
    assert not keys_match("gamma-key", keys)
    assert not keys_match("alpha-ke", keys)
    assert not keys_match("alpha-key ", keys)
    assert not keys_match("ALPHA-KEY", keys)


def test_keys_match_none_and_empty() -> None:
    assert not keys_match(None, ["k"])
    assert not keys_match("", ["k", ""])
    assert not keys_match("k", [])
    assert not keys_match("", [])


def test_keys_match_unicode() -> None:
    assert keys_match("clé-ü", ["clé-ü"])
    assert not keys_match("clé-u", ["clé-ü"])


def test_keys_match_compares_every_key_without_early_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    assert keys_match("first", ["first", "second", "third"])
    assert len(calls) == 3
    # Fixed-length digests are compared, so key lengths cannot leak.
    assert {len(a) for a, b in calls} | {len(b) for a, b in calls} == {32}
