"""The parts that make a gateway operable: metrics, the request observer, upstream routes, reload.

Built once per gateway by ``assembly`` (so several gateways can share a
process); the service (``tap``) uses it to listen for scrapers, reload on
SIGHUP and close upstream connections last. Holds no request logic.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from gateway import logs
from gateway.config import Settings
from gateway.metrics import Metrics, MetricsResource, account_state_counts
from gateway.observe import GatewayObserver, RequestObserver
from gateway.reload import Reloader, SwappableAuth, SwappableMapper
from gateway.upstream.proxy import RoutingHTTPClient, UpstreamHTTP
from gateway.web.site import GatewaySite, Limits


class ObservedTokenEndpoint:
    """Wraps the OAuth ``TokenEndpoint``: counts refreshes by result and their time as upstream time."""

    def __init__(self, endpoint: Any, observer: RequestObserver) -> None:
        self._endpoint = endpoint
        self._observer = observer

    async def refresh(self, refresh_token: str, client: Any = None) -> Any:
        started = self._observer.now()
        try:
            grant = await self._endpoint.refresh(refresh_token, client)
        except Exception as e:
            result = "invalid_grant" if type(e).__name__ == "InvalidGrant" else "error"
            self._observer.token_refresh(result, self._observer.now() - started)
            raise
        self._observer.token_refresh("ok", self._observer.now() - started)
        return grant

    def __getattr__(self, name: str) -> Any:
        return getattr(self._endpoint, name)


class Operations:
    def __init__(self, settings: Settings, reactor: Any) -> None:
        self.settings = settings
        self.reactor = reactor
        self.pool: Any = None
        self.metrics = Metrics(self._account_counts)
        self.observer = GatewayObserver(
            self.metrics, reactor.seconds, settings.logging.account_label, after_flush=after_flush(reactor)
        )
        up = settings.upstream
        self.routes = UpstreamHTTP(
            reactor,
            connect_timeout=up.connect_timeout,
            proxy=up.proxy,
            account_proxies=up.account_proxies,
            accounts=lambda: [state.account for state in self.pool.states()] if self.pool is not None else [],
        )
        self.http = RoutingHTTPClient(self.routes)
        server = settings.server
        self.limits = Limits(server.max_body_bytes, server.max_header_bytes, server.max_url_bytes,
                             server.client_timeout, server.min_body_rate)
        self.reloader: Reloader | None = None
        m = settings.metrics
        # /metrics on the main listener unless it has listeners of its own.
        self.metrics_here = MetricsResource(self.metrics) if m.enabled and not m.listen else None
        self.public_paths = frozenset({b"/metrics"}) if m.enabled and m.public and not m.listen else frozenset()

    def _account_counts(self) -> dict[str, int]:
        if self.pool is None:
            return {}
        return account_state_counts(self.pool, self.reactor.seconds)()

    def attach(self, pool: Any, auth: SwappableAuth, mapper: SwappableMapper, mode_holders: Iterable[Any],
               check: Callable[[Settings], None] | None = None, load: Callable[[], Settings] | None = None) -> None:
        """Give the parts that exist only after the pool and the web layer are built."""
        self.pool = pool
        self.reloader = Reloader(self.settings, load or self._reload_file, check or (lambda s: None),
                                 auth, mapper, mode_holders, pool, self.observer)

    def _reload_file(self) -> Settings:
        from gateway import config

        return config.load(self.settings.source) if self.settings.source else self.settings

    def metrics_site(self) -> GatewaySite | None:
        """The Site for ``[metrics] listen`` endpoints (no key: bind it where only scrapers reach)."""
        if not self.settings.metrics.enabled or not self.settings.metrics.listen:
            return None
        return GatewaySite(MetricsResource(self.metrics), 1024, reactor=self.reactor)

    def closeCachedConnections(self) -> Deferred[Any]:
        """Close every pooled upstream connection (stands where the single HTTPConnectionPool was)."""
        return self.routes.close()


_log = Logger()


def after_flush(reactor: Any) -> Callable[[Callable[[], None]], object]:
    """Schedule work after the reactor's next I/O pass.

    ``Request.finish`` only queues the response; the socket write happens in
    the next I/O pass, which runs after the current round of timed calls. A
    call scheduled from a timed call lands in the round after that pass, so
    the client has its bytes before the request log line is built.

    Requests finishing in the same pass share one pair of timers (at c64 most
    do): two ``callLater`` per batch, not per request. The log lines of a
    batch are held and written at once (``logs.hold``): one write and flush
    per batch, not per line.
    """
    pending: list[Callable[[], None]] = []

    def run(batch: list[Callable[[], None]]) -> None:
        if len(batch) == 1:  # c1: one line, nothing to gather
            each(batch)
            return
        logs.hold()
        try:
            each(batch)
        finally:
            logs.release()

    def each(batch: list[Callable[[], None]]) -> None:
        for work in batch:
            try:
                work()
            except Exception:
                _log.failure("a deferred log call failed")

    def armed() -> None:
        batch = pending[:]  # what came later waits for its own pass
        del pending[:]
        reactor.callLater(0, run, batch)

    def later(work: Callable[[], None]) -> object:
        pending.append(work)
        if len(pending) == 1:
            reactor.callLater(0, armed)
        return None

    return later
