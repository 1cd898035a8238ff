"""The pure parts of what a newcomer sees: start-up summary, failure line, accounts command, log lines, GET /, route labels."""

from __future__ import annotations

import errno
import json

from twisted.internet.error import CannotListenError
from twisted.logger import LogLevel

from gateway import logs, startup
from gateway.commands import choose_accounts_command
from gateway.config import Settings
from gateway.observe import route_of
from gateway.pool.account import Account
from gateway.web.home import render_home, wants_html


def test_accounts_lines_say_what_to_do() -> None:
    assert startup.accounts_lines([], 0, "./scripts/accounts") == [
        "accounts:  0 accounts: run `./scripts/accounts add` (or `./scripts/accounts import PATH`) to add one"]
    ok = Account("a@x", "1//a")
    gone = Account("b@x", "1//b", disabled=True, disabled_reason="invalid_grant")
    resting = Account("c@x", "1//c", cooldown_until=100.0, cooldown_reason="RATE_LIMIT_EXCEEDED")
    lines = startup.accounts_lines([ok, gone, resting], 40.0, "ag accounts")
    assert lines[0] == "accounts:  1 usable of 3"
    assert lines[1].strip() == "b@x: disabled: invalid_grant"
    assert lines[2].strip() == "c@x: cooling for 61 s: RATE_LIMIT_EXCEEDED"
    assert "enable EMAIL" in startup.accounts_lines([gone], 0, "ag accounts")[0]


def test_summary_block_names_every_fact() -> None:
    lines = startup.summary_lines(listen=["tcp:8045"], metrics_listen=[], auth=startup.auth_text("strict", 2, "keys"),
                                  store="JSON store /s.json", accounts=["accounts:  1 usable of 1"],
                                  client=startup.client_version(Settings()), plugins={"backend": "json"},
                                  config_source=None, version="9.9")
    assert lines[0] == "antigravity-gateway 9.9 started"
    text = "\n".join(lines)
    for fact in ("listening: tcp:8045", "strict: keys with 2 keys", "store:     JSON store /s.json",
                 f"upstream client: {Settings().upstream.user_agent}", "plugins:   backend=json", "built-in defaults"):
        assert fact in text


def test_listen_failure_line_names_address_and_cause() -> None:
    error = CannotListenError("127.0.0.1", 8045, OSError(errno.EADDRINUSE, "Address already in use"))
    line = startup.listen_failure_line("tcp:8045:interface=127.0.0.1", error)
    assert line.startswith("antigravity-gateway: cannot listen on tcp:8045:interface=127.0.0.1: Address already in use")
    assert "\n" not in line and "--port" in line


def test_accounts_command_is_one_that_works_here() -> None:
    bin_script = "/venv/bin/antigravity-gateway"
    assert choose_accounts_command(bin_script, bin_script, "/repo/scripts/accounts", "/repo") == "antigravity-gateway accounts"
    assert choose_accounts_command(None, bin_script, "/repo/scripts/accounts", "/repo") == "./scripts/accounts"
    assert choose_accounts_command(None, bin_script, "/repo/scripts/accounts", "/tmp") == "/repo/scripts/accounts"
    assert choose_accounts_command("/other/antigravity-gateway", bin_script, None, "/") == "/venv/bin/antigravity-gateway accounts"


def test_log_format_choice_and_lines() -> None:
    assert logs.twist_log_format(["twist", "--log-format=json", "x"]) == "json"
    assert logs.twist_log_format(["twist", "--log-format", "text"]) == "text"
    assert logs.twist_log_format(["twist", "x"]) is None
    assert logs.choose_format(None, False, "text") == "text"
    assert logs.choose_format(None, True, "text") == "json"
    assert logs.choose_format("text", True, "json") == "text"
    event = {"log_format": "hello {who}", "who": "you", "log_level": LogLevel.warn, "log_namespace": "ns",
             "log_time": 0.5, "log_logger": object(), "obj": object(), "n": 3}
    assert logs.text_line(event) == "1970-01-01T00:00:00.500Z warn  [ns] hello you\n"
    assert logs.text_line(event, timestamps=False) == "warn  [ns] hello you\n"
    parsed = json.loads(logs.json_line(event))
    assert parsed == {"log_time": 0.5, "log_level": "warn", "log_namespace": "ns", "message": "hello you", "who": "you", "n": 3}


def test_home_page_negotiates_and_holds_no_secrets() -> None:
    assert not wants_html(None) and not wants_html(b"*/*") and wants_html(b"text/html,*/*")
    assert not wants_html(b"application/json, text/html")
    kind, body = render_home("1.2", None)
    doc = json.loads(body)
    assert kind.startswith(b"application/json") and doc["version"] == "1.2" and doc["routes"]
    kind, body = render_home("1.2", b"text/html")
    assert kind.startswith(b"text/html") and b"antigravity-gateway 1.2" in body


def test_every_route_has_its_own_label() -> None:
    assert route_of(b"/")[0] == "home"
    assert route_of(b"/admin/accounts")[0] == "admin.accounts"
    assert route_of(b"/v1/messages/count_tokens")[0] == "messages.count_tokens"
    assert route_of(b"/chat/completions")[0] == "chat.completions"
    assert route_of(b"/v1/responses")[0] == "responses"
    assert route_of(b"/v1beta/models/gemini-3-flash:generateContent") == ("generateContent", "gemini-3-flash")
    assert route_of(b"/nope")[0] == "other"


def test_text_line_timestamps_are_those_of_each_event_with_the_second_cached() -> None:
    import time

    from gateway.logs import text_line

    for when in (1764307800.1234, 1764307800.999, 1764307801.0005, 1764307800.25):
        line = text_line({"log_time": when, "log_format": "hi", "log_namespace": "n"})
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1000):03d}Z "
        assert line.startswith(expected) and line.endswith("hi\n")
