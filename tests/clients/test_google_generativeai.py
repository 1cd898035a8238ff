"""The real google-generativeai SDK (0.8.x, REST transport) against a ``twist``-started gateway.

This SDK keeps the ``http://`` scheme of ``api_endpoint``, calls ``/v1beta/…``
with ``$alt=json;enum-encoding=int`` (enums in bodies become integers),
streams as one JSON array (no ``alt=sse``) and sends countTokens as
``{"generateContentRequest": …}``. ``genai.configure`` is global state, so
every test configures it afresh through the ``model`` fixture.
"""

from __future__ import annotations

import warnings
from typing import Iterator

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "support has ended" FutureWarning on import
    import google.generativeai as genai
from google.api_core import exceptions as core_exceptions
from google.generativeai.types import HarmBlockThreshold, HarmCategory

from tests.clients.stack import ACCOUNTS, ClientStack

pytestmark = pytest.mark.clients

MODEL = "gemini-2.5-flash"  # what SDK examples still ask for; not served any more
#: What it resolves to in today's catalogue (the alias table's best flash: docs/models.md).
UPSTREAM = "gemini-3.7-flash-high"


@pytest.fixture
def model(gw: ClientStack) -> Iterator[genai.GenerativeModel]:
    genai.configure(api_key="test-key", transport="rest", client_options={"api_endpoint": gw.url})
    yield genai.GenerativeModel(MODEL)


def test_generate_content(model: genai.GenerativeModel, gw: ClientStack) -> None:
    response = model.generate_content("Hello from google-generativeai")
    assert response.text == "Echo: Hello from google-generativeai"
    calls = gw.requests("generateContent")
    assert len(calls) == 1 and calls[0]["status"] == 200 and calls[0]["body"]["model"] == UPSTREAM


def test_generate_content_stream(model: genai.GenerativeModel, gw: ClientStack) -> None:
    chunks = list(model.generate_content("Hello stream 4 events", stream=True))
    assert len(chunks) >= 2
    assert "".join(chunk.text for chunk in chunks) == "Echo: Hello stream 4 events"
    # The SDK asked for a JSON array; the gateway still reads upstream as SSE.
    calls = gw.requests("streamGenerateContent")
    assert len(calls) == 1 and calls[0]["query"].get("alt") == ["sse"]


def test_count_tokens(model: genai.GenerativeModel) -> None:
    # model.count_tokens("…") sends {"generateContentRequest": {"contents": [{"parts": […]}]}}
    # (no role on the content), exactly as the README's example does.
    counted = model.count_tokens("Count these few words, please")
    assert counted.total_tokens > 0
    usage = model.generate_content("Count these few words, please").usage_metadata
    assert counted.total_tokens == usage.prompt_token_count


def test_count_tokens_with_roles(model: genai.GenerativeModel) -> None:
    counted = model.count_tokens([{"role": "user", "parts": ["Count these few words, please"]}])
    assert counted.total_tokens > 0
    usage = model.generate_content("Count these few words, please").usage_metadata
    assert counted.total_tokens == usage.prompt_token_count


def test_safety_settings_as_enums(model: genai.GenerativeModel, gw: ClientStack) -> None:
    settings = {
        HarmCategory.HARM_CATEGORY_HARASSMENT: HarmBlockThreshold.BLOCK_ONLY_HIGH,
        HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT: HarmBlockThreshold.BLOCK_NONE,
    }
    response = model.generate_content("Hello with safety settings", safety_settings=settings)
    assert response.text == "Echo: Hello with safety settings"
    (call,) = gw.requests("generateContent")
    forwarded = call["body"]["request"]["safetySettings"]
    # enum-encoding=int: the SDK sends Generative Language numbers; upstream numbers HarmCategory
    # differently, so they must arrive as names, each meaning what the client chose.
    assert forwarded == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"},
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_NONE"},
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_429_on_every_account_is_resource_exhausted(model: genai.GenerativeModel, gw: ClientStack, stream: bool) -> None:
    method = "streamGenerateContent" if stream else "generateContent"
    gw.add_fault(method=method, kind="error", status=429, times=-1)
    # ResourceExhausted is a TooManyRequests; from_http_response maps 429 to the latter.
    with pytest.raises(core_exceptions.TooManyRequests) as caught:
        response = model.generate_content("Hello", stream=stream)
        if stream:
            list(response)
    assert caught.value.code == 429
    tried = [r["email"] for r in gw.requests(method)]
    # A short RATE_LIMIT_EXCEEDED (the emulator's default 1 s) is retried once on the
    # same account, then the next account gets its turn: every account, twice each.
    assert sorted(tried) == sorted(a["email"] for a in ACCOUNTS for _ in range(2))
