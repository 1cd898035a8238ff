"""The emulator over real loopback HTTP: OAuth, strict validation, answers, faults, control API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_twisted
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.python import usage
from twisted.web.client import Agent, HTTPConnectionPool, ResponseFailed

from gateway.emulator.state import Account
from gateway.emulator.tap import Options, makeService
from gateway.emulator.testing import RunningEmulator, start_emulator

CLIENT = {"client_id": "emulator-client-id", "client_secret": "emulator-client-secret"}
ACCOUNTS = [
    Account("a@example.com", "rt-a", "proj-a"),
    Account("b@example.com", "rt-b", "proj-b", "standard-tier"),
    Account("new@example.com", "rt-new", None),
    Account(
        "blocked@example.com",
        "rt-blocked",
        None,
        ineligible=[{"reasonCode": "VALIDATION_REQUIRED", "reasonMessage": "Verify your account", "validationUrl": "https://accounts.google.com/v"}],
    ),
]
VENV_BIN = os.path.dirname(sys.executable)


def fresh_accounts() -> list[Account]:
    return [Account(a.email, a.refresh_token, a.project_id, a.tier, [dict(r) for r in a.ineligible]) for a in ACCOUNTS]


@pytest_twisted.async_yield_fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    running = start_emulator(reactor, fresh_accounts())
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def http() -> HTTPClient:
    return HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


async def until(check: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await sleep(0.005)


async def refresh(http: HTTPClient, emu: RunningEmulator, refresh_token: str = "rt-a", **extra: str) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **CLIENT, **extra}
    response = await http.post(emu.token_url, data=form)
    return response.code, json.loads(await response.content())


async def token_for(http: HTTPClient, emu: RunningEmulator, refresh_token: str = "rt-a") -> str:
    code, body = await refresh(http, emu, refresh_token)
    assert code == 200, body
    return str(body["access_token"])


def envelope(text: str = "hello there", model: str = "gemini-3-flash", project: str = "proj-a", **request: Any) -> dict[str, Any]:
    return {
        "model": model,
        "project": project,
        "requestId": "req-1",
        "requestType": "agent",
        "userAgent": "antigravity",
        "request": {"contents": [{"role": "user", "parts": [{"text": text}]}], "sessionId": "s-1", **request},
    }


async def call(
    http: HTTPClient,
    base: str,
    method: str,
    body: Any,
    token: str | None,
    *,
    query: str = "",
    content_type: str = "application/json",
    raw: bytes | None = None,
) -> tuple[int, Any, Any]:
    headers = {"Content-Type": content_type, "User-Agent": "antigravity/hub/2.9.1 darwin/arm64"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    response = await http.post(f"{base}/v1internal:{method}{query}", raw if raw is not None else json.dumps(body).encode(), headers=headers)
    content = await response.content()
    try:
        parsed = json.loads(content)
    except ValueError:
        parsed = content
    return response.code, parsed, response


async def control(http: HTTPClient, emu: RunningEmulator, verb: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    response = await http.request(verb, f"{emu.url}/_emulator/{path}", data=data, headers={"Content-Type": "application/json"})
    return response.code, json.loads(await response.content())


class Collector(Protocol):
    """Keeps a streamed body as it arrives; ``ended`` fires with the close reason."""

    def __init__(self) -> None:
        self.data = b""
        self.reason: Any = None
        self.ended: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any) -> None:
        self.reason = reason
        self.ended.callback(None)

    @property
    def events(self) -> list[dict[str, Any]]:
        chunks = [c for c in self.data.split(b"\r\n\r\n") if c]
        assert all(c.startswith(b"data: ") for c in chunks)
        return [json.loads(c[len(b"data: ") :]) for c in chunks]


async def open_stream(http: HTTPClient, base: str, token: str, body: Any) -> tuple[Any, Collector]:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
    response = await http.post(f"{base}/v1internal:streamGenerateContent?alt=sse", json.dumps(body).encode(), headers=headers, unbuffered=True)
    collector = Collector()
    response.deliverBody(collector)
    return response, collector


def stream_text(events: list[dict[str, Any]]) -> str:
    return "".join(p.get("text", "") for e in events for p in e["response"]["candidates"][0]["content"]["parts"] if not p.get("thought"))


# --------------------------------------------------------------------------- OAuth


@pytest_twisted.ensureDeferred
async def test_token_refresh_and_userinfo(emu: RunningEmulator, http: HTTPClient) -> None:
    code, body = await refresh(http, emu)
    assert code == 200
    assert body["access_token"].startswith("ya29.emu-") and body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599 and "cloud-platform" in body["scope"] and "refresh_token" not in body
    response = await http.get(emu.userinfo_url, headers={"Authorization": "Bearer " + body["access_token"]})
    info = json.loads(await response.content())
    assert response.code == 200 and info["email"] == "a@example.com" and info["verified_email"] is True
    response = await http.get(emu.userinfo_url)
    assert response.code == 401 and json.loads(await response.content())["error"]["status"] == "UNAUTHENTICATED"


@pytest_twisted.ensureDeferred
async def test_token_errors(emu: RunningEmulator, http: HTTPClient) -> None:
    assert await refresh(http, emu, "rt-unknown") == (400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    code, body = await refresh(http, emu, client_id="someone-else")
    assert code == 401 and body["error"] == "invalid_client"
    code, body = await refresh(http, emu, client_secret="wrong")
    assert code == 401 and body["error"] == "invalid_client"
    response = await http.post(emu.token_url, json.dumps({"grant_type": "refresh_token", "refresh_token": "rt-a", **CLIENT}).encode(), headers={"Content-Type": "application/json"})
    assert response.code == 400 and json.loads(await response.content())["error"] == "invalid_request"
    code, body = await refresh(http, emu, grant_type="password")
    assert code == 400 and body["error"] == "unsupported_grant_type"
    response = await http.post(emu.token_url, data={"grant_type": "refresh_token", **CLIENT})
    assert response.code == 400 and json.loads(await response.content())["error"] == "invalid_request"
    stats = emu.state.stats
    assert stats.token_failures == 6 and stats.token_refreshes == {}


@pytest_twisted.ensureDeferred
async def test_refresh_token_rotation_and_revocation(emu: RunningEmulator, http: HTTPClient) -> None:
    assert (await control(http, emu, "POST", "settings", {"rotate_refresh_tokens": True}))[0] == 200
    code, body = await refresh(http, emu)
    assert code == 200 and body["refresh_token"] != "rt-a"
    assert (await refresh(http, emu))[0] == 400  # the old one died
    await control(http, emu, "POST", "settings", {"rotate_refresh_tokens": False})
    token = await token_for(http, emu, body["refresh_token"])
    assert (await call(http, emu.url, "loadCodeAssist", {}, token))[0] == 200
    assert (await control(http, emu, "POST", "revoke", {"email": "a@example.com"}))[0] == 200
    code, error, response = await call(http, emu.url, "loadCodeAssist", {}, token)
    assert code == 401 and error["error"]["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
    assert response.headers.getRawHeaders("www-authenticate")
    token = await token_for(http, emu, body["refresh_token"])
    await control(http, emu, "POST", "revoke", {"email": "a@example.com", "refresh": True})
    assert (await refresh(http, emu, body["refresh_token"]))[1]["error"] == "invalid_grant"


@pytest_twisted.ensureDeferred
async def test_authorization_code_flow(emu: RunningEmulator, http: HTTPClient) -> None:
    redirect = "http://127.0.0.1:9/oauth-callback"
    url = f"{emu.auth_url}?client_id=emulator-client-id&redirect_uri={redirect}&response_type=code&state=xyz&login_hint=b@example.com&access_type=offline&prompt=consent"
    response = await http.get(url, allow_redirects=False)
    assert response.code == 302
    location = response.headers.getRawHeaders("location")[0]
    assert location.startswith(redirect)
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["xyz"]
    form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect, **CLIENT}
    response = await http.post(emu.token_url, data=form)
    body = json.loads(await response.content())
    assert response.code == 200 and body["refresh_token"] == "rt-b"
    response = await http.post(emu.token_url, data=form)
    assert response.code == 400 and json.loads(await response.content())["error"] == "invalid_grant"


# --------------------------------------------------------------------------- validation


@pytest_twisted.ensureDeferred
async def test_authentication_is_required(emu: RunningEmulator, http: HTTPClient) -> None:
    code, body, _ = await call(http, emu.url, "generateContent", envelope(), None)
    assert code == 401 and body["error"]["details"][0]["reason"] == "CREDENTIALS_MISSING"
    code, body, _ = await call(http, emu.url, "generateContent", envelope(), "ya29.made-up")
    assert code == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    code, body, _ = await call(http, emu.url, "countTokens", {}, "ya29.made-up")
    assert code == 401


INVALID_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], int, str]] = [
    ("models/ prefix", lambda e: e.update(model="models/gemini-3-flash"), 400, "INVALID_ARGUMENT"),
    ("unknown model", lambda e: e.update(model="gemini-9-ultra"), 404, "NOT_FOUND"),
    ("other project", lambda e: e.update(project="proj-b"), 403, "PERMISSION_DENIED"),
    ("no project", lambda e: e.pop("project"), 400, "INVALID_ARGUMENT"),
    ("no model", lambda e: e.pop("model"), 400, "INVALID_ARGUMENT"),
    ("no requestId", lambda e: e.pop("requestId"), 400, "INVALID_ARGUMENT"),
    ("no request", lambda e: e.pop("request"), 400, "INVALID_ARGUMENT"),
    ("request not an object", lambda e: e.update(request=[1]), 400, "INVALID_ARGUMENT"),
    ("empty contents", lambda e: e["request"].update(contents=[]), 400, "INVALID_ARGUMENT"),
    ("no role", lambda e: e["request"]["contents"][0].pop("role"), 400, "INVALID_ARGUMENT"),
    ("no parts", lambda e: e["request"]["contents"][0].pop("parts"), 400, "INVALID_ARGUMENT"),
    ("unknown envelope key", lambda e: e.update(extra=1), 400, "INVALID_ARGUMENT"),
    ("unknown request key", lambda e: e["request"].update(stream=True), 400, "INVALID_ARGUMENT"),
    ("bad enum name", lambda e: e["request"].update(safetySettings=[{"category": "NOPE", "threshold": "BLOCK_NONE"}]), 400, "INVALID_ARGUMENT"),
    ("output limit", lambda e: e["request"].update(generationConfig={"maxOutputTokens": 100_000}), 400, "INVALID_ARGUMENT"),
    ("model string type", lambda e: e.update(model=5), 400, "INVALID_ARGUMENT"),
]


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("name,mutate,status,rpc", INVALID_CASES, ids=[c[0] for c in INVALID_CASES])
async def test_envelope_validation(emu: RunningEmulator, http: HTTPClient, name: str, mutate: Any, status: int, rpc: str) -> None:
    token = await token_for(http, emu)
    body = envelope()
    mutate(body)
    for method, query in (("generateContent", ""), ("streamGenerateContent", "?alt=sse")):
        code, error, response = await call(http, emu.url, method, body, token, query=query)
        assert (code, error["error"]["status"]) == (status, rpc), error
        assert error["error"]["code"] == status and error["error"]["message"]
        assert response.headers.getRawHeaders("content-type")[0].startswith("application/json")


@pytest_twisted.ensureDeferred
async def test_transport_level_validation(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    code, error, _ = await call(http, emu.url, "generateContent", envelope(), token, content_type="text/plain")
    assert code == 400 and "Content-Type" in error["error"]["message"]
    code, error, _ = await call(http, emu.url, "generateContent", None, token, raw=b"{not json")
    assert code == 400 and "Invalid JSON payload" in error["error"]["message"]
    code, error, _ = await call(http, emu.url, "streamGenerateContent", envelope(), token)
    assert code == 400 and "alt=sse" in error["error"]["message"]
    code, error, _ = await call(http, emu.url, "embedContent", {}, token)
    assert code == 404 and error["error"]["status"] == "NOT_FOUND"
    response = await http.get(emu.url + "/v1internal:generateContent")
    assert response.code == 404 and json.loads(await response.content())["error"]["status"] == "NOT_FOUND"
    response = await http.get(emu.url + "/no/such/path")
    assert response.code == 404 and json.loads(await response.content())["error"]["code"] == 404


@pytest_twisted.ensureDeferred
async def test_enums_arrive_as_ints_or_names(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    body = envelope(safetySettings=[{"category": 8, "threshold": 4}, {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_NONE"}])
    assert (await call(http, emu.url, "generateContent", body, token))[0] == 200


# --------------------------------------------------------------------------- answers


@pytest_twisted.ensureDeferred
async def test_generate_stream_and_count_agree(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    extra = {
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "tools": [{"functionDeclarations": [{"name": "lookup_time", "description": "w", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}],
    }
    body = envelope("What is the weather like today in Paris?", **extra)
    body["request"]["contents"][0]["parts"].append({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    code, answer, _ = await call(http, emu.url, "generateContent", body, token)
    assert code == 200 and answer["traceId"]
    response = answer["response"]
    candidate = response["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    assert candidate["content"]["parts"][0]["text"] == "Echo: What is the weather like today in Paris?"
    usage = response["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert response["modelVersion"] == "gemini-3-flash" and response["responseId"]

    count_body = {"request": {"model": "models/gemini-3-flash", "contents": body["request"]["contents"], **extra}}
    code, counted, _ = await call(http, emu.url, "countTokens", count_body, token)
    assert code == 200 and counted == {"totalTokens": usage["promptTokenCount"]}

    response_obj, collector = await open_stream(http, emu.url, token, body)
    assert response_obj.code == 200 and response_obj.headers.getRawHeaders("content-type") == ["text/event-stream"]
    await collector.ended
    assert collector.data.endswith(b"\r\n\r\n") and b"[DONE]" not in collector.data
    events = collector.events
    assert len(events) == 5 and all(e["traceId"] for e in events)
    assert stream_text(events) == candidate["content"]["parts"][0]["text"]
    assert all("usageMetadata" not in e["response"] and "finishReason" not in e["response"]["candidates"][0] for e in events[:-1])
    assert events[-1]["response"]["usageMetadata"] == usage
    assert events[-1]["response"]["candidates"][0]["finishReason"] == "STOP"


@pytest_twisted.ensureDeferred
async def test_stream_event_count_by_prompt_and_setting(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    _, collector = await open_stream(http, emu.url, token, envelope("stream 12 events please"))
    await collector.ended
    assert len(collector.events) == 12
    await control(http, emu, "POST", "settings", {"stream_events": 2})
    _, collector = await open_stream(http, emu.url, token, envelope("hi there"))
    await collector.ended
    assert len(collector.events) == 2
    assert emu.state.stats.max_open_streams >= 1 and emu.state.stats.open_streams == 0


@pytest_twisted.ensureDeferred
async def test_stream_stops_when_the_client_leaves(emu: RunningEmulator, http: HTTPClient) -> None:
    emu.state.settings.update({"event_delay": 0.03})
    token = await token_for(http, emu)
    response, collector = await open_stream(http, emu.url, token, envelope("stream 50 events"))
    await until(lambda: len(collector.events) >= 1)
    collector.transport.stopProducing()
    await collector.ended
    await until(lambda: emu.state.stats.open_streams == 0)
    assert emu.state.stats.disconnects == 1
    assert emu.state.stats.stream_events < 5


@pytest_twisted.ensureDeferred
async def test_host_tags_route_to_the_same_api(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    for tag in ("sandbox", "daily", "prod"):
        assert (await call(http, emu.host_url(tag), "generateContent", envelope(), token))[0] == 200
    stats = (await control(http, emu, "GET", "stats"))[1]
    assert stats["by_host"]["sandbox"] == {"generateContent": 1}
    assert stats["requests"]["generateContent"] == 3


@pytest_twisted.ensureDeferred
async def test_thinking_image_and_function_answers(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    body = envelope(model="gemini-3.1-pro-low", generationConfig={"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}})
    _, answer, _ = await call(http, emu.url, "generateContent", body, token)
    parts = answer["response"]["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True and answer["response"]["usageMetadata"]["thoughtsTokenCount"] > 0
    body = envelope(model="gemini-3.1-flash-image")
    body["requestType"] = "image_gen"
    _, answer, _ = await call(http, emu.url, "generateContent", body, token)
    assert answer["response"]["candidates"][0]["content"]["parts"][-1]["inlineData"]["mimeType"] == "image/png"
    tools = [{"functionDeclarations": [{"name": "lookup"}]}]
    _, answer, _ = await call(http, emu.url, "generateContent", envelope("call function lookup", tools=tools), token)
    assert answer["response"]["candidates"][0]["content"]["parts"][-1]["functionCall"]["name"] == "lookup"


@pytest_twisted.ensureDeferred
async def test_fetch_available_models(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    code, body, _ = await call(http, emu.url, "fetchAvailableModels", {"project": "proj-a"}, token)
    assert code == 200
    pro = body["models"]["gemini-3.1-pro-low"]
    assert pro["maxTokens"] == 1_048_576 and pro["maxOutputTokens"] == 65_536
    assert pro["quotaInfo"]["remainingFraction"] == 1.0 and pro["quotaInfo"]["resetTime"].endswith("Z")
    assert "claude-sonnet-4-6" in body["models"] and body["models"]["gemini-3.1-flash-image"]["supportsThinking"] is False
    assert (await call(http, emu.url, "fetchAvailableModels", {"project": "proj-b"}, token))[0] == 403
    assert (await call(http, emu.url, "fetchAvailableModels", {}, token))[0] == 400


# --------------------------------------------------------------------------- onboarding


@pytest_twisted.ensureDeferred
async def test_onboarding_with_polling(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu, "rt-new")
    metadata = {"ideType": "ANTIGRAVITY", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
    code, loaded, _ = await call(http, emu.url, "loadCodeAssist", {"metadata": metadata}, token)
    assert code == 200 and "currentTier" not in loaded and "cloudaicompanionProject" not in loaded
    default = [t["id"] for t in loaded["allowedTiers"] if t.get("isDefault")]
    assert default == ["free-tier"]
    assert (await call(http, emu.url, "generateContent", envelope(project="anything"), token))[0] == 403
    assert (await call(http, emu.url, "onboardUser", {"tierId": "gold", "metadata": metadata}, token))[0] == 400
    code, op, _ = await call(http, emu.url, "onboardUser", {"tierId": "free-tier", "metadata": metadata}, token)
    assert code == 200 and op["done"] is False and op["name"].startswith("operations/")
    other = await token_for(http, emu, "rt-a")
    response = await http.get(f"{emu.url}/v1internal/{op['name']}", headers={"Authorization": "Bearer " + other})
    assert response.code == 404
    await response.content()
    response = await http.get(f"{emu.host_url('daily')}/v1internal/{op['name']}", headers={"Authorization": "Bearer " + token})
    polled = json.loads(await response.content())
    assert response.code == 200 and polled["done"] is True
    project = polled["response"]["cloudaicompanionProject"]["id"]
    _, loaded, _ = await call(http, emu.url, "loadCodeAssist", {"metadata": metadata}, token)
    assert loaded["currentTier"]["id"] == "free-tier" and loaded["cloudaicompanionProject"] == project
    assert (await call(http, emu.url, "generateContent", envelope(project=project), token))[0] == 200


@pytest_twisted.ensureDeferred
async def test_ineligible_account(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu, "rt-blocked")
    _, loaded, _ = await call(http, emu.url, "loadCodeAssist", {"metadata": {}}, token)
    assert loaded["ineligibleTiers"][0]["reasonCode"] == "VALIDATION_REQUIRED" and loaded["ineligibleTiers"][0]["validationUrl"]
    assert not loaded.get("allowedTiers")
    code, error, _ = await call(http, emu.url, "onboardUser", {"tierId": "free-tier"}, token)
    assert code == 403 and error["error"]["details"][0]["reason"] == "VALIDATION_REQUIRED"


@pytest_twisted.ensureDeferred
async def test_standard_tier_onboarding_needs_a_project(emu: RunningEmulator, http: HTTPClient) -> None:
    await control(http, emu, "POST", "accounts", {"accounts": [{"email": "ws@example.com", "refresh_token": "rt-ws", "project_id": None, "tier": "standard-tier"}]})
    await control(http, emu, "POST", "settings", {"onboard_polls": 0})
    token = await token_for(http, emu, "rt-ws")
    assert (await call(http, emu.url, "onboardUser", {"tierId": "standard-tier"}, token))[0] == 400
    code, op, _ = await call(http, emu.url, "onboardUser", {"tierId": "standard-tier", "cloudaicompanionProject": "my-gcp"}, token)
    assert code == 200 and op["done"] is True and op["response"]["cloudaicompanionProject"]["id"] == "my-gcp"


# --------------------------------------------------------------------------- faults


@pytest_twisted.ensureDeferred
async def test_rate_limit_and_quota_faults(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    code, added = await control(http, emu, "POST", "faults", {"method": "generateContent", "status": 429, "retry_delay": 2.5})
    assert code == 200 and added["id"]
    code, error, _ = await call(http, emu.url, "generateContent", envelope(), token)
    assert code == 429 and error["error"]["status"] == "RESOURCE_EXHAUSTED"
    details = {d["@type"].rsplit(".", 1)[1]: d for d in error["error"]["details"]}
    assert details["ErrorInfo"]["reason"] == "RATE_LIMIT_EXCEEDED" and details["RetryInfo"]["retryDelay"] == "2.5s"
    assert (await call(http, emu.url, "generateContent", envelope(), token))[0] == 200  # times=1 used up

    await control(http, emu, "POST", "faults", {"method": "*", "status": 429, "reason": "QUOTA_EXHAUSTED", "quota_reset_delay": 3723, "model": "gemini-3.1-pro-low", "email": "a@example.com"})
    assert (await call(http, emu.url, "generateContent", envelope(), token))[0] == 200  # other model
    code, error, _ = await call(http, emu.url, "generateContent", envelope(model="gemini-3.1-pro-low"), token)
    info = error["error"]["details"][0]
    assert code == 429 and info["reason"] == "QUOTA_EXHAUSTED" and info["metadata"]["quotaResetDelay"] == "1h2m3s"
    assert "reset after 1h2m3s" in error["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_per_host_server_errors(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    await control(http, emu, "POST", "faults", {"method": "generateContent", "host": "sandbox", "status": 503, "times": -1})
    for _ in range(2):
        code, error, _ = await call(http, emu.host_url("sandbox"), "generateContent", envelope(), token)
        assert code == 503 and error["error"]["status"] == "UNAVAILABLE"
    assert (await call(http, emu.host_url("daily"), "generateContent", envelope(), token))[0] == 200
    assert (await call(http, emu.url, "generateContent", envelope(), token))[0] == 200
    _, listed = await control(http, emu, "GET", "faults")
    assert listed["faults"][0]["hits"] == 2
    assert (await control(http, emu, "DELETE", "faults"))[1] == {"removed": 1}
    assert (await call(http, emu.host_url("sandbox"), "generateContent", envelope(), token))[0] == 200


@pytest_twisted.ensureDeferred
async def test_fault_body_headers_and_bad_rules(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    await control(http, emu, "POST", "faults", {"method": "countTokens", "status": 500, "body": {"weird": True}, "headers": {"Retry-After": "7"}})
    code, body, response = await call(http, emu.url, "countTokens", {}, token)
    assert (code, body) == (500, {"weird": True}) and response.headers.getRawHeaders("retry-after") == ["7"]
    code, error = await control(http, emu, "POST", "faults", {"method": "generateContent", "satus": 500})
    assert code == 400 and "satus" in error["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_delay_fault(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    await control(http, emu, "POST", "faults", {"method": "generateContent", "kind": "delay", "seconds": 0.15})
    started = time.monotonic()
    assert (await call(http, emu.url, "generateContent", envelope(), token))[0] == 200
    assert time.monotonic() - started >= 0.14


@pytest_twisted.ensureDeferred
async def test_reset_fault_drops_the_connection(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    await control(http, emu, "POST", "faults", {"method": "generateContent", "kind": "reset"})
    with pytest.raises(Exception) as info:
        await call(http, emu.url, "generateContent", envelope(), token)
    assert "ResponseNeverReceived" in type(info.value).__name__ or "Connection" in repr(info.value)
    assert (await call(http, emu.url, "generateContent", envelope(), token))[0] == 200


@pytest_twisted.ensureDeferred
async def test_cut_stream(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    await control(http, emu, "POST", "faults", {"method": "streamGenerateContent", "kind": "cut", "after_events": 2})
    response, collector = await open_stream(http, emu.url, token, envelope("stream 6 events"))
    assert response.code == 200
    await collector.ended
    reason = collector.reason
    assert reason.check(ResponseFailed) or "PotentialDataLoss" in repr(reason.value) or "DataLoss" in repr(reason.value)
    assert len(collector.events) == 2
    await until(lambda: emu.state.stats.open_streams == 0)


@pytest_twisted.ensureDeferred
async def test_stall_stream(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    await control(http, emu, "POST", "faults", {"method": "streamGenerateContent", "kind": "stall", "after_events": 1})
    _, collector = await open_stream(http, emu.url, token, envelope("stream 6 events"))
    await until(lambda: len(collector.events) == 1)
    await sleep(0.1)
    assert len(collector.events) == 1 and not collector.ended.called
    assert emu.state.stats.open_streams == 1
    collector.transport.stopProducing()
    await collector.ended
    await until(lambda: emu.state.stats.open_streams == 0)


@pytest_twisted.ensureDeferred
async def test_stall_is_closed_by_stop(http: HTTPClient) -> None:
    running = start_emulator(reactor, fresh_accounts())
    token = await token_for(http, running)
    running.state.add_fault({"kind": "stall", "after_events": 0})
    _, collector = await open_stream(http, running.url, token, envelope())
    await running.stop()
    await collector.ended
    assert collector.data == b""


@pytest_twisted.ensureDeferred
async def test_stream_error_event(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    await control(http, emu, "POST", "faults", {"kind": "stream_error", "after_events": 1, "status": 503, "reason": "MODEL_CAPACITY_EXHAUSTED"})
    _, collector = await open_stream(http, emu.url, token, envelope())
    await collector.ended
    events = collector.events
    assert len(events) == 2 and events[1]["error"]["code"] == 503
    assert events[1]["error"]["details"][0]["reason"] == "MODEL_CAPACITY_EXHAUSTED"


@pytest_twisted.ensureDeferred
async def test_token_endpoint_faults(emu: RunningEmulator, http: HTTPClient) -> None:
    await control(http, emu, "POST", "faults", {"method": "token", "kind": "invalid_grant", "email": "a@example.com"})
    assert (await refresh(http, emu, "rt-b"))[0] == 200
    assert (await refresh(http, emu))[1]["error"] == "invalid_grant"
    assert (await refresh(http, emu))[0] == 200  # the account itself was not revoked
    await control(http, emu, "POST", "faults", {"method": "token", "status": 503})
    code, body = await refresh(http, emu)
    assert code == 503 and body["error"]


@pytest_twisted.ensureDeferred
async def test_server_side_quota(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    await control(http, emu, "POST", "quota", {"email": "a@example.com", "model": "gemini-3-flash", "remaining_fraction": 0, "reset_in": 90})
    code, error, _ = await call(http, emu.url, "generateContent", envelope(), token)
    assert code == 429 and error["error"]["details"][0]["reason"] == "QUOTA_EXHAUSTED"
    _, models, _ = await call(http, emu.url, "fetchAvailableModels", {"project": "proj-a"}, token)
    assert models["models"]["gemini-3-flash"]["quotaInfo"]["remainingFraction"] == 0.0


# --------------------------------------------------------------------------- control API


@pytest_twisted.ensureDeferred
async def test_recorded_requests_and_reset(emu: RunningEmulator, http: HTTPClient) -> None:
    token = await token_for(http, emu)
    await call(http, emu.host_url("prod"), "generateContent", envelope(), token)
    _, recorded = await control(http, emu, "GET", "requests?method=generateContent")
    [entry] = recorded["requests"]
    assert entry["host"] == "prod" and entry["email"] == "a@example.com" and entry["status"] == 200
    assert entry["body"]["requestId"] == "req-1" and entry["path"] == "/prod/v1internal:generateContent"
    assert "authorization" not in entry["headers"] and entry["headers"]["user-agent"].startswith("antigravity/")
    _, tokens = await control(http, emu, "GET", "requests?method=token")
    assert tokens["requests"][0]["body"]["client_secret"] == "***"
    _, stats = await control(http, emu, "GET", "stats")
    assert stats["token_refreshes"] == {"a@example.com": 1} and stats["requests"]["generateContent"] == 1
    await control(http, emu, "POST", "faults", {})
    assert (await control(http, emu, "POST", "reset", {}))[0] == 200
    _, stats = await control(http, emu, "GET", "stats")
    assert stats["requests"] == {} and emu.state.faults == []
    assert (await call(http, emu.url, "generateContent", envelope(), token))[0] == 200  # accounts and tokens kept
    await control(http, emu, "POST", "reset", {"accounts": True})
    assert (await control(http, emu, "GET", "accounts"))[1] == {"accounts": []}


@pytest_twisted.ensureDeferred
async def test_accounts_control(emu: RunningEmulator, http: HTTPClient) -> None:
    code, body = await control(http, emu, "POST", "accounts", {"email": "c@example.com", "refresh_token": "rt-c", "project_id": "proj-c"})
    assert code == 200 and body == {"accounts": ["c@example.com"]}
    token = await token_for(http, emu, "rt-c")
    assert (await call(http, emu.url, "generateContent", envelope(project="proj-c"), token))[0] == 200
    assert (await control(http, emu, "POST", "accounts", {"email": "bad"}))[0] == 400
    assert (await control(http, emu, "DELETE", "accounts/c@example.com"))[0] == 200
    assert (await call(http, emu.url, "generateContent", envelope(project="proj-c"), token))[0] == 401
    code, settings = await control(http, emu, "GET", "settings")
    assert code == 200 and settings["event_delay"] == 0.0 and settings["client_secret"] == "***"
    assert (await control(http, emu, "POST", "settings", {"event_delay": "fast"}))[0] == 400


# --------------------------------------------------------------------------- CLI and service


def test_twist_knows_the_plugin() -> None:
    from twisted.application.service import IServiceMaker
    from twisted.plugin import getPlugins

    assert "antigravity-emulator" in {p.tapname for p in getPlugins(IServiceMaker)}
    result = subprocess.run([os.path.join(VENV_BIN, "twist"), "antigravity-emulator", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ("--port", "--listen", "--seed", "--event-delay", "--token-lifetime", "--client-id", "--client-secret"):
        assert flag in result.stdout


def test_options(tmp_path: Any) -> None:
    options = Options()
    options.parseOptions([])
    assert options.endpoints == ["tcp:8046:interface=127.0.0.1"] and options.settings.event_delay == 0.02
    assert options.settings.token_lifetime == 3599 and options.settings.client_id == "emulator-client-id"
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"accounts": [{"email": "s@example.com", "refresh_token": "r", "project_id": None}]}))
    options = Options()
    options.parseOptions(["--port", "9000", "--listen", "tcp:0", "--listen", "unix:/tmp/x.sock", "--seed", str(seed), "--event-delay", "0", "--token-lifetime", "60", "--client-id", "c", "--client-secret", "s"])
    assert options.endpoints == ["tcp:0", "unix:/tmp/x.sock", "tcp:9000:interface=127.0.0.1"]
    assert options.accounts[0].email == "s@example.com" and options.settings.event_delay == 0.0
    assert (options.settings.token_lifetime, options.settings.client_id, options.settings.client_secret) == (60, "c", "s")
    seed.write_text("[]")
    for bad in (["--seed", str(seed)], ["--event-delay", "-1"], ["--token-lifetime", "x"]):
        with pytest.raises(usage.UsageError):
            Options().parseOptions(bad)


@pytest_twisted.ensureDeferred
async def test_service_starts_and_stops(http: HTTPClient) -> None:
    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1", "--demo-accounts", "1", "--event-delay", "0"])
    service = makeService(options)
    service.startService()
    try:
        child = next(iter(service))
        port = await child._waitingForPort  # type: ignore[attr-defined]
        url = f"http://127.0.0.1:{port.getHost().port}"
        response = await http.get(url + "/_emulator/health")
        assert response.code == 200 and json.loads(await response.content())["accounts"] == 1
    finally:
        await service.stopService()
