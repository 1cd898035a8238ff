"""Property: whatever JSON Cloud Code answers, the translators never raise and always emit valid UTF-8.

The HTTP fuzzer varies what clients send; this varies what upstream sends
(odd types, missing fields, lone surrogates, function calls with odd args),
straight into the pure translators of every door, streamed and not.
A ``GatewayError`` is an answer (the door shapes it); any other exception
would be a 500.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.compat import anthropic_request, anthropic_response, openai_request, openai_response
from gateway.compat.anthropic_stream import AnthropicStream
from gateway.compat.openai_stream import OpenAIStream
from gateway.compat.signatures import SignatureMemory
from gateway.protocol import envelope, framing
from gateway.protocol.errors import GatewayError

TEXT = st.text(max_size=10) | st.sampled_from(["\ud800", "a\udfffb"])
ANY = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
                   lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=10)
PART = st.one_of(
    st.fixed_dictionaries({"text": TEXT | ANY}, optional={"thought": st.booleans() | ANY, "thoughtSignature": TEXT | ANY}),
    st.fixed_dictionaries({"functionCall": st.fixed_dictionaries({"name": TEXT | ANY, "args": ANY}, optional={"id": TEXT | ANY})}),
    st.fixed_dictionaries({"inlineData": st.fixed_dictionaries({"mimeType": TEXT | ANY, "data": TEXT | ANY})}),
    ANY,
)
CANDIDATE = st.fixed_dictionaries(
    {}, optional={"content": st.fixed_dictionaries({}, optional={"role": TEXT | ANY, "parts": st.lists(PART, max_size=4) | ANY}) | ANY,
                  "finishReason": st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "MALFORMED_FUNCTION_CALL", "OTHER"]) | ANY,
                  "index": st.integers(-1, 3) | ANY})
RESPONSE = st.fixed_dictionaries(
    {}, optional={"candidates": st.lists(CANDIDATE, max_size=3) | ANY,
                  "usageMetadata": st.dictionaries(st.sampled_from(["promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount",
                                                                    "cachedContentTokenCount", "totalTokenCount"]), ANY) | ANY,
                  "promptFeedback": ANY, "responseId": TEXT | ANY, "modelVersion": TEXT | ANY}) | ANY

OPENAI_BODY = {"model": "gemini-3-flash", "messages": [{"role": "user", "content": "hi"}],
               "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}
ANTHROPIC_BODY = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
                  "tools": [{"name": "f", "input_schema": {"type": "object"}}]}


def _checked(data: Any) -> None:
    raw = data if isinstance(data, bytes) else framing.dumps(data)
    raw.decode("utf-8")  # strict


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), derandomize="FUZZ_EXAMPLES" not in os.environ,
          database=None, deadline=None)
@given(documents=st.lists(RESPONSE, min_size=1, max_size=4))
def test_translators_survive_any_upstream_answer(documents: list[Any]) -> None:
    memory = SignatureMemory()
    _, octx = openai_request.to_gemini(OPENAI_BODY, "gemini-3-flash", memory=memory)
    _, actx = anthropic_request.to_gemini(ANTHROPIC_BODY, "claude-sonnet-4-6", memory=memory)
    for document in documents:
        for translate in (lambda d: openai_response.completion(d, octx, memory, 0.0),
                          lambda d: anthropic_response.message(d, actx, memory, 0.0),
                          lambda d: envelope.unwrap({"response": d})):
            try:
                _checked(translate(document))
            except GatewayError:
                pass
    for stream in (OpenAIStream(octx, memory, 0.0), AnthropicStream(actx, memory, 0.0)):
        try:
            for document in documents:
                _checked(stream.response(document))
            _checked(stream.end())
        except GatewayError:
            pass
    json.dumps(documents)  # the strategy itself stays JSON
