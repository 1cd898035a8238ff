"""The real google-genai SDK (3.x) against a ``twist``-started gateway.

Each call is made twice: with the SDK's default API version (``/v1/…``) and
with ``api_version="v1beta"``, since the gateway serves both. The emulator
answers ``Echo: <last user text>``, streamed over ``stream_events`` events.
"""

from __future__ import annotations

from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from tests.clients.stack import ACCOUNTS, ClientStack

pytestmark = pytest.mark.clients

MODEL = "gemini-2.5-flash"  # what SDK examples still ask for; not served any more
#: What it resolves to in today's catalogue (the alias table's best flash: docs/models.md).
UPSTREAM = "gemini-3.7-flash-high"
VERSIONS = [pytest.param(None, id="v1-default"), pytest.param("v1beta", id="v1beta")]


def make_client(gw: ClientStack, api_version: str | None) -> genai.Client:
    options: dict[str, Any] = {"base_url": gw.url}
    if api_version is not None:
        options["api_version"] = api_version
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(**options))


@pytest.fixture(params=VERSIONS)
def client(request: pytest.FixtureRequest, gw: ClientStack) -> genai.Client:
    return make_client(gw, request.param)


def test_generate_content(client: genai.Client, gw: ClientStack) -> None:
    response = client.models.generate_content(model=MODEL, contents="Hello from google-genai")
    assert response.text == "Echo: Hello from google-genai"
    assert response.usage_metadata is not None and response.usage_metadata.prompt_token_count
    calls = gw.requests("generateContent")
    assert len(calls) == 1 and calls[0]["status"] == 200
    assert calls[0]["body"]["model"] == UPSTREAM


def test_generate_content_stream(client: genai.Client, gw: ClientStack) -> None:
    # The iterator must end cleanly: a `data: [DONE]` event would make the SDK raise here.
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Hello stream 4 events"))
    assert len(chunks) >= 2
    assert "".join(chunk.text or "" for chunk in chunks) == "Echo: Hello stream 4 events"
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    calls = gw.requests("streamGenerateContent")
    assert len(calls) == 1 and calls[0]["query"].get("alt") == ["sse"]


def test_count_tokens_matches_generate_usage(client: genai.Client) -> None:
    contents = "Count these few words, please"
    counted = client.models.count_tokens(model=MODEL, contents=contents)
    assert counted.total_tokens and counted.total_tokens > 0
    generated = client.models.generate_content(model=MODEL, contents=contents)
    assert generated.usage_metadata is not None
    assert counted.total_tokens == generated.usage_metadata.prompt_token_count


def test_models_list(client: genai.Client) -> None:
    names = [m.name for m in client.models.list()]
    assert f"models/{UPSTREAM}" in names and f"models/{MODEL}" not in names  # the live catalogue
    assert len(names) == len(set(names))


def test_models_list_pages(client: genai.Client) -> None:
    everything = [m.name for m in client.models.list()]
    pager = client.models.list(config={"page_size": 2})
    pages = [[m.name for m in pager.page]]
    while True:
        try:
            pages.append([m.name for m in pager.next_page()])
        except IndexError:
            break
    assert len(pages) >= 3, pages
    assert all(1 <= len(page) <= 2 for page in pages), pages
    assert [name for page in pages for name in page] == everything
    # Iterating a fresh pager walks every page too.
    assert [m.name for m in client.models.list(config={"page_size": 2})] == everything


def test_models_get(client: genai.Client) -> None:
    model = client.models.get(model=MODEL)
    assert model.name == f"models/{MODEL}"
    assert model.input_token_limit and model.input_token_limit > 0
    assert model.output_token_limit and model.output_token_limit > 0
    assert model.supported_actions and "generateContent" in model.supported_actions
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="no-such-model-anywhere")
    assert caught.value.code == 404


@pytest.mark.parametrize("kind", ["stream_error", "cut"])
def test_error_after_stream_started_raises_from_iterator(client: genai.Client, gw: ClientStack, kind: str) -> None:
    gw.add_fault(method="streamGenerateContent", kind=kind, after_events=2, status=503)
    stream = client.models.generate_content_stream(model=MODEL, contents="Hello stream 5 events")
    received: list[str] = []
    with pytest.raises(errors.APIError) as caught:
        for chunk in stream:
            received.append(chunk.text or "")
    # The two events sent before the failure arrived first, then the iterator raised.
    joined = "".join(received)
    assert len(received) == 2 and joined and "Echo: Hello stream 5 events".startswith(joined)
    assert caught.value.code >= 500
    if kind == "stream_error":
        assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE"


def test_429_on_every_account_is_client_error(client: genai.Client, gw: ClientStack) -> None:
    gw.add_fault(method="generateContent", kind="error", status=429, times=-1, retry_delay=7)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="Hello")
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    details = caught.value.details["error"].get("details", [])
    # the earliest account comes back ~7 s after the 429s (a few ms have passed since)
    [retry] = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert 6.0 < float(retry["retryDelay"].rstrip("s")) <= 7.0
    tried = [r["email"] for r in gw.requests("generateContent")]
    assert sorted(tried) == sorted(a["email"] for a in ACCOUNTS)


def test_embed_content_is_unimplemented(client: genai.Client) -> None:
    with pytest.raises(errors.APIError) as caught:
        client.models.embed_content(model=MODEL, contents="embed me")
    assert caught.value.code == 501
    assert caught.value.status == "UNIMPLEMENTED"
