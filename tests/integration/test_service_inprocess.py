"""GatewayService in the test's reactor: the metrics listener of its own, and the ordered drain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.error import ConnectionRefusedError
from twisted.web.client import Agent, HTTPConnectionPool

from gateway import config
from gateway.config import Settings
from gateway.emulator.testing import start_emulator
from gateway.tap import GatewayService
from tests.integration.harness import CLIENT_ID, CLIENT_SECRET, accounts

KEY = "gw-key-0123456789abcdef"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "stream 6 events"}]}]}
SSE = "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse"


async def running(tmp_path: Path, emulator: Any, **sections: dict[str, Any]) -> GatewayService:
    store = tmp_path / "accounts.json"
    store.write_text(json.dumps({"accounts": [{"email": a.email, "refresh_token": a.refresh_token} for a in accounts(1)]}))
    settings = config.override(Settings(), "upstream", hosts=(emulator.url,), token_url=emulator.token_url,
                               client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                               version_url=emulator.url + "/manifest/latest-arm64-mac.yml")
    settings = config.override(settings, "accounts", path=str(store))
    settings = config.override(settings, "server", listen=("tcp:0:interface=127.0.0.1",))
    for section, changes in sections.items():
        settings = config.override(settings, section, **changes)
    service = GatewayService(settings, reactor)
    service.startService()
    await service._listening
    return service


def url(port: Any) -> str:
    return f"http://127.0.0.1:{port.getHost().port}"


@pytest_twisted.ensureDeferred
async def test_metrics_on_a_listener_of_their_own(tmp_path: Path) -> None:
    emulator = start_emulator(reactor, accounts(1))
    pool = HTTPConnectionPool(reactor, persistent=False)
    client = HTTPClient(Agent(reactor, pool=pool))
    service = await running(tmp_path, emulator, auth={"mode": "strict", "keys": (KEY,)},
                            metrics={"listen": ("tcp:0:interface=127.0.0.1",)})
    try:
        main, scrape = service.ports
        answer = await client.get(url(scrape) + "/metrics")  # no key: this port is for scrapers
        text = (await treq.content(answer)).decode()
        assert answer.code == 200 and "antigravity_gateway_requests_in_flight" in text
        not_here = await client.get(url(main) + "/metrics", headers={b"x-goog-api-key": [KEY.encode()]})
        body = json.loads(await treq.content(not_here))
        assert not_here.code == 404 and body["error"]["status"] == "NOT_FOUND"
    finally:
        await service.stopService()
        await emulator.stop()


@pytest_twisted.ensureDeferred
async def test_stop_service_drains_in_order(tmp_path: Path) -> None:
    emulator = start_emulator(reactor, accounts(1), event_delay=0.05)
    pool = HTTPConnectionPool(reactor, persistent=False)
    client = HTTPClient(Agent(reactor, pool=pool))
    service = await running(tmp_path, emulator)
    (port,) = service.ports
    base = url(port)
    try:
        response = await client.post(base + SSE, json=HELLO)
        assert response.code == 200
        stopping = service.stopService()
        assert not stopping.called  # a stream is in flight
        body = await treq.content(response)
        await stopping
        assert body.count(b"data: ") == 6
        try:
            await client.get(base + "/healthz")
        except ConnectionRefusedError:
            pass
        else:
            raise AssertionError("a new connection was accepted after the drain")
        assert not service.gateway.site.channels
        assert all(not p._connections for p in service.gateway.ops.routes.pools.values())
    finally:
        if service.running:
            await service.stopService()
        await emulator.stop()
