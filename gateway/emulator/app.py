"""The emulator's HTTP face: Cloud Code ``v1internal``, Google OAuth, and a control API.

A Klein app bound to one :class:`EmulatorState` and one clock. Upstream calls
answer under ``/v1internal:{method}`` and ``/{host}/v1internal:{method}`` (the
host tag lets one port play several upstream hosts); ``/token``,
``/oauth2/v2/userinfo`` and ``/o/oauth2/v2/auth`` play Google's OAuth;
``/_emulator/…`` (no auth) lets tests inject faults and read what was sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from klein import Klein
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from twisted.web.server import Site
from werkzeug.exceptions import MethodNotAllowed, NotFound

from gateway.emulator import body_faults, catalogue, quota_summary, rules, versions
from gateway.emulator.clients import refused as client_refused, unsupported_error, unsupported_tier
from gateway.emulator.rules_credits import credit_entries, credits_requested
from gateway.emulator.content import (
    bad_request,
    check_envelope,
    check_input_limit,
    count_tokens,
    fields_of,
    generate_body,
    parse_json_body,
    peek_model,
    plan_answer,
    project_denied,
    request_tokens,
    stream_bodies,
    validate_count_tokens,
    validate_request,
)
from gateway.emulator.state import (
    API_METHODS,
    SCOPE,
    STREAM_KINDS,
    TIERS,
    TOKEN_EXPIRED,
    TOKEN_MISSING,
    TOKEN_OK,
    Account,
    EmulatorState,
    Fault,
    StateError,
    go_duration,
    iso_time,
    parse_accounts,
)
from gateway.protocol.errors import GatewayError, error_dict, error_info, help_links, retry_info
from gateway.protocol.framing import dumps, sse_event

HOST_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
DOMAIN = "cloudcode-pa.googleapis.com"
RPC_PREFIX = "google.internal.cloud.code.v1internal.CloudCode."
SECRET_HEADERS = {"authorization", "cookie", "x-goog-api-key"}
DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    408: "Request timed out.",
    409: "The operation was aborted.",
    429: "Resource has been exhausted (e.g. check quota).",
    499: "The operation was cancelled.",
    500: "Internal error encountered.",
    501: "Operation is not implemented, or supported, or enabled.",
    502: "Bad gateway.",
    503: "The service is currently unavailable.",
    504: "Deadline expired before operation could complete.",
}
AUTH_HELP = (
    "Expected OAuth 2 access token, login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
TIER_INFO = {
    "free-tier": {
        "id": "free-tier",
        "name": "Gemini Code Assist for individuals",
        "description": "Unlimited coding assistant with the most powerful Gemini models",
        "userDefinedCloudaicompanionProject": False,
    },
    "standard-tier": {
        "id": "standard-tier",
        "name": "Gemini Code Assist",
        "description": "Unlimited coding assistant with the most powerful Gemini models",
        "userDefinedCloudaicompanionProject": True,
    },
}
PLATFORMS = ("PLATFORM_UNSPECIFIED", "DARWIN_AMD64", "DARWIN_ARM64", "LINUX_AMD64", "LINUX_ARM64", "WINDOWS_AMD64")
PLUGIN_TYPES = ("PLUGIN_UNSPECIFIED", "CLOUD_CODE", "GEMINI", "AIPLUGIN_INTELLIJ", "AIPLUGIN_STUDIO")
METADATA_FIELDS = ("ideType", "ideVersion", "pluginVersion", "platform", "updateChannel", "duetProject", "pluginType", "ideName")


def _forever() -> Deferred[None]:
    """A Deferred that only ends by cancellation (Klein cancels it on disconnect)."""
    return Deferred()


def _header(request: IRequest, name: bytes) -> str:
    value = request.getHeader(name)
    return value.decode("latin-1") if isinstance(value, bytes) else (value or "")


def _is_json(request: IRequest) -> bool:
    media = _header(request, b"content-type").split(";")[0].strip().lower()
    return media == "application/json"


def _drop_connection(request: IRequest, abort: bool) -> None:
    """Close the TCP connection under an HTTP request: flushed (cut) or at once (reset)."""
    transport = getattr(getattr(request, "channel", None), "transport", None) or getattr(request, "transport", None)
    if transport is None:
        return
    if abort and hasattr(transport, "abortConnection"):
        transport.abortConnection()
    else:
        transport.loseConnection()


def unauthenticated(status: str, method: str) -> GatewayError:
    """401 as Google's front end words a missing, unknown or expired bearer token."""
    if status == TOKEN_MISSING:
        message, reason = "Request is missing required authentication credential. " + AUTH_HELP, "CREDENTIALS_MISSING"
    else:
        message = "Request had invalid authentication credentials. " + AUTH_HELP
        reason = "ACCESS_TOKEN_EXPIRED" if status == TOKEN_EXPIRED else "ACCESS_TOKEN_TYPE_UNSUPPORTED"
    rpc = RPC_PREFIX + method[:1].upper() + method[1:]
    details = [error_info(reason, "googleapis.com", {"service": DOMAIN, "method": rpc})]
    headers = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'}
    return GatewayError(401, message, "UNAUTHENTICATED", details, headers)


def quota_exhausted(model: str, delay: float, now: float, retry: float | None = None) -> GatewayError:
    """429 QUOTA_EXHAUSTED with every delay source PROTOCOL.md lists."""
    metadata = {
        "uiMessage": "true",
        "model": model,
        "quotaResetDelay": go_duration(delay),
        "quotaResetTimeStamp": iso_time(now + delay),
    }
    return GatewayError(
        429,
        f"You have exhausted your capacity on this model. Your quota will reset after {go_duration(round(delay))}.",
        "RESOURCE_EXHAUSTED",
        [error_info("QUOTA_EXHAUSTED", DOMAIN, metadata), retry_info(delay if retry is None else retry)],
    )


def validation_required(reason: dict[str, str]) -> GatewayError:
    url = reason.get("validationUrl", "https://accounts.google.com/signin/continue")
    return GatewayError(
        403,
        reason.get("reasonMessage") or "Verify your account to continue.",
        "PERMISSION_DENIED",
        [error_info("VALIDATION_REQUIRED", DOMAIN, {"validation_url": url}), help_links(("Verify your account", url))],
    )


def fault_error(fault: Fault, model: str | None, now: float) -> GatewayError:
    """The google.rpc.Status a fault rule of kind ``error`` answers with."""
    status = fault.status or 503
    model = model or "unknown"
    reason = fault.reason
    details: list[dict[str, Any]] = []
    message = fault.message
    if status == 429:
        reason = reason or "RATE_LIMIT_EXCEEDED"
        if reason == "QUOTA_EXHAUSTED":
            delay = fault.quota_reset_delay if fault.quota_reset_delay is not None else (fault.retry_delay if fault.retry_delay is not None else 3600.0)
            err = quota_exhausted(model, delay, now, fault.retry_delay)
            if message:
                err.message = message
            return GatewayError(429, err.message, err.status, err.details, fault.headers)
        retry = 1.0 if fault.retry_delay is None else fault.retry_delay
        details = [error_info(reason, DOMAIN, {"model": model}), retry_info(retry)]
        if reason == "MODEL_CAPACITY_EXHAUSTED":
            message = message or f"No capacity available for model {model} on the server"
    elif reason == "VALIDATION_REQUIRED":
        err = validation_required({"validationUrl": fault.validation_url or "https://accounts.google.com/signin/continue", "reasonMessage": message or ""})
        return GatewayError(status, err.message, None, err.details, fault.headers)
    elif reason:
        details = [error_info(reason, DOMAIN, {"model": model})]
        if reason == "MODEL_CAPACITY_EXHAUSTED":
            message = message or f"No capacity available for model {model} on the server"
    if fault.retry_delay is not None and status != 429:
        details.append(retry_info(fault.retry_delay))
    return GatewayError(status, message or DEFAULT_MESSAGES.get(status, "Error."), None, details, fault.headers)


def oauth_fault_body(status: int) -> dict[str, str]:
    if status == 429:
        return {"error": "rate_limit_exceeded", "error_description": "Rate limit exceeded."}
    if status >= 500:
        return {"error": "internal_failure", "error_description": "Backend Error"}
    return {"error": "invalid_request", "error_description": "Bad Request"}


class Emulator:
    """Routes and handlers over one state and one clock (``deferLater`` for delays)."""

    app = Klein()

    def __init__(self, state: EmulatorState, clock: IReactorTime) -> None:
        self.state = state
        self.clock = clock
        self._seq = 0

    def resource(self) -> IResource:
        return self.app.resource()

    # ------------------------------------------------------------------ plumbing

    def _record(self, request: IRequest, method: str, host: str | None) -> dict[str, Any]:
        self._seq += 1
        headers = {}
        for name, values in request.requestHeaders.getAllRawHeaders():
            key = name.decode("latin-1").lower()
            if key not in SECRET_HEADERS:
                headers[key] = values[-1].decode("latin-1")
        query = {k.decode(): [v.decode("utf-8", "replace") for v in vs] for k, vs in request.args.items()}
        entry = {
            "seq": self._seq,
            "time": self.clock.seconds(),
            "method": method,
            "host": host,
            "path": request.path.decode("utf-8", "replace"),
            "query": query,
            "headers": headers,
            "body": None,
            "email": None,
            "status": None,
            "fault": None,
        }
        return self.state.record(entry)

    def _send(self, request: IRequest, code: int, payload: bytes, entry: dict[str, Any] | None, headers: dict[str, str] | None = None) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", b"application/json; charset=UTF-8")
        request.setHeader(b"Content-Length", str(len(payload)).encode())
        for name, value in (headers or {}).items():
            request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
        if entry is not None:
            entry["status"] = code
        key = str(code)
        self.state.stats.statuses[key] = self.state.stats.statuses.get(key, 0) + 1
        return payload

    def _json(self, request: IRequest, code: int, obj: Any, entry: dict[str, Any] | None, headers: dict[str, str] | None = None) -> bytes:
        return self._send(request, code, dumps(obj), entry, headers)

    def _error(self, request: IRequest, err: GatewayError, entry: dict[str, Any] | None) -> bytes:
        return self._send(request, err.code, err.to_body(), entry, err.headers)

    def _fault_payload(self, fault: Fault, default: dict[str, Any]) -> bytes:
        if fault.body is None:
            return dumps(default)
        if isinstance(fault.body, str):
            return fault.body.encode()
        return dumps(fault.body)

    async def _before(self, fault: Fault | None) -> None:
        if fault is not None and fault.seconds > 0:
            await deferLater(self.clock, fault.seconds, lambda: None)

    async def _reset_connection(self, request: IRequest) -> None:
        """Drop the connection without answering, then wait for Klein's cancel."""
        _drop_connection(request, abort=True)
        await _forever()

    # ------------------------------------------------------------------ v1internal

    @app.route("/v1internal:<method>", methods=["POST"])
    def api_bare(self, request: IRequest, method: str) -> Any:
        return self._api(request, None, method)

    @app.route("/<host>/v1internal:<method>", methods=["POST"])
    def api_host(self, request: IRequest, host: str, method: str) -> Any:
        return self._api(request, host, method)

    @app.route("/v1internal/<path:name>", methods=["GET"])
    def operation_bare(self, request: IRequest, name: str) -> Any:
        return self._api(request, None, "operations", name)

    @app.route("/<host>/v1internal/<path:name>", methods=["GET"])
    def operation_host(self, request: IRequest, host: str, name: str) -> Any:
        return self._api(request, host, "operations", name)

    async def _api(self, request: IRequest, host: str | None, method: str, name: str = "") -> bytes | None:
        if host is not None and not HOST_TAG.fullmatch(host):
            return self._error(request, GatewayError(404, "Requested entity was not found.", "NOT_FOUND"), None)
        if method != "operations" and method not in API_METHODS:
            return self._error(request, GatewayError(404, f"Method not found: v1internal:{method}", "NOT_FOUND"), None)
        stats = self.state.stats
        stats.count(method, host)
        entry = self._record(request, method, host)
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await self._api_call(request, host, method, name, entry)
        except GatewayError as e:
            return self._error(request, e, entry)
        finally:
            self.state.stats.in_flight -= 1

    async def _api_call(self, request: IRequest, host: str | None, method: str, name: str, entry: dict[str, Any]) -> bytes | None:
        body = request.content.read() if request.content is not None else b""
        try:
            parsed = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        entry["body"] = parsed if parsed is not None else (body[:4096].decode("utf-8", "replace") or None)
        auth, account = self.state.lookup_access(_header(request, b"authorization") or None)
        entry["email"] = account.email if account else None
        model = peek_model(parsed)
        fault = self.state.take_fault(method, host, entry["email"], model, _header(request, b"user-agent"))
        if fault is not None:
            entry["fault"] = fault.id
            if fault.kind in body_faults.BODY_KINDS:
                entry["status"] = fault.status
                return await body_faults.answer(request, fault, self.clock, method)
            await self._before(fault)
            if fault.kind == "reset":
                entry["status"] = 0
                await self._reset_connection(request)
                return None
            if fault.kind == "error":
                err = fault_error(fault, model, self.state.now())
                return self._send(request, err.code, self._fault_payload(fault, err.to_dict()), entry, err.headers)
        if auth != TOKEN_OK or account is None:
            raise unauthenticated(auth, method if method != "operations" else "getOperation")
        if method == "operations":
            return self._operation(request, name, account, entry)
        if not _is_json(request):
            raise bad_request(f"Invalid Content-Type {_header(request, b'content-type') or '(none)'}: expected application/json.")
        obj = parse_json_body(body)
        if method == "streamGenerateContent":
            return await self._stream(request, obj, account, entry, fault)
        handler = getattr(self, "_m_" + method)
        return handler(request, obj, account, entry)

    def _generation(self, obj: Any, account: Account, request: IRequest) -> tuple[dict[str, Any], Any, dict[str, Any], int]:
        """Envelope, model, project, account state, client and version, request body, input size, quota."""
        env, spec = check_envelope(obj, self.state.catalogue.get)
        if account.project_id is None or env["project"] != account.project_id:
            raise project_denied(env["project"])
        if client_refused(self.state.token_client(_header(request, b"authorization")), account.workspace):
            raise unsupported_error()
        refusal = versions.gate(_header(request, b"user-agent"), spec.id, self.state.settings.min_client_version)
        if refusal is not None:
            raise refusal
        blocked = account.validation_required
        if blocked is not None:
            raise validation_required(blocked)
        use_credits = credits_requested(env, account, self.state.settings.credit_minimum)
        req = validate_request(env["request"], spec)
        rules.check_request(req, spec)
        prompt = request_tokens(req)
        check_input_limit(prompt, spec)
        remaining, reset = self.state.quota(account.email, spec.id)
        if remaining <= 0:
            if not use_credits:
                raise quota_exhausted(spec.id, max(0.0, reset - self.state.now()), self.state.now())
            account.credits -= 1  # the answer is paid for with one credit
        return env, spec, req, prompt

    def _m_generateContent(self, request: IRequest, obj: Any, account: Account, entry: dict[str, Any]) -> bytes:
        env, spec, req, prompt = self._generation(obj, account, request)
        answer = plan_answer(req, spec, env["requestId"], self.state.settings.stream_events)
        body = generate_body(answer, spec, prompt, env["requestId"])
        self.state.stats.answered(body["response"]["usageMetadata"])
        return self._json(request, 200, body, entry)

    async def _stream(self, request: IRequest, obj: Any, account: Account, entry: dict[str, Any], fault: Fault | None) -> None:
        """SSE events with ``event_delay`` between them; stops when the client leaves."""
        if request.args.get(b"alt") != [b"sse"]:
            raise bad_request("streamGenerateContent needs ?alt=sse (this emulator streams Server-Sent Events only).")
        try:
            env, spec, req, prompt = self._generation(obj, account, request)
        except GatewayError as e:
            if not (self.state.settings.version_reject_in_stream and e.message == versions.NO_LONGER_SUPPORTED):
                raise
            # Google has also refused old clients inside a 200 stream: one error event, then the end.
            request.setResponseCode(200)
            request.setHeader(b"Content-Type", b"text/event-stream")
            entry["status"] = 200
            return request.write(b"data: " + e.to_body() + b"\r\n\r\n")
        answer = plan_answer(req, spec, env["requestId"], self.state.settings.stream_events)
        events = stream_bodies(answer, spec, prompt, env["requestId"])
        action = fault.kind if fault is not None and fault.kind in STREAM_KINDS else None
        limit = min(fault.after_events, len(events)) if action and fault is not None else len(events)
        if action == "empty":
            events, limit = [{"response": {"responseId": env["requestId"]}, "traceId": env["requestId"]}], 1
        if action != "empty" and limit == len(events):  # the final event (the one with usageMetadata) will be sent
            self.state.stats.answered(events[-1]["response"].get("usageMetadata") or {})
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"text/event-stream")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.write(b"")  # headers now, as Google does, even if no event follows
        entry["status"] = 200
        stats = self.state.stats
        stats.statuses["200"] = stats.statuses.get("200", 0) + 1
        stats.open_streams += 1
        stats.max_open_streams = max(stats.max_open_streams, stats.open_streams)
        gone: list[bool] = [False]
        request.notifyFinish().addErrback(lambda _: gone.__setitem__(0, True))
        try:
            delay = self.state.settings.event_delay
            for i, event in enumerate(events[:limit]):
                if i and delay > 0:
                    await deferLater(self.clock, delay, lambda: None)
                if gone[0]:
                    self.state.stats.disconnects += 1
                    return None
                request.write(sse_event(event))
                self.state.stats.stream_events += 1
            if action == "cut":
                entry["cut"] = True
                _drop_connection(request, abort=False)
                await _forever()
            elif action == "stall":
                entry["stalled"] = True
                await _forever()
            elif action == "stream_error" and fault is not None:
                err = fault_error(fault, spec.id, self.state.now())
                request.write(b"data: " + self._fault_payload(fault, err.to_dict()) + b"\r\n\r\n")
            return None
        except CancelledError:
            if action not in ("cut", "stall"):
                self.state.stats.disconnects += 1
            raise
        finally:
            self.state.stats.open_streams -= 1

    def _m_countTokens(self, request: IRequest, obj: Any, account: Account, entry: dict[str, Any]) -> bytes:
        req, spec = validate_count_tokens(obj, self.state.catalogue.get)
        total = count_tokens(req["contents"], req.get("systemInstruction"), req.get("tools"))
        return self._json(request, 200, {"totalTokens": total}, entry)

    def _check_metadata(self, body: dict[str, Any], path: str = "metadata") -> None:
        if "metadata" in body:
            meta = fields_of(body["metadata"], METADATA_FIELDS, path)
            for name, names in (("platform", PLATFORMS), ("pluginType", PLUGIN_TYPES)):
                if name in meta:
                    value = meta[name]
                    ok = (isinstance(value, str) and value in names) or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names))
                    if not ok:
                        raise bad_request(f"Invalid value at '{path}.{'plugin_type' if name == 'pluginType' else name}', {json.dumps(value)}", path)

    def _m_loadCodeAssist(self, request: IRequest, obj: Any, account: Account, entry: dict[str, Any]) -> bytes:
        body = fields_of(obj, ("metadata", "cloudaicompanionProject", "mode"), "")
        self._check_metadata(body)
        answer: dict[str, Any] = {}
        ineligible = [
            {"tierId": r.get("tierId", "free-tier"), "tierName": r.get("tierName", TIER_INFO["free-tier"]["name"]), **r}
            for r in account.ineligible
        ]
        if client_refused(self.state.token_client(_header(request, b"authorization")), account.workspace):
            # The token refreshes, but Cloud Code no longer serves individuals through this client.
            return self._json(request, 200, {"ineligibleTiers": [unsupported_tier()] + ineligible, "gcpManaged": False}, entry)
        if account.project_id is not None:
            answer["currentTier"] = dict(TIER_INFO[account.tier])
            answer["allowedTiers"] = [dict(TIER_INFO[account.tier], isDefault=True)]
            answer["cloudaicompanionProject"] = account.project_id
            if account.tier == "standard-tier" or account.credits:
                answer["paidTier"] = {"id": "g1-pro-tier", "name": "Google AI Pro"}
            if account.credits:
                answer["paidTier"]["availableCredits"] = credit_entries(account.credits, self.state.settings.credit_minimum)
        elif not ineligible:
            answer["allowedTiers"] = [dict(TIER_INFO[t], isDefault=(t == account.tier)) for t in TIERS]
        if ineligible:
            answer["ineligibleTiers"] = ineligible
        answer["gcpManaged"] = False
        return self._json(request, 200, answer, entry)

    def _m_onboardUser(self, request: IRequest, obj: Any, account: Account, entry: dict[str, Any]) -> bytes:
        body = fields_of(obj, ("tierId", "cloudaicompanionProject", "metadata"), "")
        self._check_metadata(body)
        tier = body.get("tierId")
        if tier not in TIERS:
            raise bad_request(f"Invalid tier id: {tier!r}.", "tier_id")
        project = body.get("cloudaicompanionProject")
        if project is not None and (not isinstance(project, str) or not project):
            raise bad_request("Invalid value at 'cloudaicompanion_project' (TYPE_STRING).", "cloudaicompanion_project")
        if account.project_id is not None:
            return self._json(request, 200, self._operation_body(None, account.project_id), entry)
        if account.ineligible:
            first = account.ineligible[0]
            if first.get("reasonCode") == "VALIDATION_REQUIRED":
                raise validation_required(first)
            raise GatewayError(
                403,
                first.get("reasonMessage") or "This account is not eligible for Gemini Code Assist.",
                "PERMISSION_DENIED",
                [error_info(first["reasonCode"], DOMAIN)],
            )
        if tier == "free-tier" and project:
            raise bad_request("free-tier onboarding does not take a cloudaicompanion_project.", "cloudaicompanion_project")
        if tier == "standard-tier" and not project:
            raise GatewayError(400, "standard-tier onboarding needs a cloudaicompanion_project.", "FAILED_PRECONDITION")
        op = self.state.start_onboarding(account, tier, project)
        return self._json(request, 200, self._operation_body(op.name, op.project_id) if op.done else {"name": op.name, "done": False}, entry)

    @staticmethod
    def _operation_body(name: str | None, project: str) -> dict[str, Any]:
        body: dict[str, Any] = {"done": True}
        if name:
            body["name"] = name
        body["response"] = {
            "@type": "type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse",
            "cloudaicompanionProject": {"id": project, "name": project},
        }
        return body

    def _operation(self, request: IRequest, name: str, account: Account, entry: dict[str, Any]) -> bytes:
        op = self.state.poll_operation(name, account) if name.startswith("operations/") else None
        if op is None:
            raise GatewayError(404, "Requested entity was not found.", "NOT_FOUND")
        if not op.done:
            return self._json(request, 200, {"name": op.name, "done": False}, entry)
        return self._json(request, 200, self._operation_body(op.name, op.project_id), entry)

    def _m_fetchAvailableModels(self, request: IRequest, obj: Any, account: Account, entry: dict[str, Any]) -> bytes:
        body = fields_of(obj, ("project",), "")
        project = body.get("project")
        if not isinstance(project, str) or not project:
            raise bad_request("project is required.", "project")
        if project != account.project_id:
            raise project_denied(project)
        models = {}
        live = self.state.catalogue
        for spec in live.specs.values():
            remaining, reset = self.state.quota(account.email, spec.id)
            models[spec.id] = catalogue.model_entry(spec, remaining, iso_time(reset))
        return self._json(request, 200, {"models": models, "deprecatedModelIds": live.deprecated_entries()}, entry)

    def _m_retrieveUserQuotaSummary(self, request: IRequest, obj: Any, account: Account, entry: dict[str, Any]) -> bytes:
        body = fields_of(obj, ("project",), "")
        project = body.get("project")
        if project is not None and project != account.project_id:
            raise project_denied(str(project))
        answer = quota_summary.summary(self.state.windows_of(account.email), self.state.now(), iso_time, catalogue.model_ids())
        return self._json(request, 200, answer, entry)

    # ------------------------------------------------------------------ the Antigravity hub's update manifest

    @app.route("/manifest/<name>", methods=["GET"])
    def manifest(self, request: IRequest, name: str) -> bytes:
        """``latest-arm64-mac.yml`` and friends: the version the auto-updater offers."""
        self.state.stats.count("manifest", None)
        entry = self._record(request, "manifest", None)
        status = self.state.settings.manifest_status
        entry["status"] = status
        request.setResponseCode(status)
        if status != 200 or not name.endswith(".yml"):
            request.setHeader(b"Content-Type", b"text/html; charset=UTF-8")
            if status == 200:
                request.setResponseCode(404)
            return b"<html><title>Error</title><body>Not Found</body></html>"
        request.setHeader(b"Content-Type", b"text/yaml; charset=UTF-8")
        return versions.manifest(self.state.settings.manifest_version, iso_time(self.state.now()))

    # ------------------------------------------------------------------ OAuth

    @app.route("/token", methods=["POST"])
    async def token(self, request: IRequest) -> bytes | None:
        """Google's token endpoint: refresh_token and authorization_code grants."""
        state = self.state
        state.stats.count("token", None)
        entry = self._record(request, "token", None)
        body = request.content.read() if request.content is not None else b""
        media = _header(request, b"content-type").split(";")[0].strip().lower()
        form: dict[str, str] = {}
        if media == "application/x-www-form-urlencoded":
            try:
                form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
            except UnicodeDecodeError:
                form = {}
        entry["body"] = {k: ("***" if k == "client_secret" else v) for k, v in form.items()}
        account = state.account_for_refresh(form.get("refresh_token")) if form.get("grant_type") == "refresh_token" else None
        entry["email"] = account.email if account else None
        fault = state.take_fault("token", None, entry["email"], None, _header(request, b"user-agent"))
        if fault is not None:
            entry["fault"] = fault.id
            if fault.kind in body_faults.BODY_KINDS:
                entry["status"] = fault.status
                return await body_faults.answer(request, fault, self.clock, "token")
            await self._before(fault)
            if fault.kind == "reset":
                entry["status"] = 0
                await self._reset_connection(request)
                return None
            if fault.kind == "invalid_grant":
                return self._oauth_error(request, 400, "invalid_grant", "Token has been expired or revoked.", entry)
            if fault.kind == "error":
                status = fault.status or 503
                state.stats.token_failures += 1
                return self._send(request, status, self._fault_payload(fault, oauth_fault_body(status)), entry, fault.headers)
        if media != "application/x-www-form-urlencoded":
            return self._oauth_error(request, 400, "invalid_request", f"Invalid Content-Type: {media or '(none)'}", entry)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _header(request, b"authorization")
        if client_id is None and basic.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:].strip()).decode().partition(":")
            except ValueError:
                client_id = None
        grant = form.get("grant_type")
        if not grant:
            return self._oauth_error(request, 400, "invalid_request", "Missing required parameter: grant_type", entry)
        problem = state.check_client(client_id, client_secret)
        if problem is not None:
            return self._oauth_error(request, 401, "invalid_client", problem, entry)
        if grant == "refresh_token":
            if not form.get("refresh_token"):
                return self._oauth_error(request, 400, "invalid_request", "Missing required parameter: refresh_token", entry)
            if account is None:
                return self._oauth_error(request, 400, "invalid_grant", "Token has been expired or revoked.", entry)
            if not state.client_may_refresh(account, client_id):
                return self._oauth_error(request, 401, "unauthorized_client", "Unauthorized", entry)
            issued, rotated = state.issue_token(account, client_id=client_id)
            answer: dict[str, Any] = {"access_token": issued.token, "expires_in": state.settings.token_lifetime, "scope": SCOPE, "token_type": "Bearer"}
            if rotated:
                answer["refresh_token"] = rotated
            return self._json(request, 200, answer, entry, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"})
        if grant == "authorization_code":
            if not form.get("code"):
                return self._oauth_error(request, 400, "invalid_request", "Missing required parameter: code", entry)
            account = state.redeem_code(form.get("code"), client_id, form.get("redirect_uri"))
            if account is None:
                return self._oauth_error(request, 400, "invalid_grant", "Malformed auth code.", entry)
            entry["email"] = account.email
            issued, _ = state.issue_token(account, rotate=False, client_id=client_id)
            answer = {
                "access_token": issued.token,
                "expires_in": state.settings.token_lifetime,
                "refresh_token": account.refresh_token,
                "scope": SCOPE,
                "token_type": "Bearer",
            }
            return self._json(request, 200, answer, entry, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"})
        return self._oauth_error(request, 400, "unsupported_grant_type", f"Invalid grant_type: {grant}", entry)

    def _oauth_error(self, request: IRequest, code: int, error: str, description: str, entry: dict[str, Any]) -> bytes:
        if entry.get("method") == "token":
            self.state.stats.token_failures += 1
        return self._json(request, code, {"error": error, "error_description": description}, entry)

    @app.route("/oauth2/v2/userinfo", methods=["GET"])
    async def userinfo(self, request: IRequest) -> bytes | None:
        """The signed-in user's email, for adding accounts."""
        self.state.stats.count("userinfo", None)
        entry = self._record(request, "userinfo", None)
        auth, account = self.state.lookup_access(_header(request, b"authorization") or None)
        entry["email"] = account.email if account else None
        fault = self.state.take_fault("userinfo", None, entry["email"], None, _header(request, b"user-agent"))
        if fault is not None:
            entry["fault"] = fault.id
            await self._before(fault)
            if fault.kind == "reset":
                await self._reset_connection(request)
                return None
            if fault.kind == "error":
                err = fault_error(fault, None, self.state.now())
                return self._send(request, err.code, self._fault_payload(fault, err.to_dict()), entry, err.headers)
        if auth != TOKEN_OK or account is None:
            return self._error(request, unauthenticated(auth, "userinfo"), entry)
        digest = int(hashlib.sha256(account.email.encode()).hexdigest()[:15], 16)
        local = account.email.split("@")[0]
        return self._json(
            request,
            200,
            {
                "id": str(100000000000000000000 + digest),
                "email": account.email,
                "verified_email": True,
                "name": local,
                "given_name": local,
                "picture": "https://lh3.googleusercontent.com/a/emulator",
            },
            entry,
        )

    @app.route("/o/oauth2/v2/auth", methods=["GET"])
    def authorize(self, request: IRequest) -> bytes:
        """The consent screen, minus the screen: redirects at once with a code.

        The account is ``login_hint`` or, without one, the first account.
        """
        entry = self._record(request, "authorize", None)
        args = {k.decode(): v[0].decode("utf-8", "replace") for k, v in request.args.items()}
        if self.state.client_for(args.get("client_id")) is None:
            return self._oauth_error(request, 401, "invalid_client", "The OAuth client was not found.", entry)
        redirect = args.get("redirect_uri")
        if not redirect or args.get("response_type") != "code":
            return self._oauth_error(request, 400, "invalid_request", "Missing redirect_uri or response_type=code.", entry)
        hint = args.get("login_hint")
        account = self.state.accounts.get(hint) if hint else next(iter(self.state.accounts.values()), None)
        if account is None:
            return self._oauth_error(request, 400, "access_denied", "No such account in the emulator.", entry)
        entry["email"] = account.email
        code = self.state.issue_code(account.email, args["client_id"], redirect)
        params = {"code": code, "scope": args.get("scope", SCOPE)}
        if "state" in args:
            params["state"] = args["state"]
        parts = urlsplit(redirect)
        query = (parts.query + "&" if parts.query else "") + urlencode(params)
        request.setResponseCode(302)
        request.setHeader(b"Location", urlunsplit(parts._replace(query=query)).encode())
        entry["status"] = 302
        return b""

    # ------------------------------------------------------------------ control API

    def _control_body(self, request: IRequest) -> Any:
        body = request.content.read() if request.content is not None else b""
        if not body.strip():
            return {}
        try:
            return json.loads(body)
        except ValueError:
            raise StateError("body is not JSON") from None

    def _control(self, request: IRequest, fn: Any) -> bytes:
        try:
            code, obj = fn()
        except StateError as e:
            return self._control_reply(request, 400, error_dict(400, str(e)))
        return self._control_reply(request, code, obj)

    def _control_reply(self, request: IRequest, code: int, obj: Any) -> bytes:
        payload = dumps(obj)
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Content-Length", str(len(payload)).encode())
        return payload

    @app.route("/_emulator/health", methods=["GET"])
    def c_health(self, request: IRequest) -> bytes:
        return self._control_reply(request, 200, {"ok": True, "accounts": len(self.state.accounts)})

    @app.route("/_emulator/faults", methods=["POST"])
    def c_add_fault(self, request: IRequest) -> bytes:
        return self._control(request, lambda: (200, {"id": self.state.add_fault(self._control_body(request)).id}))

    @app.route("/_emulator/faults", methods=["GET"])
    def c_faults(self, request: IRequest) -> bytes:
        return self._control_reply(request, 200, {"faults": [f.to_json() for f in self.state.faults]})

    @app.route("/_emulator/faults", methods=["DELETE"])
    def c_clear_faults(self, request: IRequest) -> bytes:
        count = len(self.state.faults)
        self.state.faults.clear()
        return self._control_reply(request, 200, {"removed": count})

    @app.route("/_emulator/faults/<fault_id>", methods=["DELETE"])
    def c_remove_fault(self, request: IRequest, fault_id: str) -> bytes:
        if not self.state.remove_fault(fault_id):
            return self._control_reply(request, 404, error_dict(404, f"no fault {fault_id}"))
        return self._control_reply(request, 200, {"removed": 1})

    @app.route("/_emulator/reset", methods=["POST"])
    def c_reset(self, request: IRequest) -> bytes:
        def run() -> tuple[int, Any]:
            body = self._control_body(request)
            if not isinstance(body, dict) or set(body) - {"accounts"}:
                raise StateError('reset takes {"accounts": bool}')
            self.state.reset(accounts=bool(body.get("accounts")))
            return 200, {"ok": True}

        return self._control(request, run)

    @app.route("/_emulator/accounts", methods=["GET"])
    def c_accounts(self, request: IRequest) -> bytes:
        return self._control_reply(request, 200, {"accounts": [a.to_json() for a in self.state.accounts.values()]})

    @app.route("/_emulator/accounts", methods=["POST"])
    def c_put_accounts(self, request: IRequest) -> bytes:
        def run() -> tuple[int, Any]:
            body = self._control_body(request)
            accounts = parse_accounts(body)
            if isinstance(body, dict) and body.get("replace_all"):
                for email in list(self.state.accounts):
                    self.state.remove_account(email)
            for account in accounts:
                self.state.put_account(account)
            return 200, {"accounts": [a.email for a in accounts]}

        return self._control(request, run)

    @app.route("/_emulator/accounts/<email>", methods=["DELETE"])
    def c_remove_account(self, request: IRequest, email: str) -> bytes:
        if not self.state.remove_account(email):
            return self._control_reply(request, 404, error_dict(404, f"no account {email}"))
        return self._control_reply(request, 200, {"removed": email})

    @app.route("/_emulator/revoke", methods=["POST"])
    def c_revoke(self, request: IRequest) -> bytes:
        def run() -> tuple[int, Any]:
            body = self._control_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("email"), str) or set(body) - {"email", "refresh"}:
                raise StateError('revoke takes {"email": str, "refresh": bool}')
            if not self.state.revoke(body["email"], bool(body.get("refresh"))):
                return 404, error_dict(404, f"no account {body['email']}")
            return 200, {"revoked": body["email"], "refresh": bool(body.get("refresh"))}

        return self._control(request, run)

    @app.route("/_emulator/requests", methods=["GET"])
    def c_requests(self, request: IRequest) -> bytes:
        def arg(name: bytes) -> str | None:
            values = request.args.get(name)
            return values[0].decode() if values else None

        found = self.state.requests(arg(b"method"), arg(b"host"), arg(b"email"))
        limit = arg(b"limit")
        if limit and limit.isdigit():
            found = found[-int(limit) :] if int(limit) else []
        return self._control_reply(request, 200, {"requests": found})

    @app.route("/_emulator/requests", methods=["DELETE"])
    def c_clear_requests(self, request: IRequest) -> bytes:
        count = len(self.state.recorded)
        self.state.recorded.clear()
        return self._control_reply(request, 200, {"removed": count})

    @app.route("/_emulator/stats", methods=["GET"])
    def c_stats(self, request: IRequest) -> bytes:
        return self._control_reply(request, 200, self.state.stats.to_json())

    @app.route("/_emulator/settings", methods=["GET"])
    def c_settings(self, request: IRequest) -> bytes:
        return self._control_reply(request, 200, self.state.settings.to_json())

    @app.route("/_emulator/settings", methods=["POST"])
    def c_update_settings(self, request: IRequest) -> bytes:
        def run() -> tuple[int, Any]:
            self.state.settings.update(self._control_body(request))
            return 200, self.state.settings.to_json()

        return self._control(request, run)

    @app.route("/_emulator/quota", methods=["POST"])
    def c_quota(self, request: IRequest) -> bytes:
        return self._control(request, lambda: (200, {"updated": self.state.set_quota(self._control_body(request))}))

    @app.route("/_emulator/quota_windows", methods=["POST"])
    def c_quota_windows(self, request: IRequest) -> bytes:
        return self._control(request, lambda: (200, {"updated": self.state.set_quota_window(self._control_body(request))}))

    @app.route("/_emulator/models", methods=["GET"])
    def c_models(self, request: IRequest) -> bytes:
        return self._control_reply(request, 200, {"models": self.state.catalogue.ids()})

    @app.route("/_emulator/models", methods=["POST"])
    def c_add_model(self, request: IRequest) -> bytes:
        """Serve a new model from now on (``catalogue.spec_from_json``): the catalogue changes mid-run."""

        def run() -> tuple[int, Any]:
            try:
                spec = catalogue.spec_from_json(self._control_body(request))
            except ValueError as e:
                raise StateError(str(e)) from None
            self.state.catalogue.add(spec)
            return 200, {"models": self.state.catalogue.ids()}

        return self._control(request, run)

    @app.route("/_emulator/models/<model_id>", methods=["DELETE"])
    def c_remove_model(self, request: IRequest, model_id: str) -> bytes:
        """Stop serving a model: fetchAvailableModels drops it and calls for it get upstream's 404."""
        if not self.state.catalogue.remove(model_id):
            return self._control_reply(request, 404, {"error": f"no model {model_id!r}"})
        return self._control_reply(request, 200, {"models": self.state.catalogue.ids()})

    # ------------------------------------------------------------------ routing errors

    @app.handle_errors(NotFound, MethodNotAllowed)
    def not_found(self, request: IRequest, failure: Any) -> bytes:
        """Google answers unknown paths and verbs with a JSON 404, never HTML."""
        return self._error(request, GatewayError(404, "Requested entity was not found.", "NOT_FOUND"), None)


# --------------------------------------------------------------------------- factories


class _TrackedConnection(ProtocolWrapper):
    """Unregisters only after the HTTP channel has cleaned up (its timers too)."""

    def connectionLost(self, reason: Any) -> None:
        try:
            self.wrappedProtocol.connectionLost(reason)
        finally:
            self.factory.unregisterProtocol(self)


class ConnectionTracker(WrappingFactory):
    """Wraps the Site to know every open connection, so stop can close them all."""

    noisy = False
    protocol = _TrackedConnection

    def __init__(self, wrapped: Site) -> None:
        super().__init__(wrapped)
        self._waiters: list[Deferred[None]] = []

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)
        if not self.protocols:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def close_all(self) -> Deferred[None]:
        """Abort every connection (stalled streams included); fires when all are gone."""
        d: Deferred[None] = Deferred()
        if not self.protocols:
            d.callback(None)
            return d
        self._waiters.append(d)
        for p in list(self.protocols):
            if p.transport is not None:
                p.transport.abortConnection()
        return d


class EmulatorSite(Site):
    """A Site that logs requests only when asked (benchmarks want silence)."""

    noisy = False

    def __init__(self, resource: IResource, access_log: bool = False, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.access_log = access_log

    def log(self, request: Any) -> None:
        if self.access_log:
            super().log(request)


def make_emulator(state: EmulatorState, clock: IReactorTime) -> Emulator:
    return Emulator(state, clock)


def make_app(state: EmulatorState, clock: IReactorTime) -> Klein:
    """The Klein app bound to ``state`` (``.resource()`` gives the IResource)."""
    return Emulator(state, clock).app


def make_resource(state: EmulatorState, clock: IReactorTime) -> IResource:
    return Emulator(state, clock).resource()


def make_factory(state: EmulatorState, clock: IReactorTime, access_log: bool = False) -> ConnectionTracker:
    """A listening factory (Site inside a ConnectionTracker) for ``listenTCP``/endpoints."""
    site = EmulatorSite(make_resource(state, clock), access_log=access_log)
    return ConnectionTracker(site)
