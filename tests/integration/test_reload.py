"""Reload in-process: what a SIGHUP swaps (keys, auth mode, mapping, accounts) and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.logger import globalLogPublisher

from gateway import config
from tests.integration.harness import accounts, start_stack

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
KEY = "gw-key-0123456789abcdef"


class Lines:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        if "reload" in event:
            self.events.append(event)

    def __enter__(self) -> "Lines":
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        globalLogPublisher.removeObserver(self)


@pytest_twisted.ensureDeferred
async def test_reload_turns_auth_on_and_maps_models_anew(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(2), store_accounts=[{"email": "user0@example.com", "refresh_token": "1//refresh-0"}]) as stack:
        reloader = stack.gateway.ops.reloader
        before = stack.gateway.settings
        first = await stack.post("/v1beta/models/house-model:generateContent", HELLO)
        await treq.content(first)
        assert first.code == 404  # not mapped yet: no model or alias has that name
        fresh = config.override(before, "auth", mode="strict", keys=(KEY,))
        fresh = config.override(fresh, "models", mapping=(("house-model", "gemini-3-flash"),))
        fresh = config.override(fresh, "upstream", max_attempts=5)
        store = json.loads(stack.store.read_text())
        store["accounts"].append({"email": "user1@example.com", "refresh_token": "1//refresh-1"})
        stack.store.write_text(json.dumps(store))
        reloader.load = lambda: fresh
        with Lines() as seen:
            assert reloader.reload() is True
        assert [e["reload"] for e in seen.events] == ["ok", "ok"]
        assert "upstream.max_attempts" in seen.events[1]["keys"]  # logged as needing a restart
        assert len(stack.gateway.pool.states()) == 2
        refused = await stack.post("/v1beta/models/house-model:generateContent", HELLO)
        assert refused.code == 401
        await treq.content(refused)
        health = await stack.get("/healthz")  # strict: even health needs the key now
        assert health.code == 401
        await treq.content(health)
        ok = await stack.post("/v1beta/models/house-model:generateContent", HELLO, headers={b"x-goog-api-key": [KEY.encode()]})
        assert ok.code == 200, await treq.content(ok)
        await treq.content(ok)
        assert stack.emulator.state.requests("generateContent")[-1]["body"]["model"] == "gemini-3-flash"


@pytest_twisted.ensureDeferred
async def test_a_refused_reload_changes_nothing(tmp_path: Path) -> None:
    async with start_stack(tmp_path, accounts(1), auth={"mode": "strict", "keys": (KEY,)}) as stack:
        reloader = stack.gateway.ops.reloader
        key = {b"x-goog-api-key": [KEY.encode()]}

        def unknown_plugin() -> config.Settings:
            return config.override(stack.gateway.settings, "auth", strategy="no-such-plugin", keys=("other-key",))

        def broken_file() -> config.Settings:
            raise config.ConfigError("server.lisen", "unknown key (known: listen, …)")

        for load in (unknown_plugin, broken_file):
            reloader.load = load
            with Lines() as seen:
                assert reloader.reload() is False
            (event,) = seen.events
            assert event["reload"] == "refused" and event["log_level"].name == "error"
        stack.store.write_text("{broken")
        reloader.load = lambda: stack.gateway.settings
        assert reloader.reload() is False
        assert len(stack.gateway.pool.states()) == 1
        response = await stack.post("/v1beta/models/gemini-3-flash:generateContent", HELLO, headers=key)
        assert response.code == 200, await treq.content(response)
        await treq.content(response)
