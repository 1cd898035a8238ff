"""Everything the emulator remembers: accounts, issued tokens, operations,
fault rules, quotas, recorded requests and counters.

Pure (no Twisted, no I/O): the clock is a callable, so unit tests drive time
by hand and the web layer stays a thin shell around this object.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from gateway.emulator.catalogue import Catalogue
from gateway.emulator.clients import Client, known_clients
from gateway.emulator.quota_summary import WINDOWS
from gateway.emulator.body_faults import BODY_KINDS  # fault kinds in the body, after its headers

TIERS = ("free-tier", "standard-tier")
SCOPE = (
    "https://www.googleapis.com/auth/cloud-platform "
    "https://www.googleapis.com/auth/userinfo.email "
    "https://www.googleapis.com/auth/userinfo.profile openid"
)

#: Methods a fault rule may name. ``token`` is the OAuth endpoint, ``userinfo``
#: ``/oauth2/v2/userinfo``, ``operations`` the ``GET /v1internal/operations/…`` poll.
API_METHODS = (
    "generateContent",
    "streamGenerateContent",
    "countTokens",
    "loadCodeAssist",
    "onboardUser",
    "fetchAvailableModels",
    "retrieveUserQuotaSummary",
)
FAULT_METHODS = API_METHODS + ("operations", "token", "userinfo", "*")
FAULT_KINDS = ("error", "delay", "cut", "stall", "stream_error", "invalid_grant", "reset", "empty") + BODY_KINDS
#: ``empty``: a 200 stream that ends with no candidates and no error (Google does this).
STREAM_KINDS = ("cut", "stall", "stream_error", "empty")


class StateError(ValueError):
    """Bad input to the control API or the seed file (answered as 400)."""


def iso_time(seconds: float) -> str:
    """RFC 3339 UTC with a ``Z``, as Google writes ``resetTime``."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_time(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise StateError(f"not an RFC 3339 time: {text!r}") from None


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text (``1h2m3.5s``), the form of ``quotaResetDelay``."""
    seconds = max(0.0, seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours >= 1:
        out += f"{int(hours)}h"
    if minutes >= 1 or out:
        out += f"{int(minutes)}m"
    text = f"{secs:.3f}".rstrip("0").rstrip(".")
    return out + (text or "0") + "s"


# --------------------------------------------------------------------------- accounts


@dataclass
class Account:
    """A Google account the emulator knows, as seeded or added by tests."""

    email: str
    refresh_token: str
    project_id: str | None = None
    tier: str = "free-tier"
    ineligible: list[dict[str, str]] = field(default_factory=list)
    #: The OAuth client (name: antigravity, gemini-cli, emulator) whose refresh token this is;
    #: None: any known client may refresh it (hand-written tests).
    client: str | None = None
    #: A Workspace account: Cloud Code still serves it through retired clients.
    workspace: bool = False
    #: GOOGLE_ONE_AI credits left (loadCodeAssist ``paidTier.availableCredits``).
    credits: int = 0

    @classmethod
    def from_json(cls, obj: Any) -> "Account":
        """Validate one seed/control-API account; strict so typos fail loudly."""
        if not isinstance(obj, dict):
            raise StateError("an account must be a JSON object")
        allowed = {"email", "refresh_token", "project_id", "tier", "ineligible", "client", "workspace", "credits"}
        unknown = set(obj) - allowed
        if unknown:
            raise StateError(f"unknown account field(s): {', '.join(sorted(unknown))}")
        email = obj.get("email")
        refresh = obj.get("refresh_token")
        if not isinstance(email, str) or "@" not in email:
            raise StateError("account.email must be an email address")
        if not isinstance(refresh, str) or not refresh:
            raise StateError(f"account {email}: refresh_token must be a non-empty string")
        project = obj.get("project_id")
        if project is not None and (not isinstance(project, str) or not project):
            raise StateError(f"account {email}: project_id must be a non-empty string or null")
        tier = obj.get("tier", "free-tier")
        if tier not in TIERS:
            raise StateError(f"account {email}: tier must be one of {', '.join(TIERS)}")
        ineligible = obj.get("ineligible") or []
        if not isinstance(ineligible, list):
            raise StateError(f"account {email}: ineligible must be a list")
        reasons = []
        for item in ineligible:
            if not isinstance(item, dict) or not isinstance(item.get("reasonCode"), str):
                raise StateError(f"account {email}: each ineligible entry needs a reasonCode")
            extra = set(item) - {"reasonCode", "reasonMessage", "validationUrl", "tierId", "tierName"}
            if extra:
                raise StateError(f"account {email}: unknown ineligible field(s): {', '.join(sorted(extra))}")
            reasons.append({k: str(v) for k, v in item.items()})
        client = obj.get("client")
        if client is not None and client not in ("antigravity", "gemini-cli", "emulator"):
            raise StateError(f"account {email}: client must be antigravity, gemini-cli, emulator or null")
        workspace = obj.get("workspace", False)
        if not isinstance(workspace, bool):
            raise StateError(f"account {email}: workspace must be true or false")
        credits = obj.get("credits", 0)
        if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
            raise StateError(f"account {email}: credits must be an integer >= 0")
        return cls(email, refresh, project, tier, reasons, client, workspace, credits)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def validation_required(self) -> dict[str, str] | None:
        """The VALIDATION_REQUIRED reason, which blocks generation (403)."""
        for reason in self.ineligible:
            if reason.get("reasonCode") == "VALIDATION_REQUIRED":
                return reason
        return None


def parse_accounts(obj: Any) -> list[Account]:
    """``{"accounts": [...]}``, a list, or one account object -> accounts."""
    if isinstance(obj, dict) and "accounts" in obj:
        extra = set(obj) - {"accounts", "replace_all"}
        if extra:
            raise StateError(f"unknown field(s): {', '.join(sorted(extra))}")
        obj = obj["accounts"]
    elif isinstance(obj, dict):
        obj = [obj]
    if not isinstance(obj, list):
        raise StateError('expected {"accounts": [...]}')
    accounts = [Account.from_json(a) for a in obj]
    emails = [a.email for a in accounts]
    if len(set(emails)) != len(emails):
        raise StateError("duplicate account email")
    return accounts


def load_seed(path: str) -> list[Account]:
    """Accounts from a seed file (``{"accounts": [...]}``)."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as e:
        raise StateError(f"cannot read seed file {path}: {e.strerror}") from None
    except ValueError as e:
        raise StateError(f"seed file {path} is not JSON: {e}") from None
    if not isinstance(document, dict) or "accounts" not in document:
        raise StateError(f'seed file {path}: expected {{"accounts": [...]}}')
    return parse_accounts(document)


def demo_accounts(count: int) -> list[Account]:
    """``user1@example.com`` … with refresh tokens ``emu-refresh-1`` … and projects."""
    return [Account(f"user{i}@example.com", f"emu-refresh-{i}", f"emu-project-{i}") for i in range(1, count + 1)]


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Knobs the CLI sets at start and ``/_emulator/settings`` can change."""

    event_delay: float = 0.02
    token_lifetime: int = 3599
    stream_events: int = 5
    onboard_polls: int = 1
    rotate_refresh_tokens: bool = False
    client_id: str = "emulator-client-id"
    client_secret: str = "emulator-client-secret"
    max_recorded: int = 10_000
    #: Generation calls whose User-Agent names an older Antigravity version get 503 (emulator/versions.py).
    min_client_version: str = "2.0.0"
    #: ``version:`` of the update manifest served at ``/manifest/latest-arm64-mac.yml``.
    manifest_version: str = "2.9.4"
    #: HTTP status of the manifest (not 200: it answers an error page, for failure tests).
    manifest_status: int = 200
    #: Refuse old versions inside a 200 stream (an error event) instead of a 503.
    version_reject_in_stream: bool = False
    #: Credits an account must have before ``enabledCreditTypes`` may spend them.
    credit_minimum: int = 50

    def update(self, obj: Any) -> None:
        """Apply a partial JSON update, type-checked, all-or-nothing."""
        if not isinstance(obj, dict):
            raise StateError("settings must be a JSON object")
        types = {f.name: f.type for f in fields(self)}
        new = replace(self)
        for key, value in obj.items():
            if key not in types:
                raise StateError(f"unknown setting {key!r}")
            current = getattr(self, key)
            if isinstance(current, bool):
                ok = isinstance(value, bool)
            elif isinstance(current, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(current, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                value = float(value) if ok else value
            else:
                ok = isinstance(value, str) and bool(value)
            if not ok:
                raise StateError(f"setting {key!r} has the wrong type")
            setattr(new, key, value)
        for key in ("min_client_version", "manifest_version"):
            if not all(part.isdigit() for part in getattr(new, key).split(".")):
                raise StateError(f"setting {key!r} must be a dotted version such as 2.9.1")
        if new.event_delay < 0 or new.token_lifetime <= 0 or new.stream_events < 1 or new.onboard_polls < 0 or new.max_recorded < 0:
            raise StateError("settings out of range")
        for f in fields(self):
            setattr(self, f.name, getattr(new, f.name))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["client_secret"] = "***"
        return out


# --------------------------------------------------------------------------- tokens, operations


@dataclass
class AccessToken:
    token: str
    email: str
    expires_at: float
    revoked: bool = False
    #: Name of the OAuth client that issued the token (emulator/clients.py).
    client: str | None = None


@dataclass
class Operation:
    """An ``onboardUser`` long-running operation, done after N polls."""

    name: str
    email: str
    project_id: str
    tier: str
    polls_left: int

    @property
    def done(self) -> bool:
        return self.polls_left <= 0


#: Result of looking up a bearer token.
TOKEN_OK, TOKEN_MISSING, TOKEN_UNKNOWN, TOKEN_EXPIRED = "ok", "missing", "unknown", "expired"


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """One fault rule: which calls it matches, how often, and what it does."""

    id: str
    method: str = "*"
    host: str | None = None
    email: str | None = None
    model: str | None = None
    #: Matches every model of a catalogue family (``claude``, ``gemini-3``…): a family-wide 403.
    family: str | None = None
    user_agent: str | None = None
    times: int = 1
    kind: str = "error"
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after_events: int = 1
    reason: str | None = None
    retry_delay: float | None = None
    quota_reset_delay: float | None = None
    message: str | None = None
    validation_url: str | None = None
    size: int = 0
    hits: int = 0

    @classmethod
    def from_json(cls, obj: Any, fault_id: str) -> "Fault":
        """Validate a ``POST /_emulator/faults`` body; unknown keys are errors."""
        if not isinstance(obj, dict):
            raise StateError("a fault must be a JSON object")
        names = {f.name for f in fields(cls)} - {"id", "hits"}
        unknown = set(obj) - names
        if unknown:
            raise StateError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        fault = cls(fault_id)
        for key, value in obj.items():
            setattr(fault, key, value)
        fault._check()
        if fault.status is None:
            fault.status = 400 if fault.kind == "invalid_grant" else 200 if fault.kind in BODY_KINDS else 503
        if fault.kind == "delay" and "seconds" not in obj:
            fault.seconds = 1.0
        return fault

    def _check(self) -> None:
        def opt_str(name: str) -> None:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise StateError(f"fault.{name} must be a string or null")

        def number(name: str, value: Any, minimum: float) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
                raise StateError(f"fault.{name} must be a number >= {minimum}")

        if self.method not in FAULT_METHODS:
            raise StateError(f"fault.method must be one of {', '.join(FAULT_METHODS)}")
        if self.kind not in FAULT_KINDS:
            raise StateError(f"fault.kind must be one of {', '.join(FAULT_KINDS)}")
        for name in ("host", "email", "model", "family", "user_agent", "reason", "message", "validation_url"):
            opt_str(name)
        if self.model and self.model.startswith("models/"):
            self.model = self.model[len("models/") :]
        if isinstance(self.times, bool) or not isinstance(self.times, int) or (self.times < 1 and self.times != -1):
            raise StateError("fault.times must be a positive integer or -1 (forever)")
        if self.status is not None and (isinstance(self.status, bool) or not isinstance(self.status, int) or not 100 <= self.status <= 599):
            raise StateError("fault.status must be an HTTP status code")
        if not isinstance(self.headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise StateError("fault.headers must map strings to strings")
        number("seconds", self.seconds, 0)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise StateError("fault.size must be an integer >= 0")
        if isinstance(self.after_events, bool) or not isinstance(self.after_events, int) or self.after_events < 0:
            raise StateError("fault.after_events must be an integer >= 0")
        if self.retry_delay is not None:
            number("retry_delay", self.retry_delay, 0)
        if self.quota_reset_delay is not None:
            number("quota_reset_delay", self.quota_reset_delay, 0)
        if self.kind in STREAM_KINDS and self.method not in ("streamGenerateContent", "*"):
            raise StateError(f"fault kind {self.kind!r} applies to streamGenerateContent only")
        if self.kind == "invalid_grant" and self.method not in ("token", "*"):
            raise StateError("fault kind 'invalid_grant' applies to the token endpoint only")

    def matches(self, method: str, host: str | None, email: str | None, model: str | None, user_agent: str) -> bool:
        """Whether this rule applies to a call (stream-only kinds only to streams)."""
        if self.method != "*" and self.method != method:
            return False
        if self.kind in STREAM_KINDS and method != "streamGenerateContent":
            return False
        if self.kind == "invalid_grant" and method != "token":
            return False
        if self.host is not None and self.host != (host or ""):
            return False
        if self.email is not None and self.email != email:
            return False
        if self.model is not None and self.model != model:
            return False
        if self.family is not None:
            from gateway.emulator.catalogue import get_model

            spec = get_model(model or "")
            if spec is None or spec.family != self.family:
                return False
        if self.user_agent is not None and self.user_agent not in user_agent:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["remaining"] = self.times
        return out


# --------------------------------------------------------------------------- stats


@dataclass
class Stats:
    """Counters tests and benchmarks read from ``GET /_emulator/stats``."""

    requests: dict[str, int] = field(default_factory=dict)
    by_host: dict[str, dict[str, int]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    token_refreshes: dict[str, int] = field(default_factory=dict)
    token_failures: int = 0
    faults_fired: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    open_streams: int = 0
    max_open_streams: int = 0
    stream_events: int = 0
    disconnects: int = 0
    #: usageMetadata answered, summed by field (what Google would bill): the truth for usage accounting tests.
    answered_usage: dict[str, int] = field(default_factory=dict)

    def answered(self, usage: dict[str, Any]) -> None:
        for name, value in usage.items():
            if isinstance(value, int):
                self.answered_usage[name] = self.answered_usage.get(name, 0) + value

    def count(self, method: str, host: str | None) -> None:
        self.requests[method] = self.requests.get(method, 0) + 1
        per = self.by_host.setdefault(host or "", {})
        per[method] = per.get(method, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))


# --------------------------------------------------------------------------- the state


class EmulatorState:
    """All mutable emulator state; the web layer only calls these methods."""

    def __init__(
        self,
        accounts: Iterable[Account] = (),
        settings: Settings | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.now = now
        self.settings = settings or Settings()
        self._initial_settings = replace(self.settings)
        self.accounts: dict[str, Account] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.operations: dict[str, Operation] = {}
        self.auth_codes: dict[str, tuple[str, str, str]] = {}
        self.faults: list[Fault] = []
        self.catalogue = Catalogue()
        self.quotas: dict[tuple[str, str], tuple[float, float]] = {}
        #: (email, groupId) -> (remaining fraction, reset) for retrieveUserQuotaSummary
        self.quota_windows: dict[tuple[str, str], tuple[float, float]] = {}
        self.stats = Stats()
        self.recorded: deque[dict[str, Any]] = deque(maxlen=self.settings.max_recorded or None)
        self._fault_seq = 0
        self.quota_reset_at = float(int(self.now()) + 86_400)
        for account in accounts:
            self.put_account(account)

    # -- accounts

    def put_account(self, account: Account) -> None:
        """Add or replace (by email); a replaced account's tokens die with it."""
        old = self.accounts.get(account.email)
        if old is not None:
            self._forget_tokens(old.email, refresh=True)
        self.accounts[account.email] = account
        self.refresh_tokens[account.refresh_token] = account.email

    def remove_account(self, email: str) -> bool:
        if email not in self.accounts:
            return False
        self._forget_tokens(email, refresh=True)
        del self.accounts[email]
        return True

    def _forget_tokens(self, email: str, refresh: bool) -> None:
        for token in self.access_tokens.values():
            if token.email == email:
                token.revoked = True
        if refresh:
            for value in [r for r, e in self.refresh_tokens.items() if e == email]:
                del self.refresh_tokens[value]

    # -- OAuth

    def client_for(self, client_id: str | None) -> Client | None:
        """The known OAuth client with this id (built-in Antigravity and gemini-cli, or the test client)."""
        return known_clients(self.settings.client_id, self.settings.client_secret).get(client_id or "")

    def check_client(self, client_id: str | None, client_secret: str | None) -> str | None:
        """None when the OAuth client is right, else the invalid_client description."""
        client = self.client_for(client_id)
        if client is None:
            return "The OAuth client was not found."
        if client_secret != client.client_secret:
            return "Unauthorized"
        return None

    def client_may_refresh(self, account: Account, client_id: str | None) -> bool:
        """A refresh token works only with the client that issued it (None: any client)."""
        client = self.client_for(client_id)
        return account.client is None or (client is not None and client.name == account.client)

    def token_client(self, authorization: str | None) -> Client | None:
        """The client that issued a bearer token."""
        value = (authorization or "").strip().partition(" ")[2].strip()
        token = self.access_tokens.get(value)
        if token is None or token.client is None:
            return None
        return next((c for c in known_clients(self.settings.client_id, self.settings.client_secret).values() if c.name == token.client), None)

    def account_for_refresh(self, refresh_token: str | None) -> Account | None:
        email = self.refresh_tokens.get(refresh_token or "")
        return self.accounts.get(email) if email else None

    def issue_token(self, account: Account, rotate: bool | None = None, client_id: str | None = None) -> tuple[AccessToken, str | None]:
        """A fresh access token; with rotation, also a new refresh token (the old dies)."""
        self._purge_tokens()
        client = self.client_for(client_id)
        token = AccessToken("ya29.emu-" + secrets.token_urlsafe(24), account.email, self.now() + self.settings.token_lifetime,
                            client=client.name if client is not None else None)
        self.access_tokens[token.token] = token
        self.stats.token_refreshes[account.email] = self.stats.token_refreshes.get(account.email, 0) + 1
        new_refresh = None
        if self.settings.rotate_refresh_tokens if rotate is None else rotate:
            self.refresh_tokens.pop(account.refresh_token, None)
            new_refresh = "1//emu-" + secrets.token_urlsafe(24)
            account.refresh_token = new_refresh
            self.refresh_tokens[new_refresh] = account.email
        return token, new_refresh

    def _purge_tokens(self) -> None:
        """Forget tokens dead for a day so long benchmarks do not grow memory."""
        if len(self.access_tokens) < 1024:
            return
        cutoff = self.now() - 86_400
        for key in [k for k, t in self.access_tokens.items() if t.expires_at < cutoff]:
            del self.access_tokens[key]

    def lookup_access(self, authorization: str | None) -> tuple[str, Account | None]:
        """Classify an ``Authorization`` header: (TOKEN_*, account when ok)."""
        if not authorization:
            return TOKEN_MISSING, None
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return TOKEN_UNKNOWN, None
        token = self.access_tokens.get(value.strip())
        if token is None:
            return TOKEN_UNKNOWN, None
        account = self.accounts.get(token.email)
        if token.revoked or account is None or token.expires_at <= self.now():
            return TOKEN_EXPIRED, None
        return TOKEN_OK, account

    def revoke(self, email: str, refresh: bool = False) -> bool:
        """Kill an account's access tokens (and refresh tokens when asked)."""
        if email not in self.accounts:
            return False
        self._forget_tokens(email, refresh)
        return True

    def issue_code(self, email: str, client_id: str, redirect_uri: str) -> str:
        """An authorization code for the consent-screen stand-in."""
        code = "4/emu-" + secrets.token_urlsafe(18)
        self.auth_codes[code] = (email, client_id, redirect_uri)
        return code

    def redeem_code(self, code: str | None, client_id: str | None, redirect_uri: str | None) -> Account | None:
        """One-shot: a code works once, for the client and redirect it was made for."""
        entry = self.auth_codes.pop(code or "", None)
        if entry is None or entry[1] != client_id or entry[2] != redirect_uri:
            return None
        account = self.accounts.get(entry[0])
        client = self.client_for(client_id)
        if account is not None and account.client is not None and client is not None:
            account.client = client.name  # a new consent: the refresh token now belongs to this client
        return account

    # -- onboarding

    def project_for_onboarding(self, account: Account) -> str:
        """A stable project id for a free-tier account that had none."""
        digest = hashlib.sha256(account.email.encode()).hexdigest()
        return f"emu-onboarded-{digest[:10]}"

    def start_onboarding(self, account: Account, tier: str, project: str | None) -> Operation:
        """Create the operation; the project appears only when polling finishes it."""
        name = "operations/onboard-" + secrets.token_hex(8)
        op = Operation(name, account.email, project or self.project_for_onboarding(account), tier, self.settings.onboard_polls)
        self.operations[name] = op
        if op.done:
            self._finish(op)
        return op

    def poll_operation(self, name: str, account: Account) -> Operation | None:
        """Advance an operation by one poll; None when not this account's."""
        op = self.operations.get(name)
        if op is None or op.email != account.email:
            return None
        if not op.done:
            op.polls_left -= 1
            if op.done:
                self._finish(op)
        return op

    def _finish(self, op: Operation) -> None:
        account = self.accounts.get(op.email)
        if account is not None and account.project_id is None:
            account.project_id = op.project_id
            account.tier = op.tier

    # -- quota

    def quota(self, email: str, model: str) -> tuple[float, float]:
        """(remainingFraction, reset time in epoch seconds) for one account and model."""
        remaining, reset = self.quotas.get((email, model), (1.0, self.quota_reset_at))
        if remaining < 1.0 and reset <= self.now():
            self.quotas.pop((email, model), None)
            return 1.0, self.quota_reset_at
        return remaining, reset

    def set_quota(self, obj: Any) -> int:
        """``{email?, model, remaining_fraction, reset_in? | reset_time?}``; returns rows set."""
        if not isinstance(obj, dict):
            raise StateError("quota must be a JSON object")
        unknown = set(obj) - {"email", "model", "remaining_fraction", "reset_in", "reset_time"}
        if unknown:
            raise StateError(f"unknown quota field(s): {', '.join(sorted(unknown))}")
        model = obj.get("model")
        if not isinstance(model, str):
            raise StateError("quota.model is required")
        fraction = obj.get("remaining_fraction", 1.0)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise StateError("quota.remaining_fraction must be between 0 and 1")
        if "reset_time" in obj:
            reset = parse_iso_time(str(obj["reset_time"]))
        elif "reset_in" in obj:
            reset_in = obj["reset_in"]
            if isinstance(reset_in, bool) or not isinstance(reset_in, (int, float)) or reset_in < 0:
                raise StateError("quota.reset_in must be seconds >= 0")
            reset = self.now() + reset_in
        else:
            reset = self.quota_reset_at
        email = obj.get("email")
        emails = [email] if isinstance(email, str) else list(self.accounts)
        for e in emails:
            self.quotas[(e, model)] = (float(fraction), reset)
        return len(emails)

    def set_quota_window(self, obj: Any) -> int:
        """``{email?, group: five-hour|weekly, remaining_fraction, reset_in?}``; returns rows set."""
        if not isinstance(obj, dict):
            raise StateError("quota window must be a JSON object")
        unknown = set(obj) - {"email", "group", "remaining_fraction", "reset_in"}
        if unknown:
            raise StateError(f"unknown quota window field(s): {', '.join(sorted(unknown))}")
        group = obj.get("group")
        if group not in WINDOWS:
            raise StateError(f"quota window group must be one of {', '.join(WINDOWS)}")
        fraction = obj.get("remaining_fraction", 1.0)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise StateError("remaining_fraction must be between 0 and 1")
        reset_in = obj.get("reset_in", WINDOWS[group][1])
        if isinstance(reset_in, bool) or not isinstance(reset_in, (int, float)) or reset_in < 0:
            raise StateError("reset_in must be seconds >= 0")
        email = obj.get("email")
        emails = [email] if isinstance(email, str) else list(self.accounts)
        for e in emails:
            self.quota_windows[(e, group)] = (float(fraction), self.now() + reset_in)
        return len(emails)

    def windows_of(self, email: str) -> dict[str, tuple[float, float]]:
        return {group: value for (e, group), value in self.quota_windows.items() if e == email}

    # -- faults

    def add_fault(self, obj: Any) -> Fault:
        self._fault_seq += 1
        fault = Fault.from_json(obj, f"f{self._fault_seq}")
        self.faults.append(fault)
        return fault

    def remove_fault(self, fault_id: str) -> bool:
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def take_fault(self, method: str, host: str | None, email: str | None, model: str | None, user_agent: str = "") -> Fault | None:
        """The first matching rule, consumed once (rules with times=-1 never run out)."""
        for fault in self.faults:
            if fault.matches(method, host, email, model, user_agent):
                fault.hits += 1
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                self.stats.faults_fired += 1
                return fault
        return None

    # -- records

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Keep a request for ``GET /_emulator/requests`` (bounded; oldest drop)."""
        if self.settings.max_recorded:
            if self.recorded.maxlen != self.settings.max_recorded:
                self.recorded = deque(self.recorded, maxlen=self.settings.max_recorded)
            self.recorded.append(entry)
        return entry

    def requests(self, method: str | None = None, host: str | None = None, email: str | None = None) -> list[dict[str, Any]]:
        out = []
        for entry in self.recorded:
            if method is not None and entry["method"] != method:
                continue
            if host is not None and (entry["host"] or "") != host:
                continue
            if email is not None and entry["email"] != email:
                continue
            out.append(entry)
        return out

    def reset(self, accounts: bool = False) -> None:
        """Clear faults, stats, records, quotas and settings; accounts only when asked."""
        self.faults.clear()
        self.catalogue.reset()
        self.quotas.clear()
        self.quota_windows.clear()
        self.recorded.clear()
        open_streams, in_flight = self.stats.open_streams, self.stats.in_flight
        self.stats = Stats(open_streams=open_streams, in_flight=in_flight)
        self.settings = replace(self._initial_settings)
        if accounts:
            self.accounts.clear()
            self.refresh_tokens.clear()
            self.access_tokens.clear()
            self.operations.clear()
            self.auth_codes.clear()
