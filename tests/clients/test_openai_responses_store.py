"""The real openai SDK's ``responses.retrieve`` and ``responses.delete`` against a ``twist``-started gateway."""

from __future__ import annotations

import openai
import pytest

from tests.clients.stack import ClientStack

pytestmark = pytest.mark.clients


@pytest.fixture
def client(gw: ClientStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="test-key", max_retries=0, timeout=20)


def test_retrieve_then_delete(client: openai.OpenAI, gw: ClientStack) -> None:
    made = client.responses.create(model="gemini-3-flash", input="Keep this")
    got = client.responses.retrieve(made.id)
    assert got.id == made.id and got.status == "completed" and got.output_text == "Echo: Keep this"
    with client.responses.stream(model="gemini-3-flash", input="Hi stream 3 events") as stream:
        streamed = stream.get_final_response()
    assert client.responses.retrieve(streamed.id).output_text == "Echo: Hi stream 3 events"
    assert client.responses.delete(made.id) is None  # the SDK returns nothing on success
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(made.id)
    assert made.id in str(caught.value)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(made.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gemini-3-flash", input="x", previous_response_id=made.id)
    assert len(gw.requests("generateContent")) == 1  # retrieve and delete never went upstream
