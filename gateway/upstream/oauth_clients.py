"""Which OAuth client an account belongs to: the named clients, the default, the choice.

A refresh token works only with the client that issued it, so the client
belongs to the account (its record's ``oauth_client``), not to the pool.
Two clients are built in: ``antigravity`` (the Antigravity desktop client,
the default: the one Cloud Code serves individuals through today) and
``gemini-cli`` (retired for individual accounts on 2026-06-18; Workspace
accounts may still use it). ``[upstream.oauth_clients.NAME]`` adds or
overrides clients; ``[upstream] client_id``/``client_secret`` set the
default one. Pure: no I/O, no Twisted. Installed-app client secrets are not
confidential (RFC 8252); both are published by their tools.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import attrs

ANTIGRAVITY = "antigravity"
GEMINI_CLI = "gemini-cli"
#: Name of the client made from ``[upstream] client_id``/``client_secret`` when no named client has that id.
CONFIGURED = "default"

BASE_SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
)
ANTIGRAVITY_SCOPES = BASE_SCOPES + (
    "https://www.googleapis.com/auth/cclog",
    "https://www.googleapis.com/auth/experimentsandconfigs",
)


class UnknownClient(ValueError):
    """An account or setting names a client the configuration does not define."""


@attrs.frozen
class OAuthClient:
    name: str
    client_id: str
    client_secret: str = attrs.field(repr=False)
    scopes: tuple[str, ...] = BASE_SCOPES


BUILTIN: dict[str, OAuthClient] = {
    ANTIGRAVITY: OAuthClient(
        ANTIGRAVITY,
        "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
        "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",
        ANTIGRAVITY_SCOPES,
    ),
    GEMINI_CLI: OAuthClient(
        GEMINI_CLI,
        "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
        "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",
        BASE_SCOPES,
    ),
}


@attrs.frozen
class OAuthClients:
    """Every client by name, and the one accounts without ``oauth_client`` use."""

    clients: Mapping[str, OAuthClient]
    default: str

    @property
    def names(self) -> list[str]:
        return sorted(self.clients)

    def named(self, name: str | None) -> OAuthClient:
        """The client called ``name`` (None or "": the default); UnknownClient names the known ones."""
        client = self.clients.get(name or self.default)
        if client is None:
            raise UnknownClient(f"unknown OAuth client {name!r} (known: {', '.join(self.names)})")
        return client

    def for_account(self, account: Any) -> OAuthClient:
        """The client that refreshes ``account`` (its record's ``oauth_client``, else the default)."""
        return self.named(getattr(account, "oauth_client", None))

    def name_of(self, account: Any) -> str:
        """The client name an account uses, for views (its own or the default's)."""
        return getattr(account, "oauth_client", None) or self.default


def build(
    configured: Iterable[tuple[str, Mapping[str, Any]]] = (),
    default: str = ANTIGRAVITY,
    client_id: str = "",
    client_secret: str = "",
) -> OAuthClients:
    """The client table: built-ins, then ``[upstream.oauth_clients.*]`` (same name replaces),
    then ``client_id``/``client_secret``, which define the default client when set."""
    table = dict(BUILTIN)
    for name, values in configured:
        base = table.get(name)
        scopes = tuple(values.get("scopes") or (base.scopes if base is not None else BASE_SCOPES))
        table[name] = OAuthClient(name, str(values["client_id"]), str(values["client_secret"]), scopes)
    if client_id:
        same = next((c for c in table.values() if c.client_id == client_id), None)
        if same is not None:
            default = same.name
            if client_secret:
                table[same.name] = attrs.evolve(same, client_secret=client_secret)
        else:
            table[CONFIGURED] = OAuthClient(CONFIGURED, client_id, client_secret, BASE_SCOPES)
            default = CONFIGURED
    if default not in table:
        raise UnknownClient(f"unknown OAuth client {default!r} (known: {', '.join(sorted(table))})")
    return OAuthClients(table, default)


def from_settings(upstream: Any) -> OAuthClients:
    """``build`` over an ``UpstreamSettings``."""
    return build(upstream.oauth_clients, upstream.oauth_client, upstream.client_id, upstream.client_secret)


#: What a client hears (no account names): the operator's fix is in the account's disabled reason.
UNSUPPORTED_CLIENT_FOR_CLIENTS = (
    "UNSUPPORTED_CLIENT: Google no longer serves this account through its OAuth client; "
    "the gateway's operator must re-add it with the Antigravity client (the account's reason in `accounts list` "
    "gives the command)"
)


def reenable_hint(email: str) -> str:
    """The exact command that moves an account to the Antigravity client."""
    from gateway.commands import accounts_command

    return f"{accounts_command()} add --client {ANTIGRAVITY} --login-hint {email}"


def unsupported_client_reason(email: str, client: str) -> str:
    """Why an account left rotation after UNSUPPORTED_CLIENT, and what the operator runs."""
    return (
        f"UNSUPPORTED_CLIENT: Google no longer serves this account through the OAuth client {client!r} "
        f"(retired for individual accounts). Re-add it with the Antigravity client: `{reenable_hint(email)}`"
    )


def unsupported_client(reason: str | None, message: str) -> bool:
    """Whether a refusal says the account's OAuth client is retired (UNSUPPORTED_CLIENT)."""
    return reason == "UNSUPPORTED_CLIENT" or "client is no longer supported" in (message or "").lower()
