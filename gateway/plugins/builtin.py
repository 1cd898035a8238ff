"""The gateway's own plugins: auth strategies, model mappers, account stores, selection.

Each module-level object provides IPlugin and one ``…Factory`` interface;
``getPlugins`` finds them here exactly as it finds third-party ones.
"""

from __future__ import annotations

from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer, provider

from gateway.interfaces import (
    IAccountBackendFactory,
    IAuthStrategy,
    IAuthStrategyFactory,
    IModelMapper,
    IModelMapperFactory,
    ISelectionPolicyFactory,
)


@implementer(IAuthStrategy)
class AllowAll:
    """Every caller is accepted (auth mode decides whether a strategy is consulted)."""

    def authenticate(self, credential: str | None) -> bool:
        return True


@implementer(IAuthStrategy)
class APIKeys:
    """Accepts any one of the configured keys, compared in constant time."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = tuple(keys)

    def authenticate(self, credential: str | None) -> bool:
        from gateway.protocol.credentials import keys_match

        return keys_match(credential, self._keys)


@implementer(IModelMapper)
class TableMapper:
    """Identity, unless the ``[models] mapping`` table has a matching pattern."""

    def __init__(self, mapping: dict[str, str]) -> None:
        from gateway.protocol.model_mapping import PatternTable

        self._table = PatternTable(mapping)

    def map(self, requested: str) -> str:
        from gateway.protocol.models import strip_models_prefix

        bare = strip_models_prefix(requested)
        return self._table.lookup(bare) or bare


@implementer(IPlugin)
class _Factory:
    def __init__(self, name: str, description: str, build: Any) -> None:
        self.name = name
        self.description = description
        self._build = build

    def build(self, settings: Any) -> Any:
        return self._build(settings)

    def __repr__(self) -> str:
        return f"<plugin {self.name!r}>"


def _api_keys(settings: Any) -> APIKeys:
    from gateway.config import ConfigError

    if not settings.auth.keys:
        raise ConfigError(
            "auth.keys",
            "auth is enabled but no API key is configured: add keys = [\"...\"] under [auth] "
            "(or --api-key), or set [auth] mode = \"off\" on a loopback-only listener",
        )
    return APIKeys(settings.auth.keys)


def _json_store(settings: Any) -> Any:
    from gateway.pool.json_store import JSONAccountStore

    return JSONAccountStore(settings.accounts.path)


def _round_robin(settings: Any) -> Any:
    from gateway.pool.selection import RoundRobin

    return RoundRobin()


def _lru(settings: Any) -> Any:
    from gateway.pool.selection import LeastRecentlyUsed

    return LeastRecentlyUsed()


def _quota_aware(settings: Any) -> Any:
    from gateway.pool.selection import QuotaAware

    return QuotaAware()


noneAuth = provider(IAuthStrategyFactory)(_Factory("none", "no credential needed", lambda s: AllowAll()))
apiKeyAuth = provider(IAuthStrategyFactory)(_Factory("api-key", "one of [auth] keys, from x-goog-api-key, ?key=, Bearer or x-api-key", _api_keys))
tableMapper = provider(IModelMapperFactory)(_Factory("table", "identity plus the [models] mapping table (* wildcards)", lambda s: TableMapper(dict(s.models.mapping))))
identityMapper = provider(IModelMapperFactory)(_Factory("identity", "the requested model, models/ prefix stripped", lambda s: TableMapper({})))
jsonBackend = provider(IAccountBackendFactory)(_Factory("json", "a JSON file, written atomically with mode 0600", _json_store))
roundRobinPolicy = provider(ISelectionPolicyFactory)(_Factory("round-robin", "each account in turn", _round_robin))
lruPolicy = provider(ISelectionPolicyFactory)(_Factory("least-recently-used", "the account idle the longest", _lru))
quotaAwarePolicy = provider(ISelectionPolicyFactory)(_Factory("quota-aware", "the most quota left for the model, then the idlest", _quota_aware))
