"""Wiring: settings + reactor -> the running parts of one gateway.

The only place that knows how the pieces fit; tests use it to run a real
gateway in-process on a loopback port.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.web.client import HTTPConnectionPool

from gateway.config import Settings
from gateway.forward import Forwarder
from gateway.interfaces import IAccountBackendFactory, IAuthStrategyFactory, IModelMapperFactory, ISelectionPolicyFactory
from gateway.plugin_loading import build
from gateway.plugins.builtin import AllowAll
from gateway.pool.pool import AccountPool
from gateway.upstream.client import UpstreamClient
from gateway.upstream.fetch import FetchPolicy
from gateway.upstream.oauth import AccessTokens, TokenEndpoint
from gateway.upstream.onboarding import ProjectResolver
from gateway.resolution import ModelResolver
from gateway.upstream import oauth_clients
from gateway.upstream.quota import PoolCatalogue, QuotaPoller
from gateway.upstream.version import ClientVersion
from gateway.pool.decisions import Tuning
from gateway.web.admin import AdminDispatch, AdminResource
from gateway.web.app import GatewayApp
from gateway.web.auth import AuthWrapper
from gateway.web.compat_routes import CompatApp, CompatDispatch, ShapedAuth
from gateway.web.responses_routes import OpenAIExtraDispatch, ResponsesApp
from gateway.compat.responses_store import ResponseStore
from gateway.web.site import GatewaySite
from gateway.operations import ObservedTokenEndpoint, Operations
from gateway.reload import SwappableAuth, SwappableMapper
from gateway.web.dashboard import AdminFront, Dashboard
from gateway.web.front import CORSResource, ModelCallFront, Router
from gateway.web.guard import RequestGuard
from gateway.shared.wiring import build_shared, hook


@attrs.define
class Gateway:
    settings: Settings
    site: GatewaySite
    pool: AccountPool
    forwarder: Forwarder
    tokens: AccessTokens
    http_pool: HTTPConnectionPool
    quota: QuotaPoller | None = None
    ops: Operations | None = None
    version: ClientVersion | None = None
    team: Any = None
    shared: Any = None
    admin: Any = None

    def close(self) -> Deferred[Any]:
        """Stop quota polling, write the last usage rows, close idle upstream connections (the last step of a shutdown)."""
        if self.quota is not None:
            self.quota.stop()
        self.forwarder.projects.stop()  # loadCodeAssist a cancelled poll was waiting for
        if self.version is not None:
            self.version.stop()
        if self.shared is not None:
            self.shared.stop()
        if self.team is not None:
            d = self.team.close()
            d.addBoth(lambda _: self.http_pool.closeCachedConnections())
            return d
        return self.http_pool.closeCachedConnections()


def assemble(settings: Settings, reactor: Any) -> Gateway:
    ops = Operations(settings, reactor)  # metrics, request observer, upstream routes (direct or through proxies)
    http_pool = ops  # closes the pooled connections of every route
    http = ops.http
    up = settings.upstream

    backend = build(IAccountBackendFactory, settings.accounts.backend, "accounts.backend", settings)
    policy = build(ISelectionPolicyFactory, settings.accounts.selection, "accounts.selection", settings)
    mapper = SwappableMapper(build(IModelMapperFactory, settings.models.mapper, "models.mapper", settings))
    mode = settings.effective_auth_mode()
    strategy = SwappableAuth(AllowAll() if mode == "off" else build(IAuthStrategyFactory, settings.auth.strategy, "auth.strategy", settings))

    acc = settings.accounts
    pool = AccountPool(backend, policy, reactor.seconds, session_ttl=acc.session_ttl, max_in_flight=acc.max_in_flight,
                       check_interval=acc.store_check_interval)
    # The client version comes from the update manifest, in the background (gateway.upstream.version).
    version = ClientVersion(http, reactor, url=up.version_url, floor=up.version_floor, template=up.user_agent,
                            interval=up.version_refresh_seconds, timeout=min(up.response_timeout, 30.0))
    client = UpstreamClient(ops.routes, up.hosts, version.user_agent, up.response_timeout, reactor)
    client.observer = ops.observer
    clients = oauth_clients.from_settings(up)  # each account refreshes with its own OAuth client
    default_client = clients.named(None)
    endpoint = ObservedTokenEndpoint(
        TokenEndpoint(http, up.token_url, default_client.client_id, default_client.client_secret, up.token_timeout, reactor), ops.observer
    )
    tokens = AccessTokens(pool, endpoint, reactor.seconds, up.refresh_margin, clients=clients)
    projects = ProjectResolver(pool, client, reactor)
    projects.client_name = clients.name_of
    projects.label = ops.observer.label
    quota = QuotaPoller(pool, tokens, projects, client, reactor, acc.quota_poll_interval)
    tuning = Tuning(acc.short_retry_max, acc.default_cooldown, acc.capacity_backoff, validation_rest=acc.validation_rest_seconds)
    forwarder = Forwarder(
        pool, tokens, projects, client, up.max_attempts, reactor.seconds,
        reactor=reactor, tuning=tuning, queue_timeout=acc.queue_timeout, session_header=acc.session_header, quota=quota,
    )
    forwarder.observer = ops.observer
    forwarder.version = version
    forwarder.use_credits = up.use_credits
    pool.spend_credits = up.use_credits == "when_quota_exhausted"
    forwarder.request_timeout, forwarder.body_timeout, forwarder.max_answer_bytes = up.request_timeout, up.body_timeout, up.max_answer_bytes
    catalogue = PoolCatalogue(quota, forwarder, reactor.seconds, up.models_cache_seconds)
    web = GatewayApp(forwarder, mapper, reactor, up.stream_idle_timeout, catalogue)
    resolver = ModelResolver(catalogue, mapper)  # every door resolves names here (docs/models.md)
    web.resolver = resolver
    forwarder.catalogue = catalogue  # the hygiene step reads the live catalogue
    admin = AdminResource(pool, reactor.seconds, mode, acc.selection)
    admin.version = version
    admin.clients = clients
    fetch = settings.image_fetch
    compat = CompatApp(forwarder, resolver, reactor, up.stream_idle_timeout, http, image_fetch=FetchPolicy(
        tuple(n for n in fetch.allow_networks if n != "unix"), fetch.max_bytes, fetch.max_redirects, fetch.timeout))
    calls = web.resource()
    gemini = AuthWrapper(Router(AdminDispatch(calls, admin), ops.metrics_here), strategy, mode, ops.public_paths)
    responses = ResponsesApp(compat, ResponseStore(settings.responses.store_entries, settings.responses.store_ttl,
                                                     settings.responses.store_max_bytes))
    shaped = ShapedAuth(OpenAIExtraDispatch(responses.resource(), compat.resource()), strategy, mode)
    team = attach_team(settings, reactor, ops, forwarder)
    shared = build_shared(settings, reactor)
    hook(shared, reactor, pool, tokens, projects, quota, forwarder, team, ops)
    admin.shared = shared
    dashboard = Dashboard(team, pool, admin, settings.team.admin_key, reactor.seconds, quota, version.user_agent)
    cors = CORSResource(CompatDispatch(AdminFront(gemini, dashboard), shaped), settings.server.cors_origins)
    root = ModelCallFront(RequestGuard(cors), cors, gemini, calls)  # model calls skip to ``calls``, same checks
    site = GatewaySite(root, settings.server.max_body_bytes, reactor=reactor, limits=ops.limits, observer=ops.observer,
                       trusted_proxies=settings.server.trusted_proxies)
    ops.attach(pool, strategy, mapper, [gemini, shaped, admin])  # SIGHUP swaps keys, mode and mapping in these
    quota.label = ops.observer.label
    quota.start()
    version.start()
    return Gateway(settings, site, pool, forwarder, tokens, http_pool, quota, ops, version, team, shared, admin)


def attach_team(settings: Settings, reactor: Any, ops: Operations, forwarder: Forwarder) -> Any:
    """Per-key limits on the forwarder and the usage feed on the observer (gateway.team)."""
    from gateway.config import ConfigError
    from gateway.team.service import Team, team_for
    from gateway.team.sqlite_store import SQLiteStore, StoreProblem

    try:
        team = team_for(settings)
    except StoreProblem as e:
        if settings.auth.strategy == "keys" or settings.team.admin_key:
            raise ConfigError("team.store", f"{e}; set [team] store to a writable path") from None
        # Nobody asked for keys or the dashboard: serve without usage recording rather than not at all.
        from twisted.logger import Logger

        Logger(namespace="antigravity_gateway.team").warn("usage is not recorded: {why}", why=str(e))
        team = Team(SQLiteStore(":memory:"))
        settings = config_without_usage(settings)
    team.clock = reactor.seconds
    team.metrics = ops.metrics
    team.load_keys()
    forwarder.gate = team.gate
    ops.observer.sinks.append(team.finished)
    team.start(reactor, settings)
    return team


def config_without_usage(settings: Settings) -> Settings:
    from gateway.config import override

    return override(settings, "team", record_usage=False)
