"""What the emulator learned for the compat doors: Gemini 3 call signatures, tool-result echoes."""

from __future__ import annotations

import pytest

from gateway.emulator import catalogue
from gateway.emulator.content import generate_body, plan_answer, validate_request
from gateway.protocol.errors import GatewayError

G3 = catalogue.get_model("gemini-3-flash")
FLASH = catalogue.get_model("gpt-oss-120b-medium")  # not Gemini 3: no signatures
AGENT = catalogue.get_model("gemini-pro-agent")
TOOLS = [{"functionDeclarations": [{"name": "f"}]}]


def user(text: str) -> dict:
    return {"role": "user", "parts": [{"text": text}]}


def test_gemini3_signs_function_calls() -> None:
    req = validate_request({"contents": [user("call function f")], "tools": TOOLS}, G3)
    answer = plan_answer(req, G3, "req-1", 3)
    parts = generate_body(answer, G3, 5, "req-1")["response"]["candidates"][0]["content"]["parts"]
    call = next(p for p in parts if "functionCall" in p)
    assert call["thoughtSignature"]
    flash = plan_answer(validate_request({"contents": [user("call function f")], "tools": TOOLS}, FLASH), FLASH, "req-1", 3)
    assert flash.call_signature is None


def test_gemini3_refuses_current_turn_calls_without_signature() -> None:
    call = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}
    answer = {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": 1}}}]}
    with pytest.raises(GatewayError) as caught:
        validate_request({"contents": [user("go"), call, answer], "tools": TOOLS}, G3)
    assert caught.value.code == 400 and "thought_signature" in caught.value.message
    validate_request({"contents": [user("go"), call, answer], "tools": TOOLS}, FLASH)  # outside the Gemini 3 family: not checked
    signed = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"}]}
    validate_request({"contents": [user("go"), signed, answer], "tools": TOOLS}, G3)
    # earlier turns are not checked
    validate_request({"contents": [user("go"), call, answer, user("new question")], "tools": TOOLS}, G3)


def test_tool_results_are_echoed() -> None:
    call = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}
    answer = {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "42"}}}]}
    req = validate_request({"contents": [user("go"), call, answer], "tools": TOOLS}, FLASH)
    assert plan_answer(req, FLASH, "r", 1).text == 'Results: f={"output":"42"}'


def test_cloud_code_claude_ids_exist() -> None:
    assert catalogue.get_model("claude-sonnet-4-6") and catalogue.get_model("claude-opus-4-6-thinking")


def test_gemini3_family_comes_from_the_catalogue_not_the_id() -> None:
    """``gemini-pro-agent`` does not start with gemini-3 but is Gemini 3: history calls need signatures."""
    call = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}
    answer = {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": 1}}}]}
    assert AGENT is not None and AGENT.gemini3
    with pytest.raises(GatewayError) as caught:
        validate_request({"contents": [user("go"), call, answer], "tools": TOOLS}, AGENT)
    assert "thought_signature" in caught.value.message
