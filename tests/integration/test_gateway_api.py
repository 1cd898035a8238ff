"""The Gemini API as clients see it, over loopback, against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.integration.harness import accounts, body_json, start_stack
from tests.integration.rawhttp import blocking_exchange

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]}
SYSTEM = {**HELLO, "systemInstruction": {"parts": [{"text": "Be terse."}]}}


@pytest_twisted.ensureDeferred
async def test_generate_unwraps_and_sends_a_faithful_envelope(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        first = await stack.post("/v1beta/models/gemini-3-flash:generateContent", SYSTEM)
        body = await body_json(first)
        assert first.code == 200, body
        assert first.headers.getRawHeaders(b"content-type")[0].startswith(b"application/json")
        assert "response" not in body and "traceId" not in body
        assert body["candidates"][0]["finishReason"] == "STOP"
        assert body["usageMetadata"]["promptTokenCount"] > 0
        second = await stack.post("/v1beta/models/gemini-3-flash:generateContent", SYSTEM)
        assert second.code == 200
        await treq.content(second)
        sent = [r["body"] for r in stack.emulator.state.requests("generateContent")]
        assert len(sent) == 2
        envelope = sent[0]
        assert envelope["model"] == "gemini-3-flash"
        assert envelope["project"] == "project-0"
        assert envelope["requestType"] == "agent"
        assert envelope["userAgent"] == "antigravity"
        assert envelope["request"]["contents"] == SYSTEM["contents"]
        assert envelope["request"]["systemInstruction"] == SYSTEM["systemInstruction"]
        # a fresh requestId per call, a stable sessionId per conversation
        assert sent[0]["requestId"] != sent[1]["requestId"]
        assert sent[0]["request"]["sessionId"] == sent[1]["request"]["sessionId"]
        # the token and project learned on the way are stored
        [record] = stack.stored()
        assert record["access_token"] and record["expiry"] > 0
        assert record["project_id"] == "project-0"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/gemini-3-flash:generateContent",
        "/v1beta/models/models/gemini-3-flash:generateContent",
        "/v1beta/models/gemini-3-flash%3AgenerateContent",
    ],
)
@pytest_twisted.ensureDeferred
async def test_path_forms_reach_the_same_bare_model(tmp_path: Path, path: str) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        response = await stack.post(path, HELLO)
        assert response.code == 200, await treq.content(response)
        await treq.content(response)
        [sent] = stack.emulator.state.requests("generateContent")
        assert sent["body"]["model"] == "gemini-3-flash"


@pytest_twisted.ensureDeferred
async def test_model_mapping_applies_before_upstream(tmp_path: Path) -> None:
    mapping = {"gemini-pro": "gemini-3.1-pro-low", "gemini-exp-*": "gemini-3-flash"}
    async with start_stack(tmp_path, accounts(1), models={"mapping": tuple(mapping.items())}) as stack:
        for asked, sent_model in (("gemini-pro", "gemini-3.1-pro-low"), ("gemini-exp-1206", "gemini-3-flash")):
            response = await stack.post(f"/v1beta/models/{asked}:generateContent", HELLO)
            assert response.code == 200
            await treq.content(response)
            assert stack.emulator.state.requests("generateContent")[-1]["body"]["model"] == sent_model


@pytest_twisted.ensureDeferred
async def test_sse_stream_is_googles_framing_without_done(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        body = {"contents": [{"role": "user", "parts": [{"text": "stream 4 events"}]}]}
        response = await stack.post("/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse", body)
        raw = await treq.content(response)
        assert response.code == 200
        assert response.headers.getRawHeaders(b"content-type") == [b"text/event-stream"]
        assert b"[DONE]" not in raw
        assert raw.endswith(b"\r\n\r\n")
        events = [e for e in raw.split(b"\r\n\r\n") if e]
        assert len(events) == 4
        for event in events:
            assert event.startswith(b"data: ") and b"\n" not in event
            chunk = json.loads(event[len(b"data: "):])
            assert "response" not in chunk and "candidates" in chunk
        assert json.loads(events[-1][6:])["candidates"][0]["finishReason"] == "STOP"


@pytest_twisted.ensureDeferred
async def test_stream_without_alt_sse_is_one_json_array(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        body = {"contents": [{"role": "user", "parts": [{"text": "stream 3 events"}]}]}
        response = await stack.post("/v1beta/models/gemini-3-flash:streamGenerateContent?%24alt=json%3Benum-encoding%3Dint", body)
        raw = await treq.content(response)
        assert response.code == 200
        assert response.headers.getRawHeaders(b"content-type")[0].startswith(b"application/json")
        elements = json.loads(raw)
        assert isinstance(elements, list) and len(elements) == 3
        assert all("candidates" in e for e in elements)


@pytest_twisted.ensureDeferred
async def test_count_tokens_is_real_in_both_shapes_and_both_paths(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        generated = await body_json(await stack.post("/v1beta/models/gemini-3-flash:generateContent", HELLO))
        prompt_tokens = generated["usageMetadata"]["promptTokenCount"]
        a = await body_json(await stack.post("/v1beta/models/gemini-3-flash:countTokens", HELLO))
        b = await body_json(await stack.post(
            "/v1/models/gemini-3-flash/countTokens",
            {"generateContentRequest": {"model": "models/gemini-3-flash", **HELLO}},
        ))
        assert a["totalTokens"] == b["totalTokens"] == prompt_tokens > 0
        longer = await body_json(await stack.post(
            "/v1beta/models/gemini-3-flash:countTokens",
            {"contents": [{"role": "user", "parts": [{"text": "Hello there " * 50}]}]},
        ))
        assert longer["totalTokens"] > a["totalTokens"]
        sent = stack.emulator.state.requests("countTokens")[0]
        assert sent["body"]["request"]["model"] == "models/gemini-3-flash"
        assert "project" not in sent["body"]
        both = await stack.post("/v1beta/models/gemini-3-flash:countTokens", {**HELLO, "generateContentRequest": HELLO})
        assert both.code == 400
        assert (await body_json(both))["error"]["status"] == "INVALID_ARGUMENT"


@pytest_twisted.ensureDeferred
async def test_models_list_pages_and_get(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        everything = await body_json(await stack.get("/v1beta/models?pageSize=1000"))
        names = [m["name"] for m in everything["models"]]
        assert "models/gemini-3-flash" in names
        assert "nextPageToken" not in everything
        flash = next(m for m in everything["models"] if m["name"] == "models/gemini-3-flash")
        assert flash["inputTokenLimit"] == 1048576 and "generateContent" in flash["supportedGenerationMethods"]
        page = await body_json(await stack.get("/v1/models?pageSize=2"))
        assert len(page["models"]) == 2 and page["nextPageToken"]
        rest = await body_json(await stack.get(f"/v1/models?pageSize=1000&pageToken={page['nextPageToken']}"))
        assert [m["name"] for m in page["models"] + rest["models"]] == names
        one = await stack.get("/v1beta/models/gemini-3-flash")
        assert (await body_json(one))["name"] == "models/gemini-3-flash"
        missing = await stack.get("/v1beta/models/no-such-model")
        error = await body_json(missing)
        assert missing.code == 404 and error["error"]["status"] == "NOT_FOUND"
        bad = await stack.get("/v1beta/models?pageToken=garbage")
        assert bad.code == 400 and (await body_json(bad))["error"]["status"] == "INVALID_ARGUMENT"
        # fetched upstream once, then cached
        assert len(stack.emulator.state.requests("fetchAvailableModels")) == 1


@pytest.mark.parametrize(
    "method, path, body, code, status",
    [
        ("POST", "/v1beta/models/gemini-3-flash:embedContent", HELLO, 501, "UNIMPLEMENTED"),
        ("POST", "/v1/models/gemini-3-flash:batchEmbedContents", HELLO, 501, "UNIMPLEMENTED"),
        ("POST", "/v1beta/models/gemini-3-flash:frobnicate", HELLO, 404, "NOT_FOUND"),
        ("GET", "/nope", None, 404, "NOT_FOUND"),
        ("GET", "/v1beta/models/gemini-3-flash:generateContent", None, 405, "NOT_FOUND"),
        ("DELETE", "/v1beta/models", None, 405, "NOT_FOUND"),
        ("POST", "/v1beta/models/gemini-3-flash:generateContent", b"{not json", 400, "INVALID_ARGUMENT"),
        ("POST", "/v1beta/models/gemini-3-flash:generateContent", {"contents": []}, 400, "INVALID_ARGUMENT"),
        ("POST", "/v1beta/models/gemini-3-flash:generateContent", {"generationConfig": {}}, 400, "INVALID_ARGUMENT"),
        ("POST", "/v1beta/models/no-such-model:generateContent", HELLO, 404, "NOT_FOUND"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_errors_are_google_status_json(tmp_path: Path, method: str, path: str, body: object, code: int, status: str) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await stack.client.request(method, stack.url + path, data=data)
        raw = await treq.content(response)
        assert response.code == code, raw
        assert response.headers.getRawHeaders(b"content-type")[0].startswith(b"application/json")
        error = json.loads(raw)["error"]
        assert error["code"] == code and error["status"] == status and error["message"]
        assert b"Traceback" not in raw and b"<html" not in raw.lower()


@pytest_twisted.ensureDeferred
async def test_no_usable_account_is_503_saying_what_to_do(tmp_path: Path) -> None:
    async with start_stack(tmp_path, []) as stack:
        response = await stack.post("/v1beta/models/gemini-3-flash:generateContent", HELLO)
        error = (await body_json(response))["error"]
        assert response.code == 503 and error["status"] == "UNAVAILABLE"
        # The store's path is for the operator (log, /admin), never for clients.
        assert "add a Google account" in error["message"] and str(stack.store) not in error["message"]


@pytest_twisted.ensureDeferred
async def test_oversized_body_is_413_before_it_is_read(tmp_path: Path) -> None:
    from twisted.internet.threads import deferToThread

    async with start_stack(tmp_path, accounts(1), server={"max_body_bytes": 1000}) as stack:
        port = stack.port.getHost().port
        # Content-Length over the limit: answered from the headers alone, body never sent.
        head = (b"POST /v1beta/models/gemini-3-flash:generateContent HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n")
        answer = await deferToThread(blocking_exchange, port, head, 5)
        assert answer.startswith(b"HTTP/1.1 413")
        error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
        assert error["code"] == 413 and "max_body_bytes" in error["message"]
        # Chunked: cut off as soon as the running total passes the limit.
        chunked = (b"POST /v1beta/models/gemini-3-flash:generateContent HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (800, b"a" * 800)
        answer = await deferToThread(blocking_exchange, port, chunked + chunk * 2, 5)
        assert answer.startswith(b"HTTP/1.1 413")
        assert stack.emulator.state.requests("generateContent") == []
        # A body under the limit still works.
        ok = await stack.post("/v1beta/models/gemini-3-flash:generateContent", HELLO)
        assert ok.code == 200
        await treq.content(ok)


@pytest_twisted.ensureDeferred
async def test_every_response_carries_a_request_id(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1)) as stack:
        generated = await stack.get("/healthz")
        await treq.content(generated)
        assert len(generated.headers.getRawHeaders(b"x-request-id")[0]) == 32
        echoed = await stack.get("/healthz", headers={b"x-request-id": [b"client-id-123"]})
        await treq.content(echoed)
        assert echoed.headers.getRawHeaders(b"x-request-id") == [b"client-id-123"]
        health = await body_json(await stack.get("/healthz"))
        assert health["status"] == "ok" and health["version"]


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_model_calls_answer_alike_through_the_direct_route_and_klein(tmp_path: Path) -> None:
    """``:`` is served by gateway.web.direct, ``%3A`` by Klein: same status, headers and bodies."""
    async with start_stack(tmp_path, accounts(1)) as stack:
        for body in (HELLO, {"contents": "not a list"}, b"{not json"):
            answers = []
            for colon in (":", "%3A"):
                response = await stack.post(f"/v1beta/models/gemini-3-flash{colon}generateContent", body)
                content = json.loads(await treq.content(response))
                content.pop("responseId", None)
                answers.append((response.code, response.headers.getRawHeaders(b"content-type"), content))
            assert answers[0] == answers[1]
