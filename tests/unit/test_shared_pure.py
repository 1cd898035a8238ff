"""The pure parts of the shared-state backend: RESP framing, URLs, key names, cooldown records, ranks."""

from __future__ import annotations

import pytest

from gateway.pool.account import Account, Cooldown, ModelQuota
from gateway.shared import keys as K
from gateway.shared.resp import Parser, RedisError, encode, parse_url


def test_encode_sends_every_argument_as_a_bulk_string() -> None:
    assert encode("SET", "k", 5, b"\x00v") == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n$2\r\n\x00v\r\n"


def test_parser_reads_every_reply_kind_and_waits_for_the_rest() -> None:
    parser = Parser()
    data = b"+OK\r\n-NOSCRIPT No matching script\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n*-1\r\n"
    replies = []
    for i in range(len(data)):  # byte by byte: replies never come out half-read
        replies += parser.feed(data[i:i + 1])
    assert replies[0] == "OK"
    assert isinstance(replies[1], RedisError) and str(replies[1]).startswith("NOSCRIPT")
    assert replies[2:] == [42, b"abc", None, [b"a", [1]], None]


def test_parser_keeps_binary_bulk_strings_with_crlf_inside() -> None:
    assert Parser().feed(b"$4\r\na\r\nb\r\n") == [b"a\r\nb"]


def test_parser_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        Parser().feed(b"?what\r\n")


def test_url_with_password_database_and_tls() -> None:
    url = parse_url("rediss://app:s%40cret@redis.internal:6380/2")
    assert (url.host, url.port, url.db, url.username, url.password, url.tls) == ("redis.internal", 6380, 2, "app", "s@cret", True)
    assert "s@cret" not in url.safe() and url.safe() == "rediss://redis.internal:6380/2"
    assert parse_url("redis://:pw@localhost").password == "pw"
    assert parse_url("redis://localhost").port == 6379


@pytest.mark.parametrize("bad", ["http://localhost", "redis://", "redis://h/x"])
def test_bad_urls_say_why(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_url(bad)


def test_selection_keys_share_one_cluster_slot_and_hide_the_session() -> None:
    keys = K.Keys("agw:")
    tags = {k[k.index("{"):k.index("}") + 1] for k in (keys.last_used(), keys.cooldowns(), keys.session("s1", "m"))}
    assert tags == {"{pool}"}
    assert "s1" not in keys.session("s1", "m")
    assert keys.session("s1", "m") != keys.session("s1", "n")
    assert keys.lock("a@x", "token").startswith("agw:{acct:a@x}") and keys.flight("a@x", "token").startswith("agw:{acct:a@x}")
    assert keys.flight("a@x", "token") != keys.flight("a@x", "project")


def test_cooldown_fields_and_values_round_trip() -> None:
    assert K.split_field(K.cooldown_field("a@x", None)) == ("a@x", None)
    assert K.split_field(K.cooldown_field("a@x", "gemini-3-flash")) == ("a@x", "gemini-3-flash")
    assert K.parse_cooldown(K.cooldown_value(1700000000.5, "HTTP 429 rate limited")) == (1700000000.5, "HTTP 429 rate limited")
    assert K.parse_cooldown(b"nonsense") is None


def test_rank_prefers_quota_only_for_the_quota_policy() -> None:
    low = Account("a@x", "r", quota={"gemini-3-flash": ModelQuota(0.1)})
    full = Account("b@x", "r")
    assert K.rank("quota-aware", full, "gemini-3-flash", 0) < K.rank("quota-aware", low, "gemini-3-flash", 0)
    assert K.rank("least-recently-used", low, "gemini-3-flash", 0) == K.rank("least-recently-used", full, "gemini-3-flash", 0)


def test_known_cooldowns_are_what_a_restarted_redis_is_told() -> None:
    account = Account("a@x", "r", cooldown_until=200.0, cooldown_reason="rate",
                      model_cooldowns={"gemini-3-flash": Cooldown(150.0, "quota"), "old": Cooldown(50.0, "gone")})
    assert sorted(K.known_cooldowns(account, 100.0), key=str) == sorted(
        [(None, 200.0, "rate"), ("gemini-3-flash", 150.0, "quota")], key=str)


def test_token_records_round_trip_and_reject_garbage() -> None:
    assert K.parse_token_record(K.token_record("ya29.x", 123.0)) == ("ya29.x", 123.0)
    assert K.parse_token_record(b"{}") is None and K.parse_token_record(None) is None


def test_project_records_round_trip_and_reject_garbage() -> None:
    assert K.parse_project_record(K.project_record("p-1", "standard-tier", None)) == ("p-1", "standard-tier", None)
    assert K.parse_project_record(b'{"project": ""}') is None and K.parse_project_record(b"[") is None


def test_a_timed_out_call_keeps_replies_in_order_and_a_lost_connection_fails_the_rest() -> None:
    from twisted.internet.defer import CancelledError
    from twisted.internet.testing import StringTransport

    from gateway.shared.resp import RedisUnavailable, RespProtocol

    proto = RespProtocol()
    proto.makeConnection(StringTransport())
    late, next_one, third = proto.command("GET", "a"), proto.command("GET", "b"), proto.command("GET", "c")
    late.addErrback(lambda f: f.trap(CancelledError))
    late.cancel()  # the deadline passed
    got: list = []
    next_one.addCallback(got.append)
    proto.dataReceived(b"$1\r\na\r\n$1\r\nb\r\n")
    assert got == [b"b"]  # a's reply went to nobody, b's to b
    failed: list = []
    third.addErrback(failed.append)
    proto.connectionLost(None)
    assert failed and failed[0].check(RedisUnavailable)
