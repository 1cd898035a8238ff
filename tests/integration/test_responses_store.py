"""GET and DELETE /v1/responses/{id} over loopback: the bounded store's responses, per client key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor

from gateway.team import operations
from gateway.team.sqlite_store import SQLiteStore
from tests.integration.harness import accounts, body_json, start_stack
from tests.integration.test_responses import RESPONSES, events_of


def openai_error(document: Any) -> dict[str, Any]:
    error = document["error"]
    assert set(error) == {"message", "type", "param", "code"}, document
    return error


@pytest_twisted.ensureDeferred
async def test_retrieve_and_delete_stored_responses(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        plain = await body_json(await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "Hello there"}))
        response = await stack.get(f"{RESPONSES}/{plain['id']}")
        assert response.code == 200 and await body_json(response) == plain  # as it was answered
        streamed = events_of(await treq.content(await stack.post(
            RESPONSES, {"model": "gemini-3-flash", "input": "Hi stream 3 events", "stream": True})))
        final = streamed[-1]["response"]
        assert streamed[-1]["type"] == "response.completed"
        response = await stack.get(f"/responses/{final['id']}")  # the base-URL-less form too
        got = await body_json(response)
        assert response.code == 200 and got == final and got["status"] == "completed"
        assert got["output"][-1]["content"][0]["text"] == "Echo: Hi stream 3 events"
        response = await stack.post("/responses", {"model": "gemini-3-flash", "input": "no /v1"})
        assert response.code == 200 and (await body_json(response))["output"][-1]["content"][0]["text"] == "Echo: no /v1"
        # store: false keeps nothing to retrieve
        unkept = await body_json(await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "x", "store": False}))
        response = await stack.get(f"{RESPONSES}/{unkept['id']}")
        error = openai_error(await body_json(response))
        assert response.code == 404 and unkept["id"] in error["message"] and "store: false" in error["message"]
        # stream=true on retrieve: a 400 that says what to do
        response = await stack.get(f"{RESPONSES}/{plain['id']}?stream=true")
        assert response.code == 400 and "without stream" in openai_error(await body_json(response))["message"]
        # DELETE: OpenAI's answer, then it is gone for retrieve, delete and previous_response_id alike
        response = await stack.client.delete(stack.url + f"{RESPONSES}/{plain['id']}")
        assert response.code == 200 and await body_json(response) == {"id": plain["id"], "object": "response", "deleted": True}
        response = await stack.get(f"{RESPONSES}/{plain['id']}")
        error = openai_error(await body_json(response))
        assert response.code == 404 and error["type"] == "invalid_request_error" and f"'{plain['id']}' not found" in error["message"]
        response = await stack.client.delete(stack.url + f"{RESPONSES}/{plain['id']}")
        assert response.code == 404 and openai_error(await body_json(response))
        response = await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "x", "previous_response_id": plain["id"]})
        assert response.code == 400 and plain["id"] in openai_error(await body_json(response))["message"]
        # the streamed one is still there; a POST on an id is a 405 naming the methods that work
        assert (await stack.get(f"{RESPONSES}/{final['id']}")).code == 200
        response = await stack.post(f"{RESPONSES}/{final['id']}", {})
        error = openai_error(await body_json(response))
        assert response.code == 405 and "GET" in error["message"] and "DELETE" in error["message"]
        assert stack.emulator.state.stats.requests.get("generateContent", 0) == 3  # retrieve/delete never go upstream


@pytest_twisted.ensureDeferred
async def test_a_stored_response_belongs_to_the_key_that_made_it(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "team.sqlite3"))
    alice, _ = operations.create(store, "alice", reactor.seconds())
    bob, _ = operations.create(store, "bob", reactor.seconds())
    as_alice = {b"authorization": [b"Bearer " + alice.encode()]}
    as_bob = {b"authorization": [b"Bearer " + bob.encode()]}
    async with start_stack(tmp_path, accounts(1), auth={"strategy": "keys", "mode": "all_except_health"}) as stack:
        made = await body_json(await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "mine"}, headers=dict(as_alice)))
        path = f"{RESPONSES}/{made['id']}"
        assert (await stack.get(path, headers=as_bob)).code == 404  # bob cannot read it ...
        assert (await stack.client.delete(stack.url + path, headers=as_bob)).code == 404  # ... nor delete it
        response = await stack.post(RESPONSES, {"model": "gemini-3-flash", "input": "x", "previous_response_id": made["id"]},
                                    headers=dict(as_bob))
        assert response.code == 400  # ... nor continue it
        response = await stack.get(path, headers=as_alice)
        assert response.code == 200 and (await body_json(response))["id"] == made["id"]
        response = await stack.get(path)
        assert response.code == 401 and openai_error(await body_json(response))["type"] == "authentication_error"
