"""The ``keys`` auth strategy: per-person keys from the team store (``antigravity-gateway keys``).

Beside it, keys in ``[auth] keys`` keep working (as the key named ``static``,
without limits). Limits are checked later, by the forwarder's gate, once the
model is resolved (``gateway.team.service``).
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer, provider

from gateway.interfaces import IAuthStrategy, IAuthStrategyFactory
from gateway.plugins.builtin import _Factory


@implementer(IAuthStrategy)
class KeysStrategy:
    def __init__(self, team: Any) -> None:
        self.team = team

    def authenticate(self, credential: str | None) -> bool:
        return self.team.authenticate(credential)


def _keys(settings: Any) -> KeysStrategy:
    from gateway.config import ConfigError
    from gateway.team.service import team_for
    from gateway.team.sqlite_store import StoreProblem

    try:
        return KeysStrategy(team_for(settings))
    except StoreProblem as e:
        raise ConfigError("team.store", f"{e}; set [team] store to a writable path") from None


keysAuth = provider(IAuthStrategyFactory)(
    _Factory("keys", "per-person keys with limits (antigravity-gateway keys add NAME), plus any [auth] keys", _keys)
)
