"""Finding an account's Cloud Code project: ``loadCodeAssist``, then ``onboardUser``.

Runs once per account (the project is stored); concurrent requests for the
same account share one discovery. What the answers mean is decided by the
pure helpers at the top; the class only sequences calls.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from twisted.logger import Logger

from gateway.pool.account import Account, Credits
from gateway.pool.pool import AccountPool
from gateway.upstream.oauth_clients import UNSUPPORTED_CLIENT_FOR_CLIENTS, unsupported_client_reason
from gateway.upstream.client import UpstreamClient, read_body
from gateway.upstream.singleflight import SingleFlight

log = Logger()

UNSUPPORTED_CLIENT = "UNSUPPORTED_CLIENT"
METADATA = {"ideType": "ANTIGRAVITY", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}


class AccountIneligible(Exception):
    """Upstream will not serve this account; the message is for the operator."""


class DiscoveryFailed(Exception):
    """Discovery failed for a reason that may pass (HTTP error, timeout)."""


def project_from(value: Any) -> str | None:
    """``cloudaicompanionProject`` is a string or an object with ``id``."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        return value["id"]
    return None


def ineligible_reason(answer: dict[str, Any]) -> str | None:
    """Why upstream refuses the account, with any validation URL, or None."""
    reasons = []
    for tier in answer.get("ineligibleTiers") or []:
        if not isinstance(tier, dict):
            continue
        text = tier.get("reasonCode") or "INELIGIBLE"
        if tier.get("reasonMessage"):
            text += f": {tier['reasonMessage']}"
        url = tier.get("validationUrl") or tier.get("validation_url")
        if url:
            text += f" (verify at {url})"
        reasons.append(text)
    return "; ".join(reasons) or None


def default_tier(answer: dict[str, Any]) -> str:
    for tier in answer.get("allowedTiers") or []:
        if isinstance(tier, dict) and tier.get("isDefault") and tier.get("id"):
            return str(tier["id"])
    return "free-tier"


@attrs.frozen
class Discovery:
    """What ``loadCodeAssist`` said: a project now, or how to onboard.

    ``tier`` is the tier to onboard with; ``current`` the tier the account
    is on (``standard-tier``, with the paid tier after a slash:
    ``standard-tier/g1-pro-tier``), None before onboarding.
    """

    project: str | None
    tier: str
    ineligible: str | None
    current: str | None = None
    #: ``paidTier.availableCredits`` (AI credits).
    credits: tuple[Credits, ...] = ()
    #: Cloud Code refuses the OAuth client this account's token came from (UNSUPPORTED_CLIENT).
    unsupported_client: bool = False


def _tier_id(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        return value["id"]
    return None


def _amount(value: Any) -> float | None:
    """An int64 credit amount: proto3 JSON writes it as a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def read_credits(answer: dict[str, Any]) -> tuple[Credits, ...]:
    """``paidTier.availableCredits[]`` ({creditType, creditAmount, minimumCreditAmountForUsage})."""
    paid = answer.get("paidTier")
    entries = paid.get("availableCredits") if isinstance(paid, dict) else None
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("creditType"), str):
            continue
        amount = _amount(entry.get("creditAmount"))
        if amount is not None:
            out.append(Credits(entry["creditType"], amount, _amount(entry.get("minimumCreditAmountForUsage")) or 0.0))
    return tuple(out)


def read_load_answer(answer: dict[str, Any]) -> Discovery:
    project = project_from(answer.get("cloudaicompanionProject"))
    current = answer.get("currentTier") if isinstance(answer.get("currentTier"), dict) else None
    tier = _tier_id(current)
    paid = _tier_id(answer.get("paidTier"))
    if tier and paid and paid != tier:
        tier = f"{tier}/{paid}"
    unsupported = any(
        isinstance(t, dict) and t.get("reasonCode") == UNSUPPORTED_CLIENT for t in answer.get("ineligibleTiers") or []
    )
    return Discovery(project if current or project else None, default_tier(answer), ineligible_reason(answer), tier,
                     read_credits(answer), unsupported)


#: A forced re-read of loadCodeAssist (tier, credits, a retired client) within this many
#: seconds of the last one is skipped: the first request's discovery and the quota poll it
#: triggers would otherwise ask twice in the same moment.
FRESH_SECONDS = 60.0


class ProjectResolver:
    def __init__(
        self,
        pool: AccountPool,
        client: UpstreamClient,
        reactor: IReactorTime,
        poll_interval: float = 2.0,
        max_polls: int = 30,
    ) -> None:
        self._pool = pool
        self._client = client
        self._reactor = reactor
        self._poll_interval = poll_interval
        self._max_polls = max_polls
        self._discovering: SingleFlight[str] = SingleFlight()
        #: Agrees one discovery per account with other instances (gateway.shared); None: discover here.
        self.shared: Any = None
        #: When each account's loadCodeAssist was last read (here or, with a shared backend, anywhere).
        self._loaded: dict[str, float] = {}
        #: The OAuth client name an account uses, for the operator's messages (assembly sets the pool's table).
        self.client_name: Callable[[Account], str] = lambda account: account.oauth_client or "default"
        #: How logs name an account (``[logging] account_label``; assembly sets the observer's).
        self.label: Callable[[str], Any] = lambda email: email

    def stop(self) -> None:
        """Cancel discoveries in flight (shutdown): a quota poll that is cancelled only gives up its wait."""
        self._discovering.stop()

    def project_for(self, email: str, token: str, force: bool = False) -> Deferred[str]:
        """The account's project: stored, else discovered once (``force``: ask again, e.g. for the tier)."""
        account = self._pool.get(email)
        if account is not None and account.project_id and (not force or self._fresh(email)):
            d: Deferred[str] = Deferred()
            d.callback(account.project_id)
            return d
        known = account is not None and bool(account.project_id)
        if self.shared is not None and not (force and known):  # a first discovery is agreed across instances
            return self._discovering.run(email, lambda: self._discover_shared(email, token))
        return self._discovering.run(email, lambda: self._discover(email, token))

    def known(self, email: str) -> str | None:
        """The stored project, as :meth:`project_for` (not forced) hands it out; None: ask that."""
        account = self._pool.get(email)
        return account.project_id if account is not None else None

    def stale(self, email: str) -> None:
        """What loadCodeAssist said is known to be out of date (e.g. credits refused): read it again next time."""
        self._loaded.pop(email, None)

    def _fresh(self, email: str) -> bool:
        """Whether loadCodeAssist was read so recently that asking again (``force``) would tell nothing new."""
        loaded = self._loaded.get(email)
        return loaded is not None and self._reactor.seconds() - loaded < FRESH_SECONDS

    async def _discover_shared(self, email: str, token: str) -> str:
        project = await self.shared.discover(self._pool, email, lambda: self._discover(email, token))
        self._loaded[email] = self._reactor.seconds()  # read moments ago, by this instance or another
        return project

    async def _discover(self, email: str, token: str) -> str:
        answer = await self._post("loadCodeAssist", {"metadata": METADATA}, token)
        found = read_load_answer(answer)
        stored = self._pool.get(email)
        if found.unsupported_client and stored is not None:
            reason = unsupported_client_reason(email, self.client_name(stored))
            who = self.label(email)
            log.warn("account {email} taken out of rotation: {reason}", email=who,
                     reason=unsupported_client_reason(str(who or "EMAIL"), self.client_name(stored)))
            self._pool.disable(email, reason)
            raise AccountIneligible(UNSUPPORTED_CLIENT_FOR_CLIENTS)
        project = found.project or (stored.project_id if stored is not None else None)
        if project is None:
            if found.ineligible and not answer.get("allowedTiers"):
                self._pool.disable(email, f"not eligible for Cloud Code: {found.ineligible}")
                raise AccountIneligible(found.ineligible)
            project = await self._onboard(found.tier, token)
        if project is None:
            reason = found.ineligible or "onboarding returned no project"
            self._pool.disable(email, f"no Cloud Code project: {reason}")
            raise AccountIneligible(reason)
        tier = found.current or found.tier
        self._pool.modify(email, lambda a: attrs.evolve(a, project_id=project, tier=tier, ineligible=found.ineligible, credits=found.credits))
        self._loaded[email] = self._reactor.seconds()
        return project

    async def _onboard(self, tier: str, token: str) -> str | None:
        body: dict[str, Any] = {"tierId": tier, "metadata": METADATA}
        operation = await self._post("onboardUser", body, token)
        for _ in range(self._max_polls):
            if operation.get("done"):
                response = operation.get("response") or {}
                return project_from(response.get("cloudaicompanionProject"))
            name = operation.get("name")
            await deferLater(self._reactor, self._poll_interval, lambda: None)
            if name:
                operation = await self._get(str(name), token)
            else:
                operation = await self._post("onboardUser", body, token)
        raise DiscoveryFailed("onboarding did not finish in time")

    async def _post(self, method: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        answer = await self._client.call(method, json.dumps(body).encode(), token)
        return await _json_answer(method, answer)

    async def _get(self, name: str, token: str) -> dict[str, Any]:
        answer = await self._client.get(name, token)
        return await _json_answer(name, answer)


async def _json_answer(what: str, answer: Any) -> dict[str, Any]:
    body = await read_body(answer.response)
    if answer.code != 200:
        raise DiscoveryFailed(f"{what} answered HTTP {answer.code}")
    try:
        document = json.loads(body)
    except ValueError:
        raise DiscoveryFailed(f"{what} answered non-JSON") from None
    if not isinstance(document, dict):
        raise DiscoveryFailed(f"{what} answered {type(document).__name__}, not an object")
    return document


