"""What ``twist antigravity-gateway`` runs: command-line options and the service.

Options load and check everything that can be checked before listening
(config, plugins, the account store), so a bad setting stops start-up with
one line. The service wires the parts together with the reactor it is given.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage

from gateway import __version__, config, logs, startup
from gateway.config import ConfigError, Settings
from gateway.interfaces import IAccountBackendFactory, IAuthStrategyFactory, IModelMapperFactory, ISelectionPolicyFactory
from gateway.plugin_loading import build
from gateway.pool.json_store import StoreError

log = Logger()


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Serve the Gemini API (/v1beta and /v1: generateContent, streamGenerateContent, "
        "countTokens, models), OpenAI's (/v1/chat/completions, /v1/responses, /v1/images/*) and "
        "Anthropic's (/v1/messages) through Cloud Code v1internal and a pool of Google accounts. "
        "Settings come from a TOML file (--config, $ANTIGRAVITY_GATEWAY_CONFIG, or "
        "~/.config/antigravity-gateway/config.toml); options override it. Every key: docs/configuration.md."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file."],
        ["port", "p", None, "Shorthand for --listen tcp:PORT:interface=127.0.0.1."],
        ["accounts", None, None, "Account store path ([accounts] path)."],
        ["token-url", None, None, "OAuth token endpoint ([upstream] token_url)."],
        ["client-id", None, None, "OAuth client id of the default client ([upstream] client_id; see docs/accounts-and-clients.md)."],
        ["client-secret", None, None, "OAuth client secret ([upstream] client_secret)."],
        ["user-agent", None, None, "User-Agent sent upstream ([upstream] user_agent)."],
        ["max-attempts", None, None, "Accounts tried per request ([upstream] max_attempts).", int],
        ["auth-mode", None, None, "off | strict | all_except_health | auto ([auth] mode)."],
        ["auth-strategy", None, None, "IAuthStrategy plugin name ([auth] strategy)."],
        ["max-body-bytes", None, None, "Largest request body accepted ([server] max_body_bytes).", int],
        ["workers", None, None, "Processes serving the listeners: N or auto ([server] workers)."],
    ]
    optFlags = [
        ["allow-public-without-auth", None, "Allow a non-loopback listener with auth off."],
        ["log-json", None, "Log one JSON object a line ([logging] format = \"json\"); text lines otherwise."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["upstream"] = []
        self["api-key"] = []
        self.settings: Settings | None = None

    def opt_listen(self, endpoint: str) -> None:
        """Listen on a Twisted endpoint string (repeatable), e.g. tcp:8045:interface=127.0.0.1, unix:/run/gw.sock, systemd:domain=INET:index=0."""
        self["listen"].append(endpoint)

    def opt_upstream(self, url: str) -> None:
        """A Cloud Code host, tried in the order given (repeatable; replaces [upstream] hosts)."""
        self["upstream"].append(url)

    def opt_api_key(self, key: str) -> None:
        """An accepted client API key (repeatable; adds to [auth] keys). Prefer the config file: options show in ps."""
        self["api-key"].append(key)

    def opt_version(self) -> None:
        """Print the gateway's version and exit."""
        print(f"antigravity-gateway {__version__}")
        raise SystemExit(0)

    def postOptions(self) -> None:
        try:
            self.settings = settings_from_options(self)
            check_startup(self.settings)
        except (ConfigError, StoreError) as e:
            raise SystemExit(f"antigravity-gateway: {e}") from None
        choose_log_format(self, self.settings)


def choose_log_format(options: Any, settings: Settings) -> None:
    """Tell ``twist`` how to write logs: text unless JSON was asked for (twist alone picks JSON off a TTY)."""
    parent = getattr(options, "parent", None)
    if parent is None:
        return
    fmt = logs.choose_format(logs.twist_log_format(sys.argv), options["log-json"], settings.logging.format)
    parent["fileLogObserverFactory"] = logs.observer_factory(fmt)
    parent["logFormat"] = fmt


def settings_from_options(options: Any) -> Settings:
    path = options["config"] or config.default_config_path()
    settings = config.load(path)
    listen = list(options["listen"])
    if options["port"] is not None:
        listen.insert(0, f"tcp:{options['port']}:interface=127.0.0.1")
    server: dict[str, Any] = {}
    if listen:
        server["listen"] = tuple(listen)
    if options["max-body-bytes"] is not None:
        server["max_body_bytes"] = options["max-body-bytes"]
    if options["allow-public-without-auth"]:
        server["allow_public_without_auth"] = True
    if options["workers"] is not None:
        server["workers"] = options["workers"]
    upstream: dict[str, Any] = {}
    if options["upstream"]:
        upstream["hosts"] = tuple(options["upstream"])
    for option, key in (("token-url", "token_url"), ("client-id", "client_id"), ("client-secret", "client_secret"),
                        ("user-agent", "user_agent"), ("max-attempts", "max_attempts")):
        if options[option] is not None:
            upstream[key] = options[option]
    auth: dict[str, Any] = {}
    if options["auth-mode"] is not None:
        auth["mode"] = options["auth-mode"]
    if options["auth-strategy"] is not None:
        auth["strategy"] = options["auth-strategy"]
    if options["api-key"]:
        auth["keys"] = tuple(settings.auth.keys) + tuple(options["api-key"])
    for section, changes in (("server", server), ("upstream", upstream), ("auth", auth)):
        if changes:
            settings = config.override(settings, section, **changes)
    if options["accounts"] is not None:
        settings = config.override(settings, "accounts", path=options["accounts"])
    return settings


def check_startup(settings: Settings) -> None:
    """Everything that must hold before listening; raises ConfigError/StoreError."""
    mode = settings.effective_auth_mode()
    if mode == "off":
        public = [e for e in settings.server.listen if not config.is_loopback_endpoint(e)]
        if public and not settings.server.allow_public_without_auth:
            raise ConfigError(
                "auth.mode",
                f"auth is off but {public[0]!r} is not a loopback address: set [auth] mode and keys, "
                "or [server] allow_public_without_auth = true if something in front authenticates",
            )
    else:
        build(IAuthStrategyFactory, settings.auth.strategy, "auth.strategy", settings)
    if settings.server.workers != 1:
        from gateway.workers import refuse_for_workers

        for description in (*settings.server.listen, *settings.metrics.listen):
            problem = refuse_for_workers(description)
            if problem:
                raise ConfigError("server.workers", f"{description!r}: {problem}")
    build(IModelMapperFactory, settings.models.mapper, "models.mapper", settings)
    build(ISelectionPolicyFactory, settings.accounts.selection, "accounts.selection", settings)
    backend = build(IAccountBackendFactory, settings.accounts.backend, "accounts.backend", settings)
    backend.load()


#: Container allocations between young-generation collections (CPython's default is 700).
#: With 64 requests in flight the live set grows by 700 objects every few requests, so the
#: default collected 176 times per 1,000 requests and promoted live request objects into
#: the older generations: 44-55 µs of collector time per request (timed with ``gc.callbacks``,
#: bench/PROFILE.md "Round 4"). At 20,000 it is about 1 µs. The gateway makes no reference
#: cycles per request (every request's objects are freed by reference counting), so the
#: young generation holds at most a few MB before a collection.
GC_THRESHOLDS = (20_000, 10, 10)


def settle_heap() -> None:
    """Move everything built at start-up out of the garbage collector's sight, and collect less often.

    Modules, settings, the pool and the routes live as long as the process;
    without ``gc.freeze`` every full collection walks them all again while a
    request waits (the p99 of small requests). Called once the gateway is built.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class GatewayService(Service):
    """Builds the gateway on start (with the running reactor), listens, reloads on SIGHUP,
    and drains on stop: one service, so the steps happen in order (TWISTED.md)."""

    name = "antigravity-gateway"

    def __init__(self, settings: Settings, reactor: Any = None, reload_settings: Callable[[], Settings] | None = None,
                 inherited: str | None = None) -> None:
        self.settings = settings
        #: A worker's sockets from its parent (``AGW_WORKER_FDS``): adopted instead of listening.
        self.inherited = inherited
        self._reactor = reactor
        self._reload_settings = reload_settings
        self.ports: list[Any] = []
        self.gateway: Any = None
        self.metrics_site: Any = None
        self._previous_hup: Any = None
        #: The line printed when start-up failed (the process then exits with status 1).
        self.failure: str | None = None

    def startService(self) -> None:
        super().startService()
        from gateway.assembly import assemble

        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        try:
            self.gateway = assemble(self.settings, reactor)
        except (ConfigError, StoreError) as e:
            self._fail(f"antigravity-gateway: cannot start: {e}", reactor)
            self._exit_if_failed()
            return
        ops = self.gateway.ops
        if ops is not None and ops.reloader is not None:
            if self._reload_settings is not None:
                ops.reloader.load = self._reload_settings
            ops.reloader.check = check_startup
        self.metrics_site = ops.metrics_site() if ops is not None else None
        api: list[Any] = list(self.settings.server.listen)
        metrics: list[Any] = list(self.settings.metrics.listen)
        if self.inherited is not None:
            from gateway.workers import inherited_endpoints

            api, metrics = inherited_endpoints(reactor, self.inherited)
            if self.gateway.admin is not None:
                self.gateway.admin.worker = worker_identity()
        listening = [self._listen(reactor, description, self.gateway.site) for description in api]
        if self.metrics_site is not None:
            listening += [self._listen(reactor, d, self.metrics_site, "metrics ") for d in metrics]
        self._listening = DeferredList(listening, fireOnOneErrback=True, consumeErrors=True)
        self._listening.addCallbacks(lambda _: self._log_summary(reactor), self._listen_failed, errbackArgs=(reactor,))
        if self.failure is not None:
            self._exit_if_failed()
            return
        self._install_sighup(reactor)
        settle_heap()

    def _listen(self, reactor: Any, description: Any, site: Any, what: str = "") -> Deferred[Any]:
        try:
            endpoint = serverFromString(reactor, description) if isinstance(description, str) else description
            d = endpoint.listen(site)
        except Exception as e:  # a malformed endpoint string raises before any Deferred exists
            d = Deferred()
            d.errback(e)
        if not isinstance(description, str):
            description = "a socket inherited from the parent (worker %d)" % worker_identity()["index"]

        def listening(port: Any) -> Any:
            self.ports.append(port)
            return port

        def failed(failure: Any) -> Any:
            if self.failure is None:
                self._fail(startup.listen_failure_line(description, failure.value), reactor)
            return failure

        return d.addCallbacks(listening, failed)

    def _log_summary(self, reactor: Any) -> None:
        try:
            self._summary(reactor)
        except Exception:  # a summary that cannot be built must not stop a gateway that listens
            log.failure("antigravity-gateway: the start-up summary failed")

    def _summary(self, reactor: Any) -> None:
        """The start-up block: what a person needs to know this gateway is the one they meant."""
        from gateway.commands import accounts_command

        s = self.settings
        mode = s.effective_auth_mode()
        pool = self.gateway.pool
        accounts = [state.account for state in pool.states()]
        lines = startup.summary_lines(
            listen=s.server.listen,
            metrics_listen=s.metrics.listen if self.metrics_site is not None else (),
            auth=startup.auth_text(mode, len(s.auth.keys), s.auth.strategy),
            store=pool.backend.describe(),
            accounts=startup.accounts_lines(accounts, reactor.seconds(), accounts_command()),
            client=startup.client_version(s, getattr(self.gateway, "version", None)),
            plugins={"backend": s.accounts.backend, "selection": s.accounts.selection, "mapper": s.models.mapper,
                     "auth": s.auth.strategy if mode != "off" else "off"},
            config_source=s.source,
        )
        for line in lines:
            log.info("{line}", line=line)

    def reload(self) -> bool:
        """Re-read accounts, API keys and model mapping (SIGHUP); refused with a log line when bad."""
        ops = self.gateway.ops if self.gateway is not None else None
        if ops is None or ops.reloader is None:
            return False
        log.info("antigravity-gateway reloading (SIGHUP)")
        return ops.reloader.reload()

    def _install_sighup(self, reactor: Any) -> None:
        if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
            return

        def hangup(signum: int, frame: Any) -> None:
            reactor.callFromThread(self.reload)

        self._previous_hup = signal.signal(signal.SIGHUP, hangup)

    def _restore_sighup(self) -> None:
        if self._previous_hup is not None:
            signal.signal(signal.SIGHUP, self._previous_hup)
            self._previous_hup = None

    def _listen_failed(self, failure: Any, reactor: Any) -> None:
        if self.failure is None:  # every listener failure was reported already; anything else lands here
            error = failure.value.subFailure.value if hasattr(failure.value, "subFailure") else failure.value
            self._fail(f"antigravity-gateway: cannot start: {error}", reactor)

    def _fail(self, line: str, reactor: Any) -> None:
        """Print ``line`` once and end the process with status 1.

        Before the reactor runs (``twist`` starts the service first) ``startService``
        exits at once; once it runs, the reactor stops and the exit follows shutdown.
        With an injected reactor (in-process tests) nothing exits: read ``failure``.
        """
        self.failure = line
        if getattr(reactor, "running", False):
            log.critical("{line}", line=line)
        else:  # logging has not begun yet: the line goes straight to stderr
            print(line, file=sys.stderr, flush=True)
        if self._reactor is None and getattr(reactor, "running", False):
            reactor.addSystemEventTrigger("after", "shutdown", _exit, 1)
            reactor.stop()

    def _exit_if_failed(self) -> None:
        """Under ``twist`` (no reactor injected) a failure before the reactor runs ends the process now."""
        if self.failure is not None and self._reactor is None:
            raise SystemExit(1)

    @inlineCallbacks
    def stopService(self) -> Any:
        """The drain: stop accepting; let in-flight requests and streams finish for up to
        ``[server] drain_seconds``; flush and close every connection; close the upstream pool."""
        super().stopService()
        self._restore_sighup()
        grace = self.settings.server.drain_seconds
        log.info("antigravity-gateway stopping: no new connections; requests in flight have {grace:g} s to finish", grace=grace)
        yield DeferredList([port.stopListening() for port in self.ports])
        self.ports = []
        if self.gateway is not None:
            sites = [site for site in (self.gateway.site, self.metrics_site) if site is not None]
            yield DeferredList([site.drain(grace) for site in sites])
            yield self.gateway.close()
        log.info("antigravity-gateway stopped")


def _exit(status: int) -> None:
    """Leave after the reactor's shutdown with ``status`` (twist itself would exit 0)."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def worker_identity() -> dict[str, Any]:
    import os

    from gateway.workers import ENV_INDEX

    return {"index": int(os.environ.get(ENV_INDEX, "0")), "pid": os.getpid()}


def makeService(options: Options) -> Any:
    import os

    from gateway.workers import ENV_FDS, Supervisor, worker_argv, worker_count

    assert options.settings is not None
    inherited = os.environ.get(ENV_FDS)
    count = 1 if inherited is not None else worker_count(options.settings.server.workers)
    if count > 1:
        return Supervisor(options.settings, count, ["-m", "twisted", *worker_argv(sys.argv[1:])])
    return GatewayService(options.settings, reload_settings=lambda: settings_from_options(options), inherited=inherited)
