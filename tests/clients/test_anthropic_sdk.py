"""The real anthropic SDK against a ``twist``-started gateway and emulator (what Claude Code relies on)."""

from __future__ import annotations

import anthropic
import pytest

from tests.clients.stack import ClientStack

pytestmark = [pytest.mark.clients, pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")]

TOOL = {"name": "get_weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def client(gw: ClientStack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="test-key", max_retries=0, timeout=20)


def test_messages(client: anthropic.Anthropic, gw: ClientStack) -> None:
    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=1024, system="Be brief.",
                                     messages=[{"role": "user", "content": "Hello from anthropic"}])
    assert message.content[0].type == "text" and message.content[0].text == "Echo: Hello from anthropic"
    assert message.stop_reason == "end_turn" and message.model == "claude-sonnet-4-6"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert gw.requests("generateContent")[-1]["body"]["model"] == "claude-sonnet-4-6"


def test_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="gemini-3-flash", max_tokens=512,
                                messages=[{"role": "user", "content": "Hi stream 4 events"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: Hi stream 4 events"
    assert final.stop_reason == "end_turn" and final.content[0].text == text and final.usage.output_tokens > 0


def test_tool_use_round_trip(client: anthropic.Anthropic, gw: ClientStack) -> None:
    messages: list = [{"role": "user", "content": "call function get_weather"}]
    first = client.messages.create(model="gemini-3-flash", max_tokens=512, tools=[TOOL], messages=messages)
    assert first.stop_reason == "tool_use"
    tool_use = next(b for b in first.content if b.type == "tool_use")
    assert tool_use.name == "get_weather" and tool_use.input == {"city": "Paris"}
    messages.append({"role": "assistant", "content": first.content})
    messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny"}]})
    second = client.messages.create(model="gemini-3-flash", max_tokens=512, tools=[TOOL], messages=messages)
    assert second.content[0].text == 'Results: get_weather={"output":"sunny"}'
    # streamed, through the SDK's accumulator
    with client.messages.stream(model="gemini-3-flash", max_tokens=512, tools=[TOOL],
                                messages=[{"role": "user", "content": "call function get_weather"}]) as stream:
        final = stream.get_final_message()
    streamed = next(b for b in final.content if b.type == "tool_use")
    assert streamed.input == {"city": "Paris"} and final.stop_reason == "tool_use"


def test_thinking(client: anthropic.Anthropic, gw: ClientStack) -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=4096, thinking=thinking,
                                     messages=[{"role": "user", "content": "ponder this"}])
    block = message.content[0]
    assert block.type == "thinking" and block.thinking.startswith("Thinking about") and block.signature
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=4096, thinking=thinking,
                                messages=[{"role": "user", "content": "ponder this"}]) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].signature
    # the signed thinking block goes back to the same family unchanged
    client.messages.create(model="claude-sonnet-4-6", max_tokens=4096, thinking=thinking, messages=[
        {"role": "user", "content": "ponder this"}, {"role": "assistant", "content": message.content},
        {"role": "user", "content": "again"}])
    parts = gw.requests("generateContent")[-1]["body"]["request"]["contents"][1]["parts"]
    assert parts[0] == {"text": block.thinking, "thought": True, "thoughtSignature": block.signature}


def test_count_tokens(client: anthropic.Anthropic) -> None:
    messages = [{"role": "user", "content": "Count these words, please"}]
    plain = client.messages.count_tokens(model="claude-sonnet-4-6", messages=messages)
    with_tools = client.messages.count_tokens(model="claude-sonnet-4-6", messages=messages, tools=[TOOL], system="A system prompt.")
    assert 0 < plain.input_tokens < with_tools.input_tokens


def test_models_list_for_claude_code(client: anthropic.Anthropic) -> None:
    models = list(client.models.list())
    ids = [m.id for m in models]
    assert "claude-sonnet-4-6" in ids and all(m.type == "model" and m.display_name for m in models)


def test_error_classes(client: anthropic.Anthropic, gw: ClientStack) -> None:
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="gemini-3-flash", max_tokens=10, messages=[{"role": "system", "content": "x"}])
    gw.add_fault(method="generateContent", kind="error", status=429, times=-1, retry_delay=0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="gemini-3-flash", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    gw.clear_faults()
    # A 403 from upstream must not reach Claude Code as 403 (it would show its login screen). Injected as an
    # in-stream error before the first event, so the shared session's accounts are not disabled by the pool.
    gw.add_fault(method="streamGenerateContent", kind="stream_error", after_events=0, status=403, times=-1)
    with pytest.raises(anthropic.InternalServerError) as refused:
        with client.messages.stream(model="gemini-3-flash", max_tokens=10, messages=[{"role": "user", "content": "x"}]) as stream:
            stream.get_final_message()
    assert refused.value.status_code == 503 and refused.value.body["error"]["type"] == "overloaded_error"
    gw.clear_faults()
    gw.add_fault(method="streamGenerateContent", kind="error", status=429, times=-1, retry_delay=0)
    with pytest.raises(anthropic.RateLimitError):
        with client.messages.stream(model="gemini-3-flash", max_tokens=10, messages=[{"role": "user", "content": "x"}]) as stream:
            stream.get_final_message()
