"""Unit tests of the emulator's pure parts: state, validation, token counting, answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.emulator import catalogue
from gateway.emulator.content import (
    count_tokens,
    generate_body,
    plan_answer,
    split_text,
    stream_bodies,
    text_tokens,
    validate_count_tokens,
    validate_request,
)
from gateway.emulator.state import (
    TOKEN_EXPIRED,
    TOKEN_MISSING,
    TOKEN_OK,
    TOKEN_UNKNOWN,
    Account,
    EmulatorState,
    Fault,
    Settings,
    StateError,
    demo_accounts,
    go_duration,
    iso_time,
    load_seed,
    parse_accounts,
)
from gateway.protocol.errors import GatewayError

FLASH = catalogue.get_model("gemini-3-flash")
assert FLASH is not None


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_state(clock: Clock | None = None, **settings: Any) -> EmulatorState:
    accounts = [
        Account("a@example.com", "rt-a", "proj-a"),
        Account("new@example.com", "rt-new", None),
    ]
    return EmulatorState(accounts, Settings(**settings), now=clock or Clock())


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


# --------------------------------------------------------------------------- accounts


def test_account_parsing_is_strict() -> None:
    account = Account.from_json({"email": "x@y.z", "refresh_token": "r", "project_id": None, "tier": "standard-tier"})
    assert account.project_id is None and account.tier == "standard-tier"
    for bad in (
        {"email": "x@y.z", "refresh_token": "r", "projectId": "p"},
        {"email": "nope", "refresh_token": "r"},
        {"email": "x@y.z", "refresh_token": ""},
        {"email": "x@y.z", "refresh_token": "r", "tier": "gold"},
        {"email": "x@y.z", "refresh_token": "r", "ineligible": [{"reason": "x"}]},
    ):
        with pytest.raises(StateError):
            Account.from_json(bad)


def test_parse_accounts_forms_and_duplicates() -> None:
    one = {"email": "x@y.z", "refresh_token": "r"}
    assert len(parse_accounts({"accounts": [one]})) == 1
    assert len(parse_accounts([one])) == 1
    assert len(parse_accounts(one)) == 1
    with pytest.raises(StateError):
        parse_accounts({"accounts": [one, one]})


def test_load_seed(tmp_path: Any) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps({"accounts": [{"email": "x@y.z", "refresh_token": "r", "project_id": "p"}]}))
    assert load_seed(str(path))[0].project_id == "p"
    path.write_text("{nope")
    with pytest.raises(StateError):
        load_seed(str(path))
    with pytest.raises(StateError):
        load_seed(str(tmp_path / "missing.json"))


def test_demo_accounts() -> None:
    accounts = demo_accounts(2)
    assert [a.email for a in accounts] == ["user1@example.com", "user2@example.com"]
    assert accounts[1].refresh_token == "emu-refresh-2" and accounts[1].project_id == "emu-project-2"


# --------------------------------------------------------------------------- tokens


def test_tokens_issue_expire_and_revoke() -> None:
    clock = Clock()
    state = make_state(clock, token_lifetime=100)
    account = state.account_for_refresh("rt-a")
    assert account is not None
    token, rotated = state.issue_token(account)
    assert rotated is None and token.token.startswith("ya29.emu-")
    assert state.lookup_access("Bearer " + token.token) == (TOKEN_OK, account)
    assert state.lookup_access(None)[0] == TOKEN_MISSING
    assert state.lookup_access("Basic abc")[0] == TOKEN_UNKNOWN
    assert state.lookup_access("Bearer nope")[0] == TOKEN_UNKNOWN
    clock.now += 100
    assert state.lookup_access("Bearer " + token.token)[0] == TOKEN_EXPIRED
    token, _ = state.issue_token(account)
    state.revoke("a@example.com")
    assert state.lookup_access("Bearer " + token.token)[0] == TOKEN_EXPIRED
    assert state.account_for_refresh("rt-a") is account
    state.revoke("a@example.com", refresh=True)
    assert state.account_for_refresh("rt-a") is None
    assert state.stats.token_refreshes["a@example.com"] == 2


def test_rotation_kills_the_old_refresh_token() -> None:
    state = make_state(rotate_refresh_tokens=True)
    account = state.account_for_refresh("rt-a")
    assert account is not None
    _, rotated = state.issue_token(account)
    assert rotated and rotated != "rt-a"
    assert state.account_for_refresh("rt-a") is None
    assert state.account_for_refresh(rotated) is account


def test_replacing_an_account_kills_its_tokens() -> None:
    state = make_state()
    account = state.accounts["a@example.com"]
    token, _ = state.issue_token(account)
    state.put_account(Account("a@example.com", "rt-a2", "proj-a"))
    assert state.lookup_access("Bearer " + token.token)[0] == TOKEN_EXPIRED
    assert state.account_for_refresh("rt-a") is None
    assert state.account_for_refresh("rt-a2") is not None


def test_client_check() -> None:
    state = make_state()
    assert state.check_client("emulator-client-id", "emulator-client-secret") is None
    assert state.check_client("other", "emulator-client-secret") == "The OAuth client was not found."
    assert state.check_client("emulator-client-id", "bad") == "Unauthorized"


def test_auth_codes_are_single_use() -> None:
    state = make_state()
    code = state.issue_code("a@example.com", "cid", "http://127.0.0.1:1/cb")
    assert state.redeem_code(code, "cid", "http://127.0.0.1:2/cb") is None
    code = state.issue_code("a@example.com", "cid", "http://127.0.0.1:1/cb")
    assert state.redeem_code(code, "cid", "http://127.0.0.1:1/cb") is state.accounts["a@example.com"]
    assert state.redeem_code(code, "cid", "http://127.0.0.1:1/cb") is None


# --------------------------------------------------------------------------- onboarding


def test_onboarding_finishes_after_polls() -> None:
    state = make_state(onboard_polls=2)
    account = state.accounts["new@example.com"]
    op = state.start_onboarding(account, "free-tier", None)
    assert not op.done and account.project_id is None
    assert state.poll_operation(op.name, state.accounts["a@example.com"]) is None
    assert not state.poll_operation(op.name, account).done  # type: ignore[union-attr]
    done = state.poll_operation(op.name, account)
    assert done is not None and done.done
    assert account.project_id == state.project_for_onboarding(account) == done.project_id


def test_onboarding_with_zero_polls_is_immediate() -> None:
    state = make_state(onboard_polls=0)
    account = state.accounts["new@example.com"]
    op = state.start_onboarding(account, "standard-tier", "my-proj")
    assert op.done and account.project_id == "my-proj" and account.tier == "standard-tier"


# --------------------------------------------------------------------------- faults


def test_fault_validation() -> None:
    for bad in (
        {"method": "nope"},
        {"kind": "explode"},
        {"times": 0},
        {"status": 42},
        {"surprise": 1},
        {"kind": "cut", "method": "generateContent"},
        {"kind": "invalid_grant", "method": "countTokens"},
        {"seconds": -1},
        {"headers": {"a": 1}},
    ):
        with pytest.raises(StateError):
            Fault.from_json(bad, "f")
    fault = Fault.from_json({"model": "models/gemini-3.1-pro-low"}, "f")
    assert fault.model == "gemini-3.1-pro-low" and fault.status == 503 and fault.times == 1
    assert Fault.from_json({"kind": "invalid_grant", "method": "token"}, "f").status == 400
    assert Fault.from_json({"kind": "delay"}, "f").seconds == 1.0


def test_fault_matching_and_consumption() -> None:
    state = make_state()
    state.add_fault({"method": "generateContent", "host": "sandbox", "times": 2, "status": 500})
    state.add_fault({"method": "*", "email": "a@example.com", "model": "gemini-3.1-pro-low", "times": -1, "status": 429})
    state.add_fault({"kind": "stall", "user_agent": "antigravity/"})
    assert state.take_fault("generateContent", None, None, None) is None
    assert state.take_fault("generateContent", "daily", None, None) is None
    assert state.take_fault("generateContent", "sandbox", None, None).status == 500  # type: ignore[union-attr]
    assert state.take_fault("generateContent", "sandbox", None, None).status == 500  # type: ignore[union-attr]
    assert state.take_fault("generateContent", "sandbox", None, None) is None
    for _ in range(3):
        assert state.take_fault("countTokens", None, "a@example.com", "gemini-3.1-pro-low").status == 429  # type: ignore[union-attr]
    assert state.take_fault("countTokens", None, "b@example.com", "gemini-3.1-pro-low") is None
    assert state.take_fault("generateContent", None, None, None, "antigravity/1.0") is None  # stall: streams only
    assert state.take_fault("streamGenerateContent", None, None, None, "curl/8") is None
    assert state.take_fault("streamGenerateContent", None, None, None, "antigravity/1.0").kind == "stall"  # type: ignore[union-attr]
    assert state.stats.faults_fired == 6
    assert len(state.faults) == 1 and state.faults[0].hits == 3
    assert state.remove_fault(state.faults[0].id) and not state.faults


# --------------------------------------------------------------------------- quota, settings, records, reset


def test_quota_and_its_reset() -> None:
    clock = Clock()
    state = make_state(clock)
    assert state.quota("a@example.com", "gemini-3.1-pro-low") == (1.0, state.quota_reset_at)
    assert state.set_quota({"model": "gemini-3.1-pro-low", "remaining_fraction": 0, "reset_in": 60}) == 2
    assert state.quota("a@example.com", "gemini-3.1-pro-low") == (0.0, clock.now + 60)
    clock.now += 61
    assert state.quota("a@example.com", "gemini-3.1-pro-low")[0] == 1.0
    with pytest.raises(StateError):
        state.set_quota({"model": "x", "remaining_fraction": 2})
    state.set_quota({"email": "a@example.com", "model": "m", "remaining_fraction": 0.5, "reset_time": "2030-01-01T00:00:00Z"})
    assert state.quota("a@example.com", "m") == (0.5, 1893456000.0)


def test_settings_update_is_typed_and_atomic() -> None:
    settings = Settings()
    settings.update({"event_delay": 0, "stream_events": 3})
    assert settings.event_delay == 0.0 and settings.stream_events == 3
    for bad in ({"stream_events": "3"}, {"nope": 1}, {"stream_events": 0}, {"rotate_refresh_tokens": 1}):
        with pytest.raises(StateError):
            settings.update(bad)
    with pytest.raises(StateError):
        settings.update({"stream_events": 9, "event_delay": -1})
    assert settings.stream_events == 3
    assert settings.to_json()["client_secret"] == "***"


def test_records_are_bounded_and_filtered() -> None:
    state = make_state(max_recorded=3)
    for i in range(5):
        state.record({"method": "generateContent" if i % 2 else "token", "host": None, "email": None, "i": i})
    assert [e["i"] for e in state.requests()] == [2, 3, 4]
    assert [e["i"] for e in state.requests(method="token")] == [2, 4]


def test_reset_keeps_accounts_unless_asked() -> None:
    state = make_state(stream_events=5)
    state.settings.update({"stream_events": 9})
    state.add_fault({})
    state.stats.count("generateContent", "sandbox")
    state.reset()
    assert not state.faults and not state.stats.requests and state.settings.stream_events == 5
    assert "a@example.com" in state.accounts
    state.reset(accounts=True)
    assert not state.accounts and not state.refresh_tokens


def test_time_formats() -> None:
    assert go_duration(3723.5) == "1h2m3.5s"
    assert go_duration(54) == "54s"
    assert go_duration(0.539) == "0.539s"
    assert go_duration(60) == "1m0s"
    assert iso_time(0) == "1970-01-01T00:00:00Z"


# --------------------------------------------------------------------------- validation


def _reject(obj: Any, spec: Any = FLASH) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        validate_request(obj, spec)
    assert info.value.code == 400
    return info.value


def test_request_validation_rejects_what_upstream_rejects() -> None:
    assert "Unknown name" in _reject({"contents": [user("hi")], "bogus": 1}).message
    assert "Unknown name" in _reject({"contents": [user("hi")], "generationConfig": {"maxTokens": 5}}).message
    _reject({"contents": []})
    _reject({})
    assert "valid role" in _reject({"contents": [{"parts": [{"text": "hi"}]}]}).message
    assert "valid role" in _reject({"contents": [{"role": "system", "parts": [{"text": "hi"}]}]}).message
    _reject({"contents": [{"role": "user", "parts": []}]})
    assert "empty text" in _reject({"contents": [{"role": "user", "parts": [{"text": ""}]}]}).message
    assert "oneof" in _reject({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {"mimeType": "a/b", "data": ""}}]}]}).message
    assert "Base64" in _reject({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "!!!"}}]}]}).message
    _reject({"contents": [user("hi")], "generationConfig": {"maxOutputTokens": 65537}})
    _reject({"contents": [user("hi")], "generationConfig": {"temperature": 3}})
    _reject({"contents": [user("hi")], "safetySettings": [{"category": "HARM_CATEGORY_NOPE", "threshold": "BLOCK_NONE"}]})
    _reject({"contents": [user("hi")], "safetySettings": [{"category": 99, "threshold": 1}]})
    _reject({"contents": [user("hi")], "tools": [{"functionDeclarations": [{"name": "1bad"}]}]})
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    assert "additionalProperties" in _reject({"contents": [user("hi")], "tools": [{"functionDeclarations": [{"name": "f", "parameters": schema}]}]}).message
    lite = catalogue.get_model("gemini-3.1-flash-image")
    _reject({"contents": [user("hi")], "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}, lite)


def test_function_turns_must_pair() -> None:
    call = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}
    answer = {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": 1}}}]}
    validate_request({"contents": [user("hi"), call, answer]}, catalogue.get_model("claude-sonnet-4-6"))
    assert "immediately after a function call" in _reject({"contents": [user("hi"), answer]}).message
    two = {"role": "user", "parts": [answer["parts"][0], answer["parts"][0]]}
    assert "number of function response parts" in _reject({"contents": [user("hi"), call, two]}).message


def test_enums_as_ints_or_names_and_snake_case_fields() -> None:
    req = validate_request(
        {
            "contents": [user("hi")],
            "safety_settings": [{"category": 7, "threshold": 4}, {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}],
            "generation_config": {"max_output_tokens": 10, "response_modalities": [1]},
            "system_instruction": {"parts": [{"text": "be brief"}]},
        },
        FLASH,
    )
    assert req["safetySettings"][0] == {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
    assert req["generationConfig"]["responseModalities"] == ["TEXT"]
    assert req["systemInstruction"]["parts"][0]["text"] == "be brief"


def test_claude_thinking_budget_below_max_tokens() -> None:
    claude = catalogue.get_model("claude-sonnet-4-6")
    cfg = {"maxOutputTokens": 1000, "thinkingConfig": {"thinkingBudget": 2000, "includeThoughts": True}}
    assert "budget_tokens" in _reject({"contents": [user("hi")], "generationConfig": cfg}, claude).message


def test_count_tokens_request_needs_models_prefix() -> None:
    with pytest.raises(GatewayError) as info:
        validate_count_tokens({"request": {"model": "gemini-3-flash", "contents": [user("hi")]}})
    assert info.value.code == 400
    with pytest.raises(GatewayError) as info:
        validate_count_tokens({"request": {"model": "models/gemini-0", "contents": [user("hi")]}})
    assert info.value.code == 404
    with pytest.raises(GatewayError):
        validate_count_tokens({"request": {"model": "models/gemini-3-flash", "contents": [user("hi")]}, "project": "p"})


# --------------------------------------------------------------------------- tokens and answers


def test_token_counting_rules() -> None:
    assert text_tokens("a") == 1 and text_tokens("abcd") == 1 and text_tokens("abcde") == 2
    assert text_tokens("é" * 4) == 2  # bytes, not characters
    contents = [{"role": "user", "parts": [{"text": "abcdefgh"}, {"inlineData": {"mimeType": "image/png", "data": ""}}]}]
    assert count_tokens(contents) == 2 + 258
    assert count_tokens(contents, {"parts": [{"text": "abcd"}]}) == 2 + 258 + 1
    tools = [{"functionDeclarations": [{"name": "f"}]}]
    assert count_tokens(contents, None, tools) == 260 + text_tokens('[{"functionDeclarations":[{"name":"f"}]}]')


def test_answers_follow_the_prompt_conventions() -> None:
    req = validate_request({"contents": [user("please stream 7 events")]}, FLASH)
    answer = plan_answer(req, FLASH, "r1", 5)
    assert answer.text == "Echo: please stream 7 events" and answer.events == 7
    events = stream_bodies(answer, FLASH, 9, "r1")
    assert len(events) == 7
    assert "".join(e["response"]["candidates"][0]["content"]["parts"][0]["text"] for e in events) == answer.text
    assert all("usageMetadata" not in e["response"] for e in events[:-1])
    last = events[-1]["response"]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"]["promptTokenCount"] == 9
    words = plan_answer(validate_request({"contents": [user("reply 50 words")]}, FLASH), FLASH, "r", 5)
    assert len(words.text.split()) == 50
    tools = [{"functionDeclarations": [{"name": "get_weather"}]}]
    call = plan_answer(validate_request({"contents": [user("call function get_weather")], "tools": tools}, FLASH), FLASH, "r", 5)
    assert call.function_call == {"name": "get_weather", "args": {}}  # no parameters declared: no arguments
    short = plan_answer(validate_request({"contents": [user("reply 500 words")], "generationConfig": {"maxOutputTokens": 10}}, FLASH), FLASH, "r", 5)
    assert short.finish_reason == "MAX_TOKENS" and text_tokens(short.text) <= 10


def test_generate_body_shape_and_determinism() -> None:
    req = validate_request(
        {"contents": [user("hi")], "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}, FLASH
    )
    body = generate_body(plan_answer(req, FLASH, "r1", 5), FLASH, 3, "r1")
    again = generate_body(plan_answer(req, FLASH, "r1", 5), FLASH, 3, "r1")
    assert body == again
    response = body["response"]
    parts = response["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True and parts[1]["text"] == "Echo: hi" and "thoughtSignature" in parts[1]
    usage = response["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    assert response["modelVersion"] == "gemini-3-flash" and body["traceId"]


def test_split_text() -> None:
    assert split_text("abcdefghij", 3) == ["abc", "defg", "hij"]
    assert split_text("ab", 5) == ["a", "b"]
    assert split_text("", 3) == [""]


def test_catalogue_limits() -> None:
    pro = catalogue.get_model("gemini-3.1-pro-low")
    assert pro is not None and (pro.input_tokens, pro.output_tokens) == (1_048_576, 65_536)
    assert catalogue.get_model("models/gemini-3.1-pro-low") is None
    entry = catalogue.model_entry(pro, 1.0, "2030-01-01T00:00:00Z")
    assert entry["maxTokens"] == 1_048_576 and entry["quotaInfo"]["remainingFraction"] == 1.0
    assert {"gemini-3.1-flash-image", "claude-sonnet-4-6", "claude-opus-4-6-thinking", "gemini-3.1-pro-low"} <= set(catalogue.model_ids())
