"""One client call, forwarded: choose an account, get its token and project, call, retry.

Sequencing only. Each step's meaning lives elsewhere: the envelope in
``protocol.envelope``, failures in ``protocol.classify``, choices in the pool.
A failed attempt is never retried on an account that already failed it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import attrs

from gateway.pool.account import Account
from gateway.pool.pool import AccountPool
from gateway.protocol import envelope
from gateway.protocol.classify import UpstreamFailure, classify, client_error
from gateway.protocol.errors import GatewayError
from gateway.upstream.client import UpstreamClient, UpstreamResponse, UpstreamUnreachable, read_body, unreachable_error
from gateway.upstream.oauth import AccessTokens, InvalidGrant, TokenEndpointError
from gateway.upstream.onboarding import AccountIneligible, DiscoveryFailed, ProjectResolver

NO_ACCOUNT_HELP = (
    "add a Google account to the store ({store}) with its refresh_token, "
    "or re-enable a disabled one, then retry"
)


@attrs.frozen
class Forwarded:
    """A successful upstream answer and the account that produced it."""

    upstream: UpstreamResponse
    account: Account
    attempts: int


class Forwarder:
    def __init__(
        self,
        pool: AccountPool,
        tokens: AccessTokens,
        projects: ProjectResolver,
        client: UpstreamClient,
        max_attempts: int,
        clock: Callable[[], float],
        user_agent: str = "antigravity",
    ) -> None:
        self.pool = pool
        self.tokens = tokens
        self.projects = projects
        self.client = client
        self.max_attempts = max_attempts
        self.clock = clock
        self.user_agent = user_agent

    async def generate(self, model: str, request: dict[str, Any], *, stream: bool) -> Forwarded:
        """``generateContent`` / ``streamGenerateContent`` with a fresh envelope per attempt."""
        session_id = envelope.session_id_for(request)
        method = "streamGenerateContent" if stream else "generateContent"

        def payload(account: Account, project: str | None) -> bytes:
            wrapped = envelope.wrap(
                request,
                model=model,
                project=project or "",
                request_id=envelope.new_request_id(),
                session_id=session_id,
                user_agent="antigravity",
            )
            return json.dumps(wrapped, separators=(",", ":")).encode()

        return await self._attempts(model, method, payload, stream=stream, needs_project=True)

    async def count_tokens(self, model: str, body: Any) -> Forwarded:
        wrapped = json.dumps(envelope.wrap_count_tokens(body, model), separators=(",", ":")).encode()
        return await self._attempts(model, "countTokens", lambda a, p: wrapped, stream=False, needs_project=False)

    async def available_models(self) -> Forwarded:
        """``fetchAvailableModels`` through any usable account."""

        def payload(account: Account, project: str | None) -> bytes:
            return json.dumps({"project": project or ""}).encode()

        return await self._attempts("*", "fetchAvailableModels", payload, stream=False, needs_project=True)

    async def _attempts(
        self,
        model: str,
        method: str,
        payload: Callable[[Account, str | None], bytes],
        *,
        stream: bool,
        needs_project: bool,
    ) -> Forwarded:
        tried: list[str] = []
        last: GatewayError | None = None
        for attempt in range(1, self.max_attempts + 1):
            account = self.pool.choose(model, exclude=tried)
            if account is None:
                break
            tried.append(account.email)
            try:
                token = await self.tokens.token_for(account.email)
                project = await self.projects.project_for(account.email, token) if needs_project else account.project_id
            except InvalidGrant as e:
                last = GatewayError(503, f"A pool account was disabled: {e}. Re-authorise it, then retry.")
                self.pool.failed(account.email, "invalid_grant")
                continue
            except AccountIneligible as e:
                last = GatewayError(503, f"A pool account cannot use Cloud Code: {e}")
                self.pool.failed(account.email, "ineligible")
                continue
            except UpstreamUnreachable as e:
                last = unreachable_error(e)
                self.pool.failed(account.email, "unreachable")
                continue
            except (TokenEndpointError, DiscoveryFailed) as e:
                last = GatewayError(503, f"Could not prepare a pool account: {e}. Retry shortly.")
                self.pool.failed(account.email, type(e).__name__)
                continue
            try:
                answer = await self.client.call(method, payload(account, project), token, stream=stream)
            except UpstreamUnreachable as e:
                last = unreachable_error(e)
                self.pool.failed(account.email, "unreachable")
                continue
            if answer.code == 200:
                self.pool.succeeded(account.email)
                return Forwarded(answer, account, attempt)
            failure = classify(answer.code, answer.headers, await read_body(answer.response), self.clock())
            self._learn(account, failure)
            error = client_error(failure)
            if not failure.next_account:
                raise error
            last = error
        if last is not None:
            raise last
        raise GatewayError(
            503,
            "No usable Google account in the pool: " + NO_ACCOUNT_HELP.format(store=self.pool.backend.describe()) + ".",
        )

    def _learn(self, account: Account, failure: UpstreamFailure) -> None:
        self.pool.failed(account.email, failure.kind)
        if failure.kind == "unauthorized":
            # The stored token is rejected: the next use must refresh it.
            current = self.pool.get(account.email) or account
            self.pool.update(attrs.evolve(current, expiry=0.0))
