"""The client version in use: the update manifest, read at start and every few hours in the background.

``current()`` never blocks and never does I/O: requests read the last good
version (or the floor). Fetches have a deadline; a failed fetch keeps the
last good version and is logged once until a fetch succeeds again. After
Cloud Code refuses the version, ``refresh_soon()`` reads the manifest at
once (at most every ``MIN_SPACING`` seconds). Parsing and comparing are
``gateway.protocol.client_version``'s.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.protocol import client_version

log = Logger()

#: An immediate refresh (after a refusal) happens at most this often.
MIN_SPACING = 10.0
MANIFEST_LIMIT = 64 * 1024


class ClientVersion:
    def __init__(
        self,
        http: Any,
        reactor: Any,
        *,
        url: str,
        floor: str,
        template: str,
        interval: float,
        timeout: float = 15.0,
    ) -> None:
        self._http = http
        self._reactor = reactor
        self.url = url
        self.floor = floor
        self.template = template
        self.interval = interval
        self.timeout = timeout
        #: The manifest's version at the last good fetch, and when.
        self.fetched: str | None = None
        self.fetched_at: float | None = None
        self.last_error: str | None = None
        self._failing = False
        self._loop: LoopingCall | None = None
        self._inflight: Deferred[str] | None = None
        self._last_soon = float("-inf")
        self._ua: tuple[str | None, str] | None = None

    # -- reads (request path) --

    def current(self) -> str:
        """The version sent now: max(floor, last fetched)."""
        return client_version.effective(self.floor, self.fetched)

    def user_agent(self) -> str:
        """The User-Agent for upstream calls (read on every call: cached per fetched version)."""
        cached = self._ua
        if cached is None or cached[0] != self.fetched:
            cached = self._ua = (self.fetched, client_version.user_agent(self.template, self.current()))
        return cached[1]

    def view(self) -> dict[str, Any]:
        """For the admin view and logs."""
        return {
            "version": self.current(),
            "user_agent": self.user_agent(),
            "floor": self.floor,
            "manifest_url": self.url or None,
            "manifest_version": self.fetched,
            "fetched_at": self.fetched_at,
            "last_error": self.last_error,
        }

    # -- background --

    def start(self) -> None:
        """Fetch now and every ``interval`` seconds (no URL: the floor, no fetching)."""
        log.info("antigravity-gateway client version {version} (User-Agent {ua!r}); manifest {url}",
                 version=self.current(), ua=self.user_agent(), url=self.url or "(none: the floor is used)")
        if not self.url or self._loop is not None:
            return
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = self._reactor
        self._loop.start(self.interval, now=True).addErrback(lambda f: log.failure("client version timer stopped", failure=f))

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._inflight is not None:
            self._inflight.cancel()

    def settled(self) -> Deferred[str]:
        """Fires with the version in use once no fetch is in flight (tests wait on this)."""
        if self._inflight is None:
            return succeed(self.current())
        d: Deferred[str] = Deferred()
        self._inflight.addBoth(lambda _: d.callback(self.current()) if not d.called else None)
        return d

    def refresh_soon(self) -> None:
        """Cloud Code refused the version: read the manifest now (rate-limited, never raises)."""
        now = float(self._reactor.seconds())
        if not self.url or now - self._last_soon < MIN_SPACING:
            return
        self._last_soon = now
        self.refresh()

    def refresh(self) -> Deferred[str]:
        """One fetch (shared while in flight); fires with the version in use, never fails."""
        if self._inflight is not None:
            return self._inflight
        d = Deferred.fromCoroutine(self._fetch())
        d.addTimeout(self.timeout, self._reactor)
        self._inflight = d

        def done(result: Any) -> str:
            self._inflight = None
            if isinstance(result, Failure):
                self._failed(result)
            return self.current()

        d.addBoth(done)
        return d

    async def _fetch(self) -> str:
        before = self.current()
        response = await self._http.get(self.url, timeout=self.timeout)
        body = await response.content()
        if response.code != 200:
            raise ValueError(f"HTTP {response.code}")
        found = client_version.from_manifest(body[:MANIFEST_LIMIT])
        if found is None:
            raise ValueError("no version: key in the manifest")
        self.fetched = found
        self.fetched_at = float(self._reactor.seconds())
        self.last_error = None
        if self._failing:
            log.info("client version manifest readable again: {version}", version=found)
        self._failing = False
        if self.current() != before:
            log.info("antigravity-gateway client version now {version} (User-Agent {ua!r})", version=self.current(), ua=self.user_agent())
        return self.current()

    def _failed(self, failure: Failure) -> None:
        self.last_error = failure.getErrorMessage() or failure.type.__name__
        if not self._failing:
            log.warn(
                "could not read the client version manifest {url}: {why}; keeping {version} "
                "(raise [upstream] version_floor if Cloud Code refuses it)",
                url=self.url, why=self.last_error, version=self.current(),
            )
        self._failing = True
