"""Per-key limits: window edges, tokens from streamed and whole answers, model patterns, expiry."""

from __future__ import annotations

import pytest

from gateway.observe import Observation, usage_from
from gateway.team import limits
from gateway.team.keys import KeyProblem, KeyRecord, clean_patterns, hash_secret, model_allowed, new_secret, parse_expiry
from gateway.team.limits import DailyTokens, RequestWindows, decide, usage_tokens

T0 = 1_800_000_000.0  # a fixed moment; 2027-01-15T08:00:00Z


def key(**kw) -> KeyRecord:
    return KeyRecord("alice", "h", T0 - 100, **kw)


def test_rpm_window_edges() -> None:
    record = key(rpm=2)
    windows = RequestWindows()
    for t in (T0, T0 + 10):
        assert decide(record, "gemini-3-flash", t, windows.recent("alice", t), 0) is None
        windows.add("alice", t)
    refused = decide(record, "gemini-3-flash", T0 + 59.5, windows.recent("alice", T0 + 59.5), 0)
    assert refused is not None and refused.code == 429 and refused.reason == "rpm"
    assert refused.retry_after == 1  # the first request leaves the window at T0 + 60
    # exactly 60 s after the first request it no longer counts
    assert decide(record, "gemini-3-flash", T0 + 60, windows.recent("alice", T0 + 60), 0) is None
    # one in the window (T0+10) plus one more: refused again until T0+70
    windows.add("alice", T0 + 60)
    again = decide(record, "gemini-3-flash", T0 + 61, windows.recent("alice", T0 + 61), 0)
    assert again is not None and again.retry_after == 9


def test_no_limits_means_no_refusal() -> None:
    assert decide(key(), "anything", T0, [T0] * 1000, 10**9) is None


def test_tokens_per_day_until_utc_midnight() -> None:
    record = key(tokens_per_day=1000)
    assert decide(record, "m", T0, [], 999) is None
    refused = decide(record, "m", T0, [], 1000)
    assert refused is not None and refused.code == 429 and refused.reason == "tokens_per_day"
    assert refused.retry_after == int(86400 - (T0 % 86400))


def test_daily_tokens_roll_over_at_midnight() -> None:
    tokens = DailyTokens()
    midnight = (T0 // 86400 + 1) * 86400
    tokens.add("alice", 700, midnight - 1)
    assert tokens.get("alice", midnight - 0.5) == 700
    assert tokens.get("alice", midnight) == 0


def test_usage_tokens_from_a_whole_answer_and_a_stream() -> None:
    whole = b'{"candidates":[],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"thoughtsTokenCount":3,"totalTokenCount":18}}'
    assert usage_tokens(usage_from(whole)) == 18
    # a stream: each event carries usage so far; the last one counts (not the sum)
    events = [
        b'data: {"candidates":[],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":1,"totalTokenCount":11}}\r\n\r\n',
        b'data: {"candidates":[],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":7,"thoughtsTokenCount":2,"totalTokenCount":19}}\r\n\r\n',
    ]
    obs = Observation("id", "POST", "streamGenerateContent", "gemini-3-flash", "c", 0.0)
    for event in events:
        found = usage_from(event)
        if found:
            obs.usage = found
    assert usage_tokens(obs.usage) == 19
    assert usage_tokens({"promptTokenCount": 4, "candidatesTokenCount": 6}) == 10  # no total: the parts
    assert usage_tokens(None) == 0


@pytest.mark.parametrize(
    ("patterns", "model", "allowed"),
    [
        ((), "claude-opus-4-6-thinking", True),
        (("gemini-*",), "gemini-3-flash", True),
        (("gemini-*",), "claude-sonnet-4-6", False),
        (("claude-sonnet-4-6", "gemini-3-*"), "models/gemini-3-flash", True),
        (("Gemini-3-Flash",), "gemini-3-flash", True),
        (("gemini-3-flash",), "gemini-3-flash-lite", False),
    ],
)
def test_model_patterns(patterns: tuple[str, ...], model: str, allowed: bool) -> None:
    assert model_allowed(patterns, model) is allowed
    refusal = decide(key(models=patterns), model, T0, [], 0)
    assert (refusal is None) is allowed
    if not allowed:
        assert refusal.code == 403 and refusal.reason == "model" and refusal.retry_after is None


def test_clean_patterns() -> None:
    assert clean_patterns(["gemini-*, models/claude-sonnet-4-6", "gemini-*", " "]) == ("gemini-*", "claude-sonnet-4-6")


def test_expiry_edge() -> None:
    record = key(expires=T0 + 5)
    assert decide(record, "m", T0 + 4.999, [], 0) is None
    refused = decide(record, "m", T0 + 5, [], 0)
    assert refused is not None and refused.code == 403 and refused.reason == "expired"
    assert "expired" in refused.message


def test_expiry_is_checked_before_the_rate() -> None:
    refused = decide(key(expires=T0, rpm=1), "m", T0, [T0 - 1], 0)
    assert refused is not None and refused.reason == "expired"


def test_parse_expiry() -> None:
    assert parse_expiry("2027-01-15", None, T0) == 1_800_057_600.0  # end of that UTC day
    assert parse_expiry(None, 2, T0) == T0 + 2 * 86400
    assert parse_expiry("2027-01-15T08:00:00Z", None, T0) == T0
    assert parse_expiry(None, None, T0) is None
    with pytest.raises(KeyProblem):
        parse_expiry("next tuesday", None, T0)
    with pytest.raises(KeyProblem):
        parse_expiry("2027-01-15", 3, T0)


def test_secrets_are_hashed_and_distinct() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("agw_") and len(a) > 40
    assert hash_secret(a) != a and len(hash_secret(a)) == 64


def test_key_names() -> None:
    from gateway.team.keys import check_name

    assert check_name("alice@example.com") == "alice@example.com"
    for bad in ("", "static", "has space", "-dash", "x" * 65):
        with pytest.raises(KeyProblem):
            check_name(bad)


def test_seconds_to_next_day() -> None:
    assert limits.seconds_to_next_day(86400 * 3) == 86400
    assert limits.seconds_to_next_day(86400 * 3 - 1) == 1
