"""The anthropic SDK (2.x) with what current agents use: web search, adaptive thinking, structured output.

Against a ``twist``-started gateway and emulator: the ``web_search`` server
tool comes back as ``server_tool_use`` + ``web_search_tool_result`` + cited
text (whole and through the SDK's stream accumulator), adaptive thinking with
``display: "omitted"`` gives empty thinking with a real signature that works
on the next turn, and ``output_config.format`` gives schema-valid JSON.
"""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients

WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
QUESTION = [{"role": "user", "content": "Search the web: what is new in Twisted?"}]


@pytest.fixture
def client(gw: ClientStack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="test-key", max_retries=0, timeout=30)


def check_search(message: anthropic.types.Message) -> None:
    kinds = [b.type for b in message.content]
    assert kinds == ["server_tool_use", "web_search_tool_result", "text"], kinds
    use, result, text = message.content
    assert use.name == "web_search" and "Twisted" in use.input["query"]
    assert result.tool_use_id == use.id and [r.url for r in result.content] and all(r.title for r in result.content)
    assert text.citations and {c.url for c in text.citations} <= {r.url for r in result.content}
    assert message.usage.server_tool_use.web_search_requests == 1


def test_web_search(client: anthropic.Anthropic, gw: ClientStack) -> None:
    check_search(client.messages.create(model="claude-sonnet-4-6", max_tokens=2048, tools=[WEB_SEARCH], messages=QUESTION))
    assert gw.requests("generateContent")[-1]["body"]["request"]["tools"] == [{"googleSearch": {}}]
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=2048, tools=[WEB_SEARCH], messages=QUESTION) as stream:
        check_search(stream.get_final_message())


def test_adaptive_thinking_omitted(client: anthropic.Anthropic, gw: ClientStack) -> None:
    first = client.messages.create(model="claude-opus-4-8", max_tokens=32000, thinking={"type": "adaptive", "display": "omitted"},
                                   output_config={"effort": "high"}, messages=[{"role": "user", "content": "ponder"}])
    thinking = first.content[0]
    assert thinking.type == "thinking" and thinking.thinking == "" and thinking.signature
    with client.messages.stream(model="claude-opus-4-8", max_tokens=32000, thinking={"type": "adaptive", "display": "omitted"},
                                messages=[{"role": "user", "content": "ponder"}]) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].type == "thinking" and streamed.content[0].signature and not streamed.content[0].thinking
    second = client.messages.create(model="claude-opus-4-8", max_tokens=32000, thinking={"type": "adaptive", "display": "omitted"},
                                    messages=[{"role": "user", "content": "ponder"}, {"role": "assistant", "content": first.content},
                                              {"role": "user", "content": "go on"}])
    assert second.content[-1].text == "Echo: go on"
    sent = gw.requests("generateContent")[-1]["body"]["request"]["contents"][1]["parts"][0]
    assert sent["thought"] is True and sent["text"] and sent["thoughtSignature"] == thinking.signature


def test_structured_output(client: anthropic.Anthropic) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["city", "days"],
              "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}}}
    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=1024,
                                     output_config={"format": {"type": "json_schema", "schema": schema}},
                                     messages=[{"role": "user", "content": "Plan 3 days in Lisbon"}])
    assert json.loads(message.content[0].text) == {"city": "Lisbon", "days": 3}
