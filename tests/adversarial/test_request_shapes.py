"""Property: whatever a client sends, the pure request translators answer or raise ``GatewayError`` only.

The same strategies as the HTTP fuzzer, many more examples, no network: a
translator that raised anything else would be a 500 for the client's input.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.compat import anthropic_request, openai_request
from gateway.protocol import envelope, framing
from gateway.protocol.enums import enum_names
from gateway.protocol.errors import GatewayError
from tests.adversarial.test_fuzz import ANTHROPIC, GEMINI, OPENAI

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FIXED = "FUZZ_EXAMPLES" not in os.environ


def _answers(call: Any) -> None:
    try:
        result = call()
    except GatewayError:
        return
    framing.dumps(result).decode("utf-8")


@settings(max_examples=EXAMPLES, derandomize=FIXED, database=None, deadline=None)
@given(body=OPENAI)
def test_openai_bodies(body: Any) -> None:
    _answers(lambda: openai_request.to_gemini(body, "gemini-3-flash")[0])
    _answers(lambda: openai_request.remote_image_urls(body))


@settings(max_examples=EXAMPLES, derandomize=FIXED, database=None, deadline=None)
@given(body=ANTHROPIC, counting=st.booleans())
def test_anthropic_bodies(body: Any, counting: bool) -> None:
    _answers(lambda: anthropic_request.to_gemini(body, "claude-sonnet-4-6", counting=counting)[0])
    _answers(lambda: anthropic_request.remote_urls(body))


@settings(max_examples=EXAMPLES, derandomize=FIXED, database=None, deadline=None)
@given(body=GEMINI)
def test_gemini_bodies(body: Any) -> None:
    def wrapped() -> Any:
        valid = enum_names(envelope.validate_generate_request(body))
        return envelope.wrap(valid, model="gemini-3-flash", project="p", request_id="r", session_id="s", user_agent="antigravity")

    _answers(wrapped)
