"""Run the emulator inside a test's reactor on a loopback port, and stop it cleanly.

``start_emulator`` listens at once (no Deferred needed); ``stop()`` stops
listening, aborts every open connection (stalled streams too) and fires when
they are all gone, so tests leave no sockets or delayed calls behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IReactorTCP, IReactorTime

from gateway.emulator.app import ConnectionTracker, make_factory
from gateway.emulator.state import Account, EmulatorState, Settings


@dataclass
class RunningEmulator:
    """A listening emulator: its state (drive it directly in-process) and URLs."""

    state: EmulatorState
    port: IListeningPort
    factory: ConnectionTracker
    url: str = field(init=False)

    def __post_init__(self) -> None:
        address = self.port.getHost()
        self.url = f"http://{address.host}:{address.port}"

    def host_url(self, tag: str) -> str:
        """Base URL of one emulated upstream host (``{url}/{tag}``)."""
        return f"{self.url}/{tag}"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def userinfo_url(self) -> str:
        return self.url + "/oauth2/v2/userinfo"

    @property
    def auth_url(self) -> str:
        return self.url + "/o/oauth2/v2/auth"

    def stop(self) -> Deferred[None]:
        """Stop listening, then abort and wait out every open connection."""
        d = Deferred.fromCoroutine(self._stop())
        return d

    async def _stop(self) -> None:
        await self.port.stopListening()
        await self.factory.close_all()


def start_emulator(
    reactor: Any = None,
    accounts: Iterable[Account] = (),
    *,
    state: EmulatorState | None = None,
    clock: IReactorTime | None = None,
    interface: str = "127.0.0.1",
    port: int = 0,
    access_log: bool = False,
    **settings: Any,
) -> RunningEmulator:
    """Listen on ``interface:port`` (0 = any free port) with ``event_delay=0`` unless told.

    ``settings`` are :class:`Settings` fields (``event_delay``, ``stream_events``,
    ``token_lifetime``, ``onboard_polls``, ``rotate_refresh_tokens``, ``client_id`` …).
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    clock = clock or reactor
    if state is None:
        settings.setdefault("event_delay", 0.0)
        state = EmulatorState(accounts, Settings(**settings), now=clock.seconds)
    else:
        for account in accounts:
            state.put_account(account)
        if settings:
            state.settings.update(settings)
    factory = make_factory(state, clock, access_log=access_log)
    tcp: IReactorTCP = reactor
    listening = tcp.listenTCP(port, factory, interface=interface)
    return RunningEmulator(state, listening, factory)
