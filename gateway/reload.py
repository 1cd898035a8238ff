"""SIGHUP: re-read accounts, API keys and model mapping without dropping a connection.

The web layer reads the auth strategy, the auth mode and the model mapper per
request through holders (``SwappableAuth``, ``SwappableMapper``, the wrappers'
``mode``), so a reload is: build everything new from the re-read settings,
re-read the account store (the only step that changes state, and it changes
nothing when it fails), then swap. Any error refuses the whole reload with one
log line and the old settings stay in force.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, Callable, Iterable

from twisted.logger import Logger
from zope.interface import implementer

from gateway.config import ConfigError, Settings
from gateway.interfaces import IAuthStrategy, IAuthStrategyFactory, IModelMapper, IModelMapperFactory
from gateway.plugin_loading import build
from gateway.plugins.builtin import AllowAll

log = Logger(namespace="antigravity_gateway")


@implementer(IAuthStrategy)
class SwappableAuth:
    """The configured IAuthStrategy, replaceable while running."""

    def __init__(self, current: Any) -> None:
        self.current = current

    def authenticate(self, credential: str | None) -> bool:
        return bool(self.current.authenticate(credential))


@implementer(IModelMapper)
class SwappableMapper:
    """The configured IModelMapper, replaceable while running."""

    def __init__(self, current: Any) -> None:
        self.current = current

    def map(self, requested: str) -> str:
        return self.current.map(requested)


# Sections a reload applies; every other changed setting is logged as needing a restart.
RELOADED_SECTIONS = ("auth", "models", "logging")


class Reloader:
    def __init__(
        self,
        settings: Settings,
        load: Callable[[], Settings],
        check: Callable[[Settings], None],
        auth: SwappableAuth,
        mapper: SwappableMapper,
        mode_holders: Iterable[Any],
        pool: Any,
        observer: Any,
    ) -> None:
        self.settings = settings
        self.load = load
        self.check = check
        self.auth = auth
        self.mapper = mapper
        self.mode_holders = list(mode_holders)
        self.pool = pool
        self.observer = observer

    def reload(self) -> bool:
        """Apply the settings ``load`` returns now; False (and nothing changed) when they are refused."""
        try:
            fresh = self.load()
            self.check(fresh)
            mode = fresh.effective_auth_mode()
            strategy = AllowAll() if mode == "off" else build(IAuthStrategyFactory, fresh.auth.strategy, "auth.strategy", fresh)
            mapper = build(IModelMapperFactory, fresh.models.mapper, "models.mapper", fresh)
            self.pool.reload()  # raises (and keeps the old accounts) when the store cannot be read
        except Exception as e:  # a bad reload must never take the gateway down
            message = str(e) if isinstance(e, (ConfigError, OSError, ValueError)) or type(e).__name__ == "StoreError" else f"{type(e).__name__}: {e}"
            log.error("reload refused, the previous settings stay in force: {error}", error=message, reload="refused")
            self.observer.reloaded(False)
            return False
        self.auth.current = strategy
        self.mapper.current = mapper
        if hasattr(self.observer, "account_label"):
            self.observer.account_label = fresh.logging.account_label
        for holder in self.mode_holders:
            for name in ("mode", "auth_mode"):
                if hasattr(holder, name):
                    setattr(holder, name, mode)
        pending = changed_restart_only(self.settings, fresh)
        self.settings = fresh
        accounts = len(self.pool.states())
        log.info(
            "reloaded: {accounts} account(s), {keys} API key(s), auth {mode}, {mappings} model mapping(s)",
            accounts=accounts, keys=len(fresh.auth.keys), mode=mode, mappings=len(fresh.models.mapping), reload="ok",
        )
        if pending:
            log.warn("these changed settings need a restart to take effect: {keys}", keys=", ".join(pending), reload="ok")
        self.observer.reloaded(True)
        return True


def changed_restart_only(old: Settings, new: Settings) -> list[str]:
    """``section.key`` of every changed setting outside ``RELOADED_SECTIONS``."""
    changed = []
    if old.logging.format != new.logging.format:  # the log observer is chosen once, at start
        changed.append("logging.format")
    for section in fields(Settings):
        if section.name in RELOADED_SECTIONS or section.name == "source":
            continue
        before, after = getattr(old, section.name), getattr(new, section.name)
        if before == after or not is_dataclass(before):
            continue
        changed.extend(f"{section.name}.{f.name}" for f in fields(before) if getattr(before, f.name) != getattr(after, f.name))
    return changed
