"""The gateway's extension points as zope interfaces.

Each behaviour interface (``IAuthStrategy`` …) has a matching ``…Factory``
interface; factories are what Twisted's plugin system finds (in
``gateway.plugins``), named in the config, and asked to build the behaviour
from the settings, the same split Twisted uses for ``IServiceMaker`` and
``ICheckerFactory``.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IAuthStrategy(Interface):
    """Decides whether a client credential may use the gateway."""

    def authenticate(credential: str | None) -> bool:
        """True when ``credential`` (None when the client sent none) is accepted."""


class IModelMapper(Interface):
    """Turns the model a client asked for into the model sent upstream."""

    def map(requested: str) -> str:
        """Return the upstream model id for ``requested`` (a bare id, no ``models/``)."""


class IAccountBackend(Interface):
    """Where account records live. Implementations must never half-write."""

    def load() -> list:
        """Return every stored ``gateway.pool.account.Account``."""

    def save(accounts: list) -> None:
        """Replace the stored accounts atomically."""

    def put(account: object) -> None:
        """Insert or replace one account (matched by email) without losing others' updates."""

    def remove(email: str) -> bool:
        """Delete one account; False when there was none."""

    def describe() -> str:
        """A short human description (for logs and errors), with no secrets."""


class ISelectionPolicy(Interface):
    """Orders the accounts that may serve a request."""

    def choose(candidates: list, model: str, now: float) -> object | None:
        """Pick one of ``candidates`` (``AccountState``) for ``model``, or None."""


class _IFactory(Interface):
    name = Attribute("The name used in the config file to pick this plugin.")
    description = Attribute("One line for --help and error messages.")


class IAuthStrategyFactory(_IFactory):
    def build(settings: object) -> IAuthStrategy:
        """Build the strategy from ``gateway.config.Settings``; raise ConfigError when unusable."""


class IModelMapperFactory(_IFactory):
    def build(settings: object) -> IModelMapper:
        """Build the mapper from ``gateway.config.Settings``."""


class IAccountBackendFactory(_IFactory):
    def build(settings: object) -> IAccountBackend:
        """Build the backend from ``gateway.config.Settings``."""


class ISelectionPolicyFactory(_IFactory):
    def build(settings: object) -> ISelectionPolicy:
        """Build the policy from ``gateway.config.Settings``."""
