"""A real gateway and emulator on loopback ports inside the test's reactor.

``start_stack`` gives a listening emulator and a gateway wired to it (accounts
written to a temporary JSON store); ``stop`` closes every port, connection
and pooled upstream connection so tests leave nothing behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import treq
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import Factory
from twisted.logger import globalLogPublisher
from twisted.web.client import Agent, HTTPConnectionPool

from gateway import config
from gateway.assembly import Gateway, assemble
from gateway.config import Settings
from gateway.emulator.state import Account as EmulatorAccount
from gateway.emulator.testing import RunningEmulator, start_emulator

CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"


def accounts(n: int, *, projects: bool = True) -> list[EmulatorAccount]:
    return [
        EmulatorAccount(f"user{i}@example.com", f"1//refresh-{i}", f"project-{i}" if projects else None,
                          "standard-tier" if projects else "free-tier")
        for i in range(n)
    ]


@dataclass
class Stack:
    emulator: RunningEmulator
    gateway: Gateway
    port: Any
    store: Path
    client: HTTPClient
    client_pool: HTTPConnectionPool
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    def post(self, path: str, body: Any, **kwargs: Any) -> Deferred[Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = kwargs.pop("headers", {})
        headers.setdefault(b"Content-Type", [b"application/json"])
        return self.client.post(self.url + path, data=data, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Deferred[Any]:
        return self.client.get(self.url + path, **kwargs)

    def stored(self) -> list[dict[str, Any]]:
        return json.loads(self.store.read_text())["accounts"]

    async def __aenter__(self) -> "Stack":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def stop(self) -> None:
        await self.port.stopListening()
        await self.client_pool.closeCachedConnections()
        await _close_connections(self.port)
        await self.gateway.close()
        await self.emulator.stop()


async def _close_connections(port: Any) -> None:
    protocols = list(getattr(port.factory, "_open", {}))
    waits = []
    for protocol in protocols:
        transport = channel_transport(protocol)
        if transport is not None:
            d: Deferred[None] = Deferred()
            port.factory._closed.setdefault(protocol, []).append(d)
            transport.abortConnection()
            waits.append(d)
    if waits:
        await DeferredList(waits)


def channel_transport(protocol: Any) -> Any:
    """The TCP transport under a Site's protocol (the HTTP channel is wrapped)."""
    return getattr(getattr(protocol, "_channel", protocol), "transport", None)


def track_connections(site: Factory) -> None:
    """Wrap ``buildProtocol`` so the stack can abort what is still open at the end."""
    site._open = {}  # type: ignore[attr-defined]
    site._closed = {}  # type: ignore[attr-defined]
    original = site.buildProtocol

    def build(addr: Any) -> Any:
        protocol = original(addr)
        site._open[protocol] = True  # type: ignore[attr-defined]
        lost = protocol.connectionLost

        def connectionLost(reason: Any) -> None:
            site._open.pop(protocol, None)  # type: ignore[attr-defined]
            try:
                lost(reason)
            finally:
                for d in site._closed.pop(protocol, []):  # type: ignore[attr-defined]
                    d.callback(None)

        protocol.connectionLost = connectionLost
        return protocol

    site.buildProtocol = build  # type: ignore[method-assign]


def start_stack(
    tmp_path: Path,
    upstream_accounts: Iterable[EmulatorAccount] = (),
    *,
    store_accounts: list[dict[str, Any]] | None = None,
    hosts: Iterable[str] = ("",),
    emulator_settings: dict[str, Any] | None = None,
    **settings: dict[str, Any],
) -> Stack:
    """Emulator + gateway; ``settings`` are per-section overrides (``upstream={...}``)."""
    upstream_accounts = list(upstream_accounts)
    emulator = start_emulator(reactor, upstream_accounts, **(emulator_settings or {}))
    store = tmp_path / "accounts.json"
    if store_accounts is None:
        store_accounts = [{"email": a.email, "refresh_token": a.refresh_token} for a in upstream_accounts]
    store.write_text(json.dumps({"accounts": store_accounts}))
    gateway_settings = Settings()
    gateway_settings = config.override(
        gateway_settings,
        "upstream",
        hosts=tuple(emulator.host_url(h) if h else emulator.url for h in hosts),
        token_url=emulator.token_url,
        # No client_id: accounts refresh with the built-in default client (antigravity), which the emulator knows.
        version_url=emulator.url + "/manifest/latest-arm64-mac.yml",
    )
    # Tests edit the store and expect the very next request to see it: no [accounts] store_check_interval.
    gateway_settings = config.override(gateway_settings, "accounts", path=str(store), store_check_interval=0.0)
    for section, changes in settings.items():
        gateway_settings = config.override(gateway_settings, section, **changes)
    gateway = assemble(gateway_settings, reactor)
    track_connections(gateway.site)
    port = reactor.listenTCP(0, gateway.site, interface="127.0.0.1")
    client_pool = HTTPConnectionPool(reactor, persistent=False)
    client = HTTPClient(Agent(reactor, pool=client_pool))
    return Stack(emulator, gateway, port, store, client, client_pool)


class Events:
    """The request log events (``antigravity_gateway.request``) published while the block runs."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_namespace") == "antigravity_gateway.request":
            self.events.append(event)

    def __enter__(self) -> "Events":
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        globalLogPublisher.removeObserver(self)


async def body_json(response: Any) -> Any:
    return json.loads(await treq.content(response))
