"""The real openai SDK's Responses and Images APIs against a ``twist``-started gateway and emulator.

The emulator answers ``Echo: <last user text>``; ``call function NAME`` makes
it call a declared tool; a turn of tool results is answered ``Results: …``;
its image models draw a small one-colour PNG.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib

import openai
import pytest

from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}


@pytest.fixture
def client(gw: ClientStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="test-key", max_retries=0, timeout=20)


def test_create_text(client: openai.OpenAI, gw: ClientStack) -> None:
    response = client.responses.create(model="gemini-3-flash", instructions="Be brief.", input="Hello responses",
                                       metadata={"run": "1"})
    assert response.output_text == "Echo: Hello responses"
    assert response.status == "completed" and response.metadata == {"run": "1"} and response.model == "gemini-3-flash"
    assert response.usage is not None and response.usage.input_tokens > 0
    [call] = gw.requests("generateContent")
    assert call["body"]["request"]["systemInstruction"]["parts"] == [{"text": "Be brief."}]


def test_stream_events(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gemini-3-flash", input="Hi stream 3 events", stream=True,
                                          reasoning={"effort": "low", "summary": "auto"}))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Echo: Hi stream 3 events"
    assert any(e.type == "response.reasoning_summary_text.delta" for e in events)
    assert events[-1].response.output_text == "Echo: Hi stream 3 events"


def test_stream_helper_and_tools_round_trip_by_previous_response_id(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gemini-3-flash", input="call function get_weather", tools=[WEATHER]) as stream:
        first = stream.get_final_response()
    [call] = [item for item in first.output if item.type == "function_call"]
    args = json.loads(call.arguments)  # the emulator's placeholder, or schema-valid once it answers like a model
    assert call.name == "get_weather" and isinstance(args.get("city"), str)
    second = client.responses.create(
        model="gemini-3-flash", previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text.startswith("Results: get_weather=") and "sunny" in second.output_text
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gemini-3-flash", input="x", previous_response_id="resp_unknown")
    assert "resp_unknown" in str(caught.value)


def test_stateless_tools_round_trip_with_encrypted_reasoning(client: openai.OpenAI, gw: ClientStack) -> None:
    first = client.responses.create(model="gemini-3-flash", input="call function get_weather", tools=[WEATHER],
                                    store=False, include=["reasoning.encrypted_content"])
    history: list = [{"role": "user", "content": "call function get_weather"}]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    call = next(item for item in first.output if item.type == "function_call")
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "windy"})
    second = client.responses.create(model="gemini-3-flash", input=history, tools=[WEATHER], store=False)
    assert "windy" in second.output_text
    sent = gw.requests("generateContent")[-1]["body"]["request"]["contents"]
    signed = [p for p in sent[1]["parts"] if "functionCall" in p]
    assert signed[0]["thoughtSignature"] not in ("", "skip_thought_signature_validator")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4:start])[0]
    assert len(zlib.decompress(data[start + 4:start + 4 + length])) == height * (1 + 3 * width)
    return width, height


def test_images_generate_decodes(client: openai.OpenAI, gw: ClientStack) -> None:
    result = client.images.generate(model="gpt-image-1", prompt="a lighthouse at dusk", n=2, size="1536x1024")
    assert len(result.data) == 2
    for image in result.data:
        assert _png_size(base64.b64decode(image.b64_json)) == (64, 43)
    assert {c["body"]["request"]["generationConfig"]["imageConfig"]["aspectRatio"] for c in gw.requests("generateContent")} == {"3:2"}


def test_images_edit_multipart(client: openai.OpenAI, gw: ClientStack) -> None:
    from gateway.emulator.images import png

    result = client.images.edit(model="gemini-3.1-flash-image", image=("in.png", png(2, 2, (9, 9, 9)), "image/png"),
                                prompt="paint it green")
    assert _png_size(base64.b64decode(result.data[0].b64_json)) == (64, 64)
    parts = gw.requests("generateContent")[-1]["body"]["request"]["contents"][0]["parts"]
    assert parts[0] == {"text": "paint it green"} and parts[1]["inlineData"]["mimeType"] == "image/png"


def test_images_generate_streamed(client: openai.OpenAI) -> None:
    events = list(client.images.generate(model="gemini-3.1-flash-image", prompt="a red kite", stream=True))
    assert [e.type for e in events] == ["image_generation.completed"]
    assert _png_size(base64.b64decode(events[0].b64_json)) == (64, 64)
