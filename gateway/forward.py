"""One client call, forwarded: choose an account, get its token and project, call, retry.

Sequencing only. Each step's meaning lives elsewhere: the envelope in
``protocol.envelope``, failures in ``protocol.classify``, what a failure
means for the account in ``pool.decisions``, choices and cooldowns in the
pool. A failed attempt is never retried on an account that already failed it
(the table's same-account retries — a short rate limit, a 401 after a token
refresh — are the deliberate exceptions).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any, Callable, Coroutine

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from gateway.observe import NULL_OBSERVER, RequestObserver
from gateway.pool import health
from gateway.pool.account import Account
from gateway.pool.decisions import (
    Backoff,
    CoolAccount,
    CoolModel,
    Disable,
    GiveUp,
    NextAccount,
    RefreshAndRetrySame,
    RetrySame,
    Tuning,
    decide,
    is_capacity,
)
from gateway.pool.pool import AccountPool
from gateway.commands import accounts_command
from gateway.protocol import client_version, credits, envelope, hygiene
from gateway.upstream.oauth_clients import UNSUPPORTED_CLIENT_FOR_CLIENTS, unsupported_client, unsupported_client_reason
from gateway.protocol.classify import classify, client_error, scrub
from gateway.protocol.errors import GatewayError, retry_info
from gateway.upstream.client import (
    DEFAULT_BODY_TIMEOUT,
    UpstreamBodyError,
    UpstreamClient,
    UpstreamResponse,
    UpstreamUnreachable,
    read_body,
    unreachable_error,
)
from gateway.upstream.deadline import inline_within
from gateway.upstream.leases import ReleasingResponse, once, wait_for_release
from gateway.upstream.peek import peek_stream
from gateway.upstream.oauth import AccessTokens, InvalidGrant, TokenEndpointError
from gateway.upstream.onboarding import AccountIneligible, DiscoveryFailed, ProjectResolver

log = Logger()

NO_ACCOUNT_HELP = (
    "add a Google account with `{accounts} add` "
    "(or write its refresh_token there), or re-enable a disabled one with "
    "`{accounts} enable EMAIL`, then retry"
)


@attrs.frozen
class Forwarded:
    """A successful upstream answer and the account that produced it.

    The account counts as in flight until the body of ``upstream.response``
    has been delivered (``deliverBody`` ends) — or ``release()`` is called by
    a caller that drops the answer unread.
    """

    upstream: UpstreamResponse
    account: Account
    attempts: int
    release: Callable[[], None] = attrs.field(default=lambda: None, repr=False, eq=False)


@attrs.define
class _Tries:
    """What one client request has tried so far."""

    exclude: set[str] = attrs.Factory(set)
    retried: set[str] = attrs.Factory(set)
    refreshed: set[str] = attrs.Factory(set)
    empty: set[str] = attrs.Factory(set)
    #: Accounts retried with ``enabledCreditTypes`` after QUOTA_EXHAUSTED.
    credited: set[str] = attrs.Factory(set)
    attempts: int = 0
    backoffs: int = 0
    last: GatewayError | None = None
    capacity: bool = False


@attrs.frozen
class _Again:
    """Go on: with the same account (and this token) or another, after ``delay`` seconds."""

    same: bool
    delay: float = 0.0
    token: str | None = None


class Forwarder:
    observer: RequestObserver = NULL_OBSERVER  # metrics/log hooks (gateway.observe); set by assembly
    #: The live catalogue (``current()``) the hygiene step reads; set by assembly.
    catalogue: Any = None
    #: The live client version (``gateway.upstream.version.ClientVersion``), refreshed after a refusal; set by assembly.
    version: Any = None
    #: ``[upstream] use_credits``: "never" or "when_quota_exhausted".
    use_credits: str = "never"
    #: Per-key limits (``gateway.team.service.Team.gate``): raises before any account is taken.
    gate: Callable[[str | None], Any] | None = None
    #: Seconds one client request may take until its answer starts ([upstream] request_timeout).
    request_timeout: float = 600.0
    #: Seconds a non-streamed body may go without a byte ([upstream] body_timeout).
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    #: Bytes a non-streamed answer may buffer ([upstream] max_answer_bytes).
    max_answer_bytes: int = 32 * 1024 * 1024
    #: Pool state agreed with other instances (gateway.shared); None: this instance alone decides.
    shared: Any = None

    def __init__(
        self,
        pool: AccountPool,
        tokens: AccessTokens,
        projects: ProjectResolver,
        client: UpstreamClient,
        max_attempts: int,
        clock: Callable[[], float],
        user_agent: str = "antigravity",
        *,
        reactor: Any = None,
        tuning: Tuning = Tuning(),
        queue_timeout: float = 30.0,
        session_header: str = "x-session-id",
        quota: Any = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.pool = pool
        self.tokens = tokens
        self.projects = projects
        self.client = client
        self.max_attempts = max_attempts
        self.clock = clock
        self.user_agent = user_agent
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.tuning = tuning
        self.queue_timeout = queue_timeout
        self.session_header = session_header.lower().encode("latin-1")
        #: A QuotaPoller (``poll_soon(email)`` after a quota error), or None.
        self.quota = quota
        self.jitter = jitter

    def session_key(self, request: Any) -> str | None:
        """The client's explicit conversation key (``[accounts] session_header``), if it sent one."""
        value = request.getHeader(self.session_header)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        value = (value or "").strip()
        return value[:256] or None

    def bounded(self, work: Any, what: str = "answer") -> Coroutine[Any, Any, Any]:
        """``work`` (a coroutine) under the client request's overall deadline: a 504 when it runs out.
        Awaited in the request handler's own chain where it can be (``inline_within``)."""
        return inline_within(work, self.request_timeout, self.reactor, lambda: GatewayError(
            504,
            f"Cloud Code's {what} did not come within {self.request_timeout:g} s ([upstream] request_timeout); "
            "retry the request, or shorten it.",
        ))

    async def answer(self, model: str, request: dict[str, Any], *, session_key: str | None = None,
                     admitted: bool = False) -> bytes:
        """A whole non-streamed ``generateContent`` body, within the overall deadline.

        A body cut short or stalled after its headers reached nobody yet: it is
        retried (up to ``max_attempts`` calls) like any other upstream failure.
        ``admitted``: the caller already passed :meth:`admit` for this client request.
        """
        if not admitted:
            await self._gate(model)
        return await self.bounded(self._answer(model, request, session_key))

    async def _answer(self, model: str, request: dict[str, Any], session_key: str | None) -> bytes:
        failed: UpstreamBodyError | None = None
        for _ in range(max(1, self.max_attempts)):
            forwarded = await self._generate(model, request, stream=False, session_key=session_key)
            try:
                return await self.read(forwarded)
            except UpstreamBodyError as e:
                if e.kind == "too_large":
                    raise self.body_error(e) from None
                failed = e
                self.pool.failed(forwarded.account.email, f"answer body {e.kind}")
                self.observer.attempt_failed("body_" + e.kind)
        assert failed is not None
        raise self.body_error(failed)

    async def read(self, forwarded: Forwarded, limit: int | None = None) -> bytes:
        """The body of a non-streamed answer, bounded in size and in time (``UpstreamBodyError``)."""
        return await read_body(forwarded.upstream.response, self.max_answer_bytes if limit is None else limit,
                               strict=True, timeout=self.body_timeout, reactor=self.reactor)

    def body_error(self, error: UpstreamBodyError) -> GatewayError:
        """What a client sees for an answer body that did not arrive whole."""
        if error.kind == "too_large":
            return GatewayError(
                502,
                f"Cloud Code's answer is larger than the gateway buffers ({self.max_answer_bytes} bytes, "
                "[upstream] max_answer_bytes); use the streaming endpoint, or ask for a shorter answer.",
            )
        return GatewayError(502, f"Cloud Code's answer did not arrive whole: {error}. Retry the request.")

    async def admit(self, model: str) -> None:
        """Per-key limits for a client request that makes several upstream calls (images ``n``):
        checked and counted once, then each call passes ``admitted=True``."""
        await self._gate(model)

    async def _gate(self, model: str) -> None:
        """Per-key limits, once per client request (retries inside it are not new requests)."""
        if self.gate is not None:
            gated = self.gate(model)
            if gated is not None:  # a shared backend asks the other instances' counts
                await gated

    async def generate(
        self, model: str, request: dict[str, Any], *, stream: bool, session_key: str | None = None
    ) -> Forwarded:
        """:meth:`_generate` within the overall deadline (for a stream: until its headers)."""
        await self._gate(model)
        return await self.bounded(self._generate(model, request, stream=stream, session_key=session_key))

    async def _generate(
        self, model: str, request: dict[str, Any], *, stream: bool, session_key: str | None = None
    ) -> Forwarded:
        """``generateContent`` / ``streamGenerateContent`` with a fresh envelope per attempt.

        The conversation keeps its account (sticky session) by ``session_key``
        when the client sent one, else by the envelope's session id (a hash of
        the system instruction and the first user turn).
        """
        session_id = envelope.session_id_for(request)
        method = "streamGenerateContent" if stream else "generateContent"
        live = self.catalogue.current() if self.catalogue is not None else None
        request = hygiene.clean_request(request, model, live)  # the same fixes for every door

        def payload(account: Account, project: str | None) -> bytes:
            return envelope.wrapped_json(
                request,
                model=model,
                project=project or "",
                request_id=envelope.new_request_id(),
                session_id=session_id,
                user_agent="antigravity",
            )

        return await self._attempts(
            model, method, payload, stream=stream, needs_project=True, select_model=model, session=session_key or session_id
        )

    async def count_tokens(self, model: str, body: Any) -> Forwarded:
        """Counting spends no generation quota: accounts cooling down for ``model`` may count."""
        await self._gate(model)
        wrapped = json.dumps(envelope.wrap_count_tokens(body, model), separators=(",", ":")).encode()
        return await self.bounded(self._attempts(
            model, "countTokens", lambda a, p: wrapped, stream=False, needs_project=False, select_model=None
        ))

    async def count_answer(self, model: str, body: Any) -> bytes:
        """A whole ``countTokens`` body, within the overall deadline."""
        await self._gate(model)
        wrapped = json.dumps(envelope.wrap_count_tokens(body, model), separators=(",", ":")).encode()

        async def counted() -> bytes:
            forwarded = await self._attempts(
                model, "countTokens", lambda a, p: wrapped, stream=False, needs_project=False, select_model=None,
            )
            try:
                return await self.read(forwarded)
            except UpstreamBodyError as e:
                raise self.body_error(e) from None

        return await self.bounded(counted())

    async def available_models(self) -> Forwarded:
        """``fetchAvailableModels`` through any usable account."""

        def payload(account: Account, project: str | None) -> bytes:
            return json.dumps({"project": project or ""}).encode()

        return await self.bounded(
            self._attempts("*", "fetchAvailableModels", payload, stream=False, needs_project=True, select_model=None), "model list")

    async def _attempts(
        self,
        model: str,
        method: str,
        payload: Callable[[Account, str | None], bytes],
        *,
        stream: bool,
        needs_project: bool,
        select_model: str | None,
        session: str | None = None,
    ) -> Forwarded:
        """Attempts on up to ``max_attempts`` accounts; ``select_model`` None: model cooldowns do not matter."""
        tries = _Tries()
        account: Account | None = None  # in flight while held
        token: str | None = None
        try:
            while True:
                if account is None:
                    if tries.attempts >= self.max_attempts:
                        break
                    account = await self._acquire(select_model, tries.exclude, session)
                    if account is None:
                        break
                    tries.attempts += 1
                    token = None
                outcome = await self._attempt(account, token, tries, model, method, payload, stream, needs_project)
                if isinstance(outcome, Forwarded):
                    account = None  # the answer's body releases it
                    return outcome
                if not outcome.same:
                    self.pool.release(account.email)
                    account = None
                    if tries.attempts >= self.max_attempts:
                        break  # no point waiting for an attempt that will not happen
                token = outcome.token
                if outcome.delay > 0:
                    await deferLater(self.reactor, outcome.delay, lambda: None)
        finally:
            if account is not None:
                self.pool.release(account.email)
        raise self._give_up(tries, model, select_model)

    async def _acquire(self, select_model: str | None, exclude: set[str], session: str | None) -> Account | None:
        """An account now in flight; waits (bounded by ``queue_timeout``) while all are busy."""
        deadline: float | None = None
        while True:
            self.pool.maybe_reload(throttled=True)
            pick = self.pool.acquire(select_model, exclude, session) if self.shared is None else \
                await self.shared.acquire(self.pool, select_model, exclude, session)
            if pick.account is not None or not pick.busy:
                return pick.account
            now = self.clock()
            if deadline is None:
                deadline = now + self.queue_timeout
            if now >= deadline:
                raise GatewayError(
                    503,
                    f"Every account that could serve this request is busy ({self.pool.max_in_flight} in flight each, "
                    f"[accounts] max_in_flight) and none came free within {self.queue_timeout:g}s. Retry shortly.",
                    details=[retry_info(1.0)],
                    headers={"Retry-After": "1"},
                )
            await wait_for_release(self.pool, self.reactor, deadline - now)

    async def _attempt(
        self,
        account: Account,
        token: str | None,
        tries: _Tries,
        model: str,
        method: str,
        payload: Callable[[Account, str | None], bytes],
        stream: bool,
        needs_project: bool,
    ) -> "Forwarded | _Again":
        email = account.email
        self.observer.attempt(email, model, method)
        try:
            if token is None:  # the stored token when it is valid (no Deferred), else a refresh
                token = self.tokens.ready(email) or await self.tokens.token_for(email)
            if needs_project:
                project = self.projects.known(email) or await self.projects.project_for(email, token)
            else:
                project = account.project_id
        except InvalidGrant as e:
            return self._next(tries, email, GatewayError(503, f"A pool account was disabled: {e}. Re-authorise it, then retry."), "invalid_grant")
        except AccountIneligible as e:
            return self._next(tries, email, GatewayError(503, f"A pool account cannot use Cloud Code: {e}"), "ineligible")
        except UpstreamUnreachable as e:
            return self._next(tries, email, unreachable_error(e), "unreachable")
        except (TokenEndpointError, DiscoveryFailed) as e:
            return self._next(tries, email, GatewayError(503, f"Could not prepare a pool account: {e}. Retry shortly."), type(e).__name__)
        data = payload(account, project)
        if email in tries.credited:
            data = credits.enable(data, (self.pool.get(email) or account).usable_credits)
        try:
            answer = await self.client.call(method, data, token, stream=stream)
        except UpstreamUnreachable as e:
            return self._next(tries, email, unreachable_error(e), "unreachable")
        if answer.code == 200 and stream:
            empty, replay = await peek_stream(answer.response, self.reactor, self.client.response_timeout)
            if empty:
                return self._empty_stream(tries, email, token)
            answer = UpstreamResponse(answer.code, replay, answer.host)
        if answer.code == 200:
            self.pool.succeeded(email)
            return self._forwarded(answer, account, tries.attempts)
        try:
            body = await read_body(answer.response, timeout=self.body_timeout, reactor=self.reactor)
        except UpstreamBodyError:
            body = b""  # the status alone still classifies the failure
        if client_version.is_rejection(answer.code, body):
            raise self.version_refused()
        failure = classify(answer.code, answer.headers, body, self.clock())
        self.observer.attempt_failed(failure.kind)
        now = self.clock()
        current = self.pool.get(email) or account
        action = decide(
            failure,
            model=model,
            now=now,
            tuning=self.tuning,
            retried_same=email in tries.retried,
            refreshed=email in tries.refreshed,
            backoffs=tries.backoffs,
            jitter=self.jitter(),
            quota_reset=health.quota_reset(current, model, now),
        )
        if credits.retry_with_credits(failure.kind, self.use_credits, current.usable_credits, email in tries.credited):
            log.info("account {email}: quota exhausted for {model}; retrying once with AI credits", email=self._who(email), model=model)
            tries.credited.add(email)
            return _Again(True, 0.0, token)
        tries.last = client_error(failure)
        tries.capacity = is_capacity(failure)
        if email in tries.credited and failure.kind == "client_error":
            # The credits were refused (spent meanwhile): the quota is still gone on this account.
            reset = health.quota_reset(current, model, now) or now + self.tuning.default_cooldown
            action = CoolModel(model, reset, f"quota exhausted; AI credits refused ({scrub(failure.message)[:200]})")
            self.projects.stale(email)  # the next poll must re-read the credits (loadCodeAssist)
            tries.last = GatewayError(429, f"The quota for {model} is exhausted and AI credits could not be used; retry later.", "RESOURCE_EXHAUSTED")
        if failure.status == 403 and unsupported_client(failure.reason, failure.message):
            action = Disable(unsupported_client_reason(email, self.client_name(current)))
            tries.last = GatewayError(503, f"A pool account cannot use Cloud Code: {UNSUPPORTED_CLIENT_FOR_CLIENTS}")
        self.pool.failed(email, f"HTTP {failure.status} {failure.reason or failure.kind}: {scrub(failure.message)[:200]}")
        if isinstance(action, RetrySame):
            tries.retried.add(email)
            return _Again(True, action.delay, token)
        if isinstance(action, RefreshAndRetrySame):
            tries.refreshed.add(email)
            try:
                fresh = await self.tokens.token_for(email, rejected=token)
            except InvalidGrant as e:
                return self._next(tries, email, GatewayError(503, f"A pool account was disabled: {e}. Re-authorise it, then retry."), "invalid_grant")
            except (TokenEndpointError, UpstreamUnreachable) as e:
                return self._next(tries, email, GatewayError(503, f"Could not refresh a pool account's token: {e}. Retry shortly."), type(e).__name__)
            return _Again(True, 0.0, fresh)
        if isinstance(action, CoolAccount):
            log.info("account {email} cooling down until {until:.0f}: {reason}", email=self._who(email), until=action.until, reason=action.reason)
            self.pool.cool_account(email, action.until, action.reason, action.validation_url)
        elif isinstance(action, CoolModel):
            log.info("account {email} cooling down for {model} until {until:.0f}: {reason}", email=self._who(email), model=action.model, until=action.until, reason=action.reason)
            self.pool.cool_model(email, action.model, action.until, action.reason)
            if self.quota is not None and action.poll_quota:
                self.quota.poll_soon(email)
        elif isinstance(action, Disable):
            who = self._who(email)
            log.warn("account {email} taken out of rotation: {reason}", email=who, reason=action.reason.replace(email, str(who or "EMAIL")))
            self.pool.disable(email, action.reason, action.validation_url)
        elif isinstance(action, Backoff):
            tries.backoffs += 1
            return _Again(False, action.delay)
        elif isinstance(action, GiveUp):
            raise tries.last
        assert isinstance(action, (CoolAccount, CoolModel, Disable, NextAccount))
        tries.exclude.add(email)
        return _Again(False)

    def _empty_stream(self, tries: _Tries, email: str, token: str | None) -> _Again:
        """A 200 stream with no candidates and no error (PROTOCOL.md 2b): once more on the same
        account, then another account."""
        if email not in tries.empty:
            tries.empty.add(email)
            self.observer.attempt_failed("empty_stream")
            return _Again(True, 0.0, token)
        return self._next(tries, email, GatewayError(503, "Cloud Code answered with an empty stream (no candidates, no error) twice; retry the request."), "empty_stream")
    def version_refused(self) -> GatewayError:
        """Cloud Code refused the client version: not the account's fault and not capacity.
        Re-read the manifest now; the client hears the cause, the operator what to raise."""
        version = self.version.current() if self.version is not None else "unknown"
        log.warn(
            "Cloud Code refused client version {version} (\"This version of Antigravity is no longer supported\"): "
            "re-reading the version manifest now; if this repeats, raise [upstream] version_floor above {version}",
            version=version,
        )
        if self.version is not None:
            self.version.refresh_soon()
        self.observer.attempt_failed("version_refused")
        return GatewayError(503, client_version.rejection_message(version), "UNAVAILABLE", [retry_info(30.0)], {"Retry-After": "30"})

    def stream_refusal(self, first_event: bytes) -> GatewayError | None:
        """A 200 stream whose first event is the version refusal: the same decision as a 503."""
        return self.version_refused() if client_version.is_rejection(200, first_event) else None

    def client_name(self, account: Account) -> str:
        """The OAuth client an account uses (its own or the default), for messages."""
        clients = getattr(self.tokens, "clients", None)
        return clients.name_of(account) if clients is not None else (account.oauth_client or "default")

    def _who(self, email: str) -> str | None:
        """The account as ``[logging] account_label`` wants it in logs (email, hash or nothing)."""
        label = getattr(self.observer, "label", None)
        return label(email) if label is not None else email

    def _next(self, tries: _Tries, email: str, error: GatewayError, reason: str) -> _Again:
        """This account cannot serve now (setup failed or unreachable): another one, at once."""
        tries.last = error
        tries.capacity = False
        tries.exclude.add(email)
        self.pool.failed(email, reason)
        self.observer.attempt_failed(reason)
        return _Again(False)

    def _forwarded(self, answer: UpstreamResponse, account: Account, attempts: int) -> Forwarded:
        email = account.email
        release = once(lambda: self.pool.release(email))
        response = answer.response
        if getattr(response, "length", None) == 0:
            release()  # treq never delivers an empty body, so nothing would release it
        else:
            response = ReleasingResponse(response, release)
        return Forwarded(UpstreamResponse(answer.code, response, answer.host), account, attempts, release)

    def _give_up(self, tries: _Tries, model: str, select_model: str | None) -> GatewayError:
        """The error for a request no attempt could serve."""
        last = tries.last
        if last is not None and tries.capacity:
            message = (
                f"{last.message.rstrip('. ')}. Cloud Code has no capacity for {model} right now; that is on "
                "Google's side, so other accounts rarely help. Retry in a little while."
            )
            return GatewayError(503, message, "UNAVAILABLE", last.details, last.headers)
        now = self.clock()
        available = self.pool.availability(select_model)
        if available.usable_now == 0 and available.earliest is not None and (last is None or last.code == 429):
            delay = max(0.0, available.earliest - now)
            cooling = available.enabled
            message = (
                f"No account in the pool can serve {model} now: {cooling} cooling down (quota or rate limits)"
                + (f", {available.disabled} disabled" if available.disabled else "")
                + f". The first comes back in {_human(delay)}; retry then."
            )
            if last is not None:
                message = f"{last.message.rstrip('. ')}. {message}"
            details = [d for d in (last.details if last is not None else []) if not str(d.get("@type", "")).endswith("RetryInfo")]
            details.append(retry_info(delay))
            return GatewayError(429, message, "RESOURCE_EXHAUSTED", details, {"Retry-After": str(max(1, math.ceil(delay)))})
        if last is not None:
            return last
        if available.enabled == 0:
            # Scrubbed: a reason may name the account (a client must not learn the pool's emails).
            reasons = sorted({scrub(s.account.disabled_reason or "no reason given") for s in self.pool.states() if s.account.disabled})
            disabled = f" ({available.disabled} disabled: {'; '.join(reasons)[:300]})" if available.disabled else ""
            # The store's location is the operator's business: the log and /admin name it, clients never see it.
            log.warn("no usable Google account in the pool (store: {store})", store=self.pool.backend.describe())
            return GatewayError(
                503,
                "No usable Google account in the pool" + disabled + ": " + NO_ACCOUNT_HELP.format(accounts=accounts_command()) + ".",
            )
        return GatewayError(503, "No account in the pool could serve this request; retry shortly.")


def _human(seconds: float) -> str:
    seconds = max(0, math.ceil(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
