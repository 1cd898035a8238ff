"""Per-person keys and usage over loopback: refusals in each door's shape, live revocation, exact usage totals."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater

from gateway.team import operations
from gateway.team.sqlite_store import SQLiteStore
from tests.integration.harness import Events, accounts, start_stack

ANTHROPIC = {b"anthropic-version": [b"2023-06-01"]}
TEAM = {"auth": {"strategy": "keys", "mode": "all_except_health"}, "team": {"keys_poll_seconds": 0.05, "flush_seconds": 0.05}}


def gemini(key: str, model: str = "gemini-3-flash", stream: bool = False) -> tuple[str, Any, dict[bytes, list[bytes]]]:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return (f"/v1beta/models/{model}:{action}", {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]},
            {b"x-goog-api-key": [key.encode()]})


def openai(key: str, model: str = "gemini-3-flash", stream: bool = False) -> tuple[str, Any, dict[bytes, list[bytes]]]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hello there"}]}
    if stream:
        body["stream"] = True
    return "/v1/chat/completions", body, {b"authorization": [b"Bearer " + key.encode()]}


def anthropic(key: str, model: str = "gemini-3-flash", stream: bool = False) -> tuple[str, Any, dict[bytes, list[bytes]]]:
    body: dict[str, Any] = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": "hello there"}]}
    if stream:
        body["stream"] = True
    return "/v1/messages", body, {b"x-api-key": [key.encode()], **ANTHROPIC}


def responses(key: str, model: str = "gemini-3-flash", stream: bool = False) -> tuple[str, Any, dict[bytes, list[bytes]]]:
    body: dict[str, Any] = {"model": model, "input": "hello there"}
    if stream:
        body["stream"] = True
    return "/v1/responses", body, {b"authorization": [b"Bearer " + key.encode()]}


def images(key: str, model: str = "gpt-image-1", stream: bool = False) -> tuple[str, Any, dict[bytes, list[bytes]]]:
    """Two pictures: two upstream calls for one client request (``stream`` is not used)."""
    return "/v1/images/generations", {"model": model, "prompt": "a red fox", "n": 2}, {b"authorization": [b"Bearer " + key.encode()]}


def count_tokens(key: str, model: str = "gemini-3-flash") -> tuple[str, Any, dict[bytes, list[bytes]]]:
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}]}
    return "/v1/messages/count_tokens", body, {b"x-api-key": [key.encode()], **ANTHROPIC}


DOORS = {"gemini": gemini, "openai": openai, "anthropic": anthropic, "responses": responses, "images": images}
OPENAI_SHAPED = ("openai", "responses", "images")


def shape(door: str, body: Any) -> tuple[str, str]:
    """(kind, message) of an error body, asserting it is in the door's own shape."""
    if door == "gemini":
        error = body["error"]
        assert set(error) >= {"code", "message", "status"}, body
        return error["status"], error["message"]
    if door in OPENAI_SHAPED:
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, body
        return error["type"], error["message"]
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
    return body["error"]["type"], body["error"]["message"]


async def call(stack: Any, request: tuple[str, Any, dict[bytes, list[bytes]]]) -> tuple[int, Any, Any]:
    path, body, headers = request
    response = await stack.post(path, body, headers=dict(headers))
    raw = await treq.content(response)
    try:
        document: Any = json.loads(raw)
    except ValueError:
        document = raw
    return response.code, response.headers, document


def generations(stack: Any) -> int:
    requests = stack.emulator.state.stats.requests
    return requests.get("generateContent", 0) + requests.get("streamGenerateContent", 0)


@pytest_twisted.ensureDeferred
async def test_limit_refusals_take_each_doors_shape_and_never_reach_upstream(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "team.sqlite3"))
    now = reactor.seconds()
    secrets = {}
    for door in DOORS:
        secrets[door, "rpm"], _ = operations.create(store, f"{door}-rpm", now, rpm=1)
        secrets[door, "model"], _ = operations.create(store, f"{door}-model", now, models=["gemini-*"])
        secrets[door, "expired"], _ = operations.create(store, f"{door}-expired", now, ttl_days=1)
        secrets[door, "budget"], _ = operations.create(store, f"{door}-budget", now, tokens_per_day=1)
        operations.edit(store, f"{door}-expired", now, expires="2001-01-01")
    stack = start_stack(tmp_path, accounts(1), **TEAM)
    async with stack:
        for door, request in DOORS.items():
            # requests per minute: the first passes, the second is a 429 with Retry-After
            code, _, body = await call(stack, request(secrets[door, "rpm"]))
            assert code == 200, (door, body)
            if door == "images":  # two upstream calls, one request: both pictures come
                assert len(body["data"]) == 2
            before = generations(stack)
            # (the Responses door is refused before its stream starts: a JSON error, not events)
            code, headers, body = await call(stack, request(secrets[door, "rpm"], stream=door == "responses"))
            assert code == 429, (door, body)
            assert 1 <= int(headers.getRawHeaders(b"retry-after")[0]) <= 60
            kind, message = shape(door, body)
            assert kind == ("RESOURCE_EXHAUSTED" if door == "gemini" else "rate_limit_error")
            assert "requests per minute" in message
            # a model outside the key's patterns (after resolution): 403
            code, headers, body = await call(stack, request(secrets[door, "model"], model="claude-sonnet-4-6"))
            assert code == 403, (door, body)
            kind, message = shape(door, body)
            assert "claude-sonnet-4-6" in message and "gemini-*" in message
            assert kind == ("PERMISSION_DENIED" if door == "gemini" else "permission_error")
            # an expired key: 403 saying so
            code, _, body = await call(stack, request(secrets[door, "expired"]))
            assert code == 403, (door, body)
            assert "expired" in shape(door, body)[1]
            assert generations(stack) == before  # none of the refusals reached upstream
            # tokens per day, counted from upstream usage: the first answer spends the budget
            code, _, _ = await call(stack, request(secrets[door, "budget"], stream=True))
            assert code == 200
            before = generations(stack)
            code, headers, body = await call(stack, request(secrets[door, "budget"]))
            assert code == 429, (door, body)
            assert "tokens for today" in shape(door, body)[1]
            assert int(headers.getRawHeaders(b"retry-after")[0]) <= 86400
            assert generations(stack) == before
        metrics = await treq.content(await stack.get("/metrics", headers={b"x-goog-api-key": [secrets["gemini", "model"].encode()]}))
        assert b'antigravity_gateway_key_refusals_total{key="gemini-rpm",reason="rpm"} 1.0' in metrics
        assert b"agw_" not in metrics  # names only, never a key


@pytest_twisted.ensureDeferred
async def test_a_key_revoked_from_outside_is_refused_while_the_gateway_runs(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "team.sqlite3"))
    secret, _ = operations.create(store, "carol", reactor.seconds())
    stack = start_stack(tmp_path, accounts(1), **TEAM)
    async with stack:
        code, _, _ = await call(stack, openai(secret))
        assert code == 200
        operations.revoke(SQLiteStore(str(tmp_path / "team.sqlite3")), "carol", reactor.seconds())  # as the CLI does
        for _ in range(200):  # the key table is re-read when its version moves (every 0.05 s here)
            code, _, body = await call(stack, openai(secret))
            if code != 200:
                break
            await deferLater(reactor, 0.05, lambda: None)
        assert code == 401, body
        assert body["error"]["type"] == "authentication_error"
        code, _, _ = await call(stack, gemini(secret))
        assert code == 401


@pytest_twisted.ensureDeferred
async def test_usage_totals_equal_what_upstream_reported_over_every_door(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "team.sqlite3"))
    alice, _ = operations.create(store, "alice", reactor.seconds())
    bob, _ = operations.create(store, "bob", reactor.seconds())
    stack = start_stack(tmp_path, accounts(2), **TEAM)
    async with stack:
        events = Events()
        events.__enter__()
        script = [
            gemini(alice), gemini(bob, stream=True), gemini(alice, model="claude-opus-4-6-thinking"),
            openai(alice), openai(bob, stream=True), openai(bob, model="claude-sonnet-4-6"),
            anthropic(alice), anthropic(bob, stream=True), anthropic(alice, model="claude-opus-4-6-thinking", stream=True),
            responses(alice), responses(bob, stream=True), responses(alice, model="claude-opus-4-6-thinking", stream=True),
            images(bob), count_tokens(alice),
        ]
        for request in script:
            code, _, body = await call(stack, request)
            assert code == 200, body
        await stack.gateway.team.flush()
        await deferLater(reactor, 0.01, lambda: None)  # the request log line follows the response
        events.__exit__()
        logged = [e for e in events.events if e.get("route") in (
            "generateContent", "streamGenerateContent", "chat.completions", "messages", "responses",
            "images.generations", "messages.count_tokens")]
        assert sorted(e["key"] for e in logged) == ["alice"] * 8 + ["bob"] * 6
        assert not any(alice in str(e) or bob in str(e) for e in events.events)  # names, never keys
        rows = SQLiteStore(str(tmp_path / "team.sqlite3")).summary(0, "key")
        truth = stack.emulator.state.stats.answered_usage
        assert sum(r["requests"] for r in rows) == len(script)
        assert {r["group"] for r in rows} == {"alice", "bob"}
        assert sum(r["prompt_tokens"] for r in rows) == truth["promptTokenCount"] > 0
        assert sum(r["output_tokens"] for r in rows) == truth["candidatesTokenCount"] > 0
        assert sum(r["thought_tokens"] for r in rows) == truth.get("thoughtsTokenCount", 0)
        assert sum(r["total_tokens"] for r in rows) == truth["totalTokenCount"]
        doors = {r["group"]: r["requests"] for r in SQLiteStore(str(tmp_path / "team.sqlite3")).summary(0, "door")}
        assert doors == {"gemini": 3, "openai": 7, "anthropic": 4}
        routes = {r["group"]: r["requests"] for r in SQLiteStore(str(tmp_path / "team.sqlite3")).summary(0, "route")}
        assert routes == {"generateContent": 2, "streamGenerateContent": 1, "chat.completions": 3, "messages": 3,
                          "responses": 3, "images.generations": 1, "messages.count_tokens": 1}
        models = {r["group"] for r in SQLiteStore(str(tmp_path / "team.sqlite3")).summary(0, "model")}
        assert {"gemini-3-flash", "claude-sonnet-4-6", "claude-opus-4-6-thinking", "gemini-3.1-flash-image"} <= models
        with sqlite3.connect(str(tmp_path / "team.sqlite3")) as db:
            recorded = db.execute("SELECT route, requested_model, model, status, attempts, account, prompt_tokens, "
                                  "output_tokens FROM usage WHERE route IN ('responses', 'images.generations', "
                                  "'messages.count_tokens') ORDER BY id").fetchall()
        assert [r[:5] for r in recorded] == [
            ("responses", "gemini-3-flash", "gemini-3-flash", 200, 1),
            ("responses", "gemini-3-flash", "gemini-3-flash", 200, 1),
            ("responses", "claude-opus-4-6-thinking", "claude-opus-4-6-thinking", 200, 1),
            ("images.generations", "gpt-image-1", "gemini-3.1-flash-image", 200, 2),  # two pictures, two calls
            ("messages.count_tokens", "gemini-3-flash", "gemini-3-flash", 200, 1),
        ]
        assert all(r[5] for r in recorded)  # the account that answered
        assert all(r[6] > 0 and r[7] > 0 for r in recorded[:4]) and recorded[4][6:] == (0, 0)  # counting spends none
        # the daily budget counts what was recorded
        assert stack.gateway.team.tokens.get("alice", reactor.seconds()) > 0


@pytest_twisted.ensureDeferred
async def test_admin_api_needs_the_admin_key_and_manages_keys(tmp_path: Path) -> None:
    settings = dict(TEAM, team={**TEAM["team"], "admin_key": "admin-secret"})
    stack = start_stack(tmp_path, accounts(1), **settings)
    async with stack:
        admin = {b"authorization": [b"Bearer admin-secret"]}
        response = await stack.get("/admin/keys")
        assert response.code == 401
        await treq.content(response)
        page = await stack.get("/admin/")
        assert page.code == 200 and b"<script src=\"/admin/static/app.js\"" in await treq.content(page)
        response = await stack.post("/admin/keys", {"name": "dave", "rpm": 5, "models": ["gemini-*"]}, headers=admin)
        made = json.loads(await treq.content(response))
        assert response.code == 200 and made["key"].startswith("agw_") and made["record"]["rpm"] == 5
        code, _, _ = await call(stack, gemini(made["key"]))
        assert code == 200  # in effect at once, no poll needed
        listed = json.loads(await treq.content(await stack.get("/admin/keys", headers=admin)))
        assert [k["name"] for k in listed["keys"]] == ["dave"] and made["key"] not in json.dumps(listed)
        await stack.gateway.team.flush()
        usage = json.loads(await treq.content(await stack.get("/admin/usage?by=key&since=1d", headers=admin)))
        assert usage["rows"][0]["group"] == "dave" and usage["rows"][0]["requests"] == 1
        response = await stack.post("/admin/keys/dave", {"rpm": 0, "models": []}, headers=admin)
        assert json.loads(await treq.content(response))["record"]["models"] == []
        response = await stack.post("/admin/keys/dave/revoke", {}, headers=admin)
        assert json.loads(await treq.content(response))["record"]["state"] == "revoked"
        code, _, _ = await call(stack, gemini(made["key"]))
        assert code == 401
        response = await stack.post("/admin/accounts/user0@example.com/disable", {}, headers=admin)
        assert response.code == 200
        await treq.content(response)
        view = json.loads(await treq.content(await stack.get("/admin/accounts", headers=admin)))
        assert view["accounts"][0]["state"] == "disabled"


@pytest_twisted.ensureDeferred
async def test_rows_older_than_the_retention_are_deleted(tmp_path: Path) -> None:
    from gateway.team.usage import UsageRow

    store = SQLiteStore(str(tmp_path / "team.sqlite3"))
    now = reactor.seconds()
    old = UsageRow(now - 3 * 86400, "alice", "a", "m", "m", "gemini", "generateContent", 200, 1, 1, 0, 0, 1.0, 1)
    store.insert([old, old._replace(time=now - 3600)])
    stack = start_stack(tmp_path, accounts(1), team={"retention_days": 2})
    async with stack:
        await stack.gateway.team.flush()  # the prune at start runs on the writer's thread, before this
        assert [r["requests"] for r in store.summary(0, "key")] == [1]


@pytest_twisted.ensureDeferred
async def test_streams_that_end_in_an_error_are_recorded_as_errors(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "team.sqlite3"))
    carol, _ = operations.create(store, "carol", reactor.seconds())
    codex = {b"originator": [b"codex_exec"], b"User-Agent": [b"codex_exec/0.171.0"]}
    stack = start_stack(tmp_path, accounts(1), **TEAM)
    async with stack:
        script = [gemini(carol, stream=True), openai(carol, stream=True), anthropic(carol, stream=True),
                  responses(carol, stream=True)]
        for path, body, headers in script:  # each answer starts as a 200, then upstream fails mid-stream
            stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "stream_error", "after_events": 1,
                                            "status": 500, "message": "went wrong"})
            if "contents" in body:
                body["contents"][0]["parts"][0]["text"] = "hello stream 4 events"
            response = await stack.post(path, body, headers=dict(headers))
            raw = await treq.content(response)
            assert response.code == 200 and b"went wrong" in raw, (path, raw)
        # Codex is told of a failure before the start inside a 200 stream too (response.failed)
        stack.emulator.state.add_fault({"method": "streamGenerateContent", "kind": "error", "status": 429, "times": -1})
        path, body, headers = responses(carol, stream=True)
        response = await stack.post(path, body, headers={**headers, **codex})
        assert response.code == 200 and b"response.failed" in await treq.content(response)
        await stack.gateway.team.flush()
        with sqlite3.connect(str(tmp_path / "team.sqlite3")) as db:
            statuses = db.execute("SELECT route, status FROM usage ORDER BY id").fetchall()
        assert statuses == [("streamGenerateContent", 500), ("chat.completions", 500), ("messages", 500),
                            ("responses", 500), ("responses", 429)]
        [row] = SQLiteStore(str(tmp_path / "team.sqlite3")).summary(0, "key")
        assert row["requests"] == 5 and row["errors"] == 5
