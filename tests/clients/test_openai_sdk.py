"""The real openai SDK against a ``twist``-started gateway and emulator.

The emulator answers ``Echo: <last user text>``; ``call function NAME`` makes
it call a declared tool; a turn of tool results is answered ``Results: …``.
"""

from __future__ import annotations

import json

import openai
import pytest

from gateway.emulator.content import PIXEL_PNG
from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}


@pytest.fixture
def client(gw: ClientStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="test-key", max_retries=0, timeout=20)


def test_chat(client: openai.OpenAI, gw: ClientStack) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello from openai"}])
    choice = completion.choices[0]
    assert choice.message.content == "Echo: Hello from openai" and choice.finish_reason == "stop"
    assert completion.model == "gpt-4o" and completion.usage and completion.usage.prompt_tokens > 0
    [call] = gw.requests("generateContent")
    assert call["body"]["model"] == "gemini-3.7-flash-high"  # alias table: gpt-* -> the best flash served


def test_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gemini-3-flash", messages=[{"role": "user", "content": "Hi stream 4 events"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)  # ends on data: [DONE]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: Hi stream 4 events"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.total_tokens > 0


def test_tools_round_trip_keeps_gemini3_signature(client: openai.OpenAI, gw: ClientStack) -> None:
    messages: list = [{"role": "user", "content": "call function get_weather"}]
    first = client.chat.completions.create(model="gemini-3-flash", messages=messages, tools=[WEATHER], tool_choice="auto")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    signature = call.model_dump()["extra_content"]["google"]["thought_signature"]
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    second = client.chat.completions.create(model="gemini-3-flash", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == 'Results: get_weather={"output":"sunny"}'
    sent = gw.requests("generateContent")[-1]["body"]["request"]
    call_part = next(p for p in sent["contents"][1]["parts"] if "functionCall" in p)
    assert call_part["thoughtSignature"] == signature


def test_streamed_tool_calls(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gemini-3-flash", tools=[WEATHER], stream=True,
                                            messages=[{"role": "user", "content": "call function get_weather"}])
    calls = [tc for chunk in stream for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices]
    assert len(calls) == 1 and calls[0].index == 0 and calls[0].function.name == "get_weather"


def test_json_mode(client: openai.OpenAI, gw: ClientStack) -> None:
    client.chat.completions.create(model="gemini-3-flash", messages=[{"role": "user", "content": "json"}],
                                   response_format={"type": "json_object"})
    config = gw.requests("generateContent")[-1]["body"]["request"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    client.chat.completions.create(
        model="gemini-3-flash", messages=[{"role": "user", "content": "json"}],
        response_format={"type": "json_schema", "json_schema": {"name": "w", "strict": True, "schema": WEATHER["function"]["parameters"]}})
    config = gw.requests("generateContent")[-1]["body"]["request"]["generationConfig"]
    assert config["responseSchema"] == {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_image_input(client: openai.OpenAI, gw: ClientStack) -> None:
    completion = client.chat.completions.create(model="gemini-3-flash", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_PNG}"}}]}])
    assert completion.choices[0].message.content == "Echo: Describe"
    parts = gw.requests("generateContent")[-1]["body"]["request"]["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PIXEL_PNG}}


def test_reasoning(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gemini-3-flash", reasoning_effort="low",
                                                messages=[{"role": "user", "content": "think"}])
    assert completion.choices[0].message.model_dump()["reasoning_content"].startswith("Thinking about")
    assert completion.usage.completion_tokens_details.reasoning_tokens > 0


def test_models_list(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gemini-3-flash" in ids and "claude-sonnet-4-6" in ids
    assert client.models.retrieve("gemini-3-flash").id == "gemini-3-flash"


def test_errors(client: openai.OpenAI, gw: ClientStack) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gemini-3-flash", messages=[])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    gw.add_fault(method="generateContent", kind="error", status=429, times=-1, retry_delay=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gemini-3-flash", messages=[{"role": "user", "content": "x"}])
