"""Access tokens for pool accounts: refresh ahead of expiry, one refresh in flight per account.

The token endpoint call is the only I/O here; what an answer means (a new
token, a rotated refresh token, a dead grant) is decided by small pure
helpers, and the pool stores the result at once.
"""

from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import urlencode

import attrs
from treq.client import HTTPClient
from twisted.internet.defer import Deferred, succeed

from gateway.pool.account import Account
from gateway.pool.pool import AccountPool
from gateway.upstream.client import CONNECTION_ERRORS, UpstreamBodyError, read_body
from gateway.upstream.deadline import within
from gateway.upstream.oauth_clients import OAuthClient, OAuthClients, UnknownClient

MAX_TOKEN_BODY = 64 * 1024
from gateway.upstream.singleflight import SingleFlight


class InvalidGrant(Exception):
    """The refresh token is dead (revoked, expired, or for another client)."""


class TokenEndpointError(Exception):
    """The token endpoint failed for a reason that may pass; the account stays."""


@attrs.frozen
class Grant:
    access_token: str
    expires_in: float
    refresh_token: str | None = None


def parse_token_answer(status: int, body: bytes, client: str | None = None) -> Grant:
    """Token endpoint answer -> Grant, or the exception saying what went wrong (``client``: its name, for the message)."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise TokenEndpointError(f"token endpoint answered HTTP {status} with a non-JSON body")
    error = document.get("error")
    if status != 200 or error:
        code = error if isinstance(error, str) else (error or {}).get("status", "") if isinstance(error, dict) else ""
        description = document.get("error_description") or ""
        if code == "invalid_grant":
            raise InvalidGrant(f"refresh token rejected (invalid_grant: {description or 'revoked or expired'})")
        if code in ("invalid_client", "unauthorized_client"):
            named = f" {client!r}" if client else ""
            raise InvalidGrant(
                f"OAuth client{named} rejected ({code}): a refresh token works only with the client that issued it; "
                "set the account's oauth_client to that client (accounts import/add --client NAME), "
                "or check [upstream.oauth_clients] / client_id / client_secret"
            )
        raise TokenEndpointError(f"token endpoint answered HTTP {status} {code} {description}".strip())
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenEndpointError("token endpoint answer has no access_token")
    expires = document.get("expires_in", 3600)
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        expires = 3600
    rotated = document.get("refresh_token")
    return Grant(token, float(expires), rotated if isinstance(rotated, str) and rotated else None)


def apply_grant(account: Account, grant: Grant, now: float) -> Account:
    return attrs.evolve(
        account,
        access_token=grant.access_token,
        expiry=now + grant.expires_in,
        refresh_token=grant.refresh_token or account.refresh_token,
    )


class TokenEndpoint:
    """``POST token_url`` with the refresh-token grant (form-encoded)."""

    def __init__(self, http: HTTPClient, url: str, client_id: str, client_secret: str, timeout: float,
                 reactor: Any = None) -> None:
        self._reactor = reactor
        self._http = http
        self.url = url
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout

    async def refresh(self, refresh_token: str, client: OAuthClient | None = None) -> Grant:
        """One refresh with ``client`` (the account's; None: the endpoint's own credentials), whole
        (headers and body) within the endpoint's timeout."""
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        return await within(self._refresh(refresh_token, client, reactor), self._timeout, reactor, lambda: TokenEndpointError(
            f"token endpoint did not answer within {self._timeout:g} s ([upstream] token_timeout)"))

    async def _refresh(self, refresh_token: str, client: OAuthClient | None, reactor: Any) -> Grant:
        form = urlencode(
            {
                "client_id": client.client_id if client is not None else self._client_id,
                "client_secret": client.client_secret if client is not None else self._client_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            }
        ).encode()
        try:
            response = await self._http.post(
                self.url,
                data=form,
                headers={b"Content-Type": [b"application/x-www-form-urlencoded"], b"Accept": [b"application/json"]},
                timeout=self._timeout,
            )
            # treq's ``content()`` has no deadline: a body stalled after its headers
            # would hold this refresh — and every request sharing it — forever.
            body = await read_body(response, MAX_TOKEN_BODY, timeout=self._timeout, reactor=reactor)
        except CONNECTION_ERRORS as e:
            raise TokenEndpointError(f"token endpoint unreachable ({type(e).__name__})") from None
        except UpstreamBodyError as e:
            raise TokenEndpointError(f"token endpoint answer did not arrive whole ({e.kind})") from None
        return parse_token_answer(response.code, body, client.name if client is not None else None)


class AccessTokens:
    """Hands out valid access tokens; concurrent callers share one refresh."""

    def __init__(
        self, pool: AccountPool, endpoint: TokenEndpoint, clock: Callable[[], float], margin: float,
        clients: OAuthClients | None = None,
    ) -> None:
        self._pool = pool
        #: Each account refreshes with its own OAuth client (None: the endpoint's credentials for all).
        self.clients = clients
        self._endpoint = endpoint
        self._clock = clock
        self._margin = margin
        self._refreshing: SingleFlight[str] = SingleFlight()
        self.refreshes = 0
        #: Agrees one refresh per account with other instances (gateway.shared); None: refresh here.
        self.shared: Any = None

    def token_for(self, email: str, force: bool = False, rejected: str | None = None) -> Deferred[str]:
        """A usable access token for ``email``.

        ``force`` refreshes even a valid one. ``rejected``: upstream refused
        this token (401); refresh unless the stored token is already another
        one (a concurrent request refreshed it meanwhile), so N requests that
        all see a 401 cause one refresh, not N.
        """
        account = self._pool.get(email)
        if account is None:
            raise KeyError(email)
        if rejected is not None:
            force = account.access_token == rejected or not account.token_valid(self._clock(), self._margin)
        if not force and email not in self._refreshing and account.token_valid(self._clock(), self._margin):
            return succeed(account.access_token or "")
        return self._refreshing.run(email, lambda: self._refresh(email))

    def ready(self, email: str) -> str | None:
        """The stored token when :meth:`token_for` would hand it out at once, else None.

        The request path's common case, without a Deferred to create and await.
        """
        account = self._pool.get(email)
        if account is None or email in self._refreshing or not account.token_valid(self._clock(), self._margin):
            return None
        return account.access_token

    async def _refresh(self, email: str) -> str:
        if self.shared is not None:
            return await self.shared.refresh(self._pool, email, lambda: self._refresh_here(email))
        return await self._refresh_here(email)

    async def _refresh_here(self, email: str) -> str:
        account = self._pool.get(email)
        if account is None:
            raise KeyError(email)
        self.refreshes += 1
        client = None
        if self.clients is not None:
            try:
                client = self.clients.for_account(account)
            except UnknownClient as e:
                self._pool.disable(email, f"{e}: fix the account's oauth_client or add [upstream.oauth_clients.NAME]")
                raise InvalidGrant(str(e)) from None
        try:
            grant = await self._endpoint.refresh(account.refresh_token, client)
        except InvalidGrant as e:
            self._pool.disable(email, str(e))
            raise
        now = self._clock()
        self._pool.modify(email, lambda current: apply_grant(current, grant, now))
        return grant.access_token
