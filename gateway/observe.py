"""What happened to each request: hooks the request path calls, turned into metrics and one log event.

Call sites (site, forwarder, upstream client, OAuth, relay) only call hooks on
an observer: ``RequestObserver`` does nothing (the default everywhere),
``GatewayObserver`` records Prometheus metrics and logs one structured event
per request. Per-request facts (account, retries, upstream time) reach the
request's ``Observation`` through a context variable set while the request is
processed. Nothing here may see a key, a token or a body: events carry ids,
labels and numbers only.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from contextvars import ContextVar
from typing import Any, Callable

import attrs
from twisted.logger import Logger, LogLevel

from gateway.metrics import Metrics
from gateway.protocol.errors import GatewayError
from gateway.protocol.paths import parse_model_call

_current: ContextVar["Observation | None"] = ContextVar("antigravity_gateway_observation", default=None)

request_log = Logger(namespace="antigravity_gateway.request")
log = Logger(namespace="antigravity_gateway")

REQUEST_FORMAT = (
    "{method} {route} {status} {latency_ms}ms id={request_id} model={model} mapped={mapped_model} "
    "account={account} attempts={attempts} tokens={prompt_tokens}/{candidates_tokens} client={client} key={key}"
)
GENERATING_ROUTES = frozenset({"generateContent", "streamGenerateContent", "chat.completions", "messages", "responses"})
_VERSIONED = re.compile(r"^/(?:v1beta|v1|v1alpha)/(.*)$")
USAGE_FIELDS = (
    ("promptTokenCount", "prompt_tokens", "prompt"),
    ("candidatesTokenCount", "candidates_tokens", "candidates"),
    ("thoughtsTokenCount", "thoughts_tokens", "thoughts"),
    ("cachedContentTokenCount", "cached_tokens", "cached"),
    ("totalTokenCount", "total_tokens", None),
)
_TOKEN_KINDS = tuple((field, kind) for field, _, kind in USAGE_FIELDS if kind is not None)


def current() -> "Observation | None":
    """The observation of the request being processed in this context, if any."""
    return _current.get()


def bind(observation: "Observation | None") -> None:
    """Make ``observation`` current (call inside ``contextvars.copy_context().run``)."""
    _current.set(observation)


def upstream_time(seconds: float) -> None:
    """Count ``seconds`` spent waiting on upstream against the current request (not overhead)."""
    obs = _current.get()
    if obs is not None:
        obs.upstream_seconds += max(0.0, seconds)


#: Routes outside ``/<version>/models/…``, by exact path (the version prefix removed when there is one).
_FIXED_ROUTES = {
    "/": "home",
    "/healthz": "healthz",
    "/metrics": "metrics",
    "/admin/accounts": "admin.accounts",
    "/admin": "admin.dashboard",
    "/admin/": "admin.dashboard",
    "/admin/overview": "admin.overview",
    "/admin/usage": "admin.usage",
    "/admin/keys": "admin.keys",
    "/chat/completions": "chat.completions",
    "/responses": "responses",
    "/messages": "messages",
    "/messages/count_tokens": "messages.count_tokens",
    "/images/generations": "images.generations",
    "/images/edits": "images.edits",
    "models": "models.list",
    "models/": "models.list",
    "chat/completions": "chat.completions",
    "responses": "responses",
    "messages": "messages",
    "messages/count_tokens": "messages.count_tokens",
    "images/generations": "images.generations",
    "images/edits": "images.edits",
}


def requested(model: str) -> None:
    """Record the model a client asked for (doors whose model is in the body, not the path)."""
    obs = _current.get()
    if obs is not None:
        obs.model = model


def mapped(model: str) -> None:
    """Record the model a request was mapped to (before any attempt, so refusals show it too)."""
    obs = _current.get()
    if obs is not None and model and model != "*":
        obs.mapped_model = model


def _admin_route(text: str) -> str:
    """The dashboard's files and its per-key and per-account actions (``/admin/keys/NAME/revoke`` …)."""
    parts = text.rstrip("/").split("/")[2:]
    if len(parts) > 1 and parts[0] in ("keys", "accounts"):
        return f"admin.{parts[0]}.action"
    return "admin.dashboard" if len(parts) == 2 and parts[0] == "static" else "other"


def route_of(path: bytes) -> tuple[str, str | None]:
    """(route label, requested model) from a request path; never the query (it may hold ?key=)."""
    text = path.decode("latin-1", "replace")
    fixed = _FIXED_ROUTES.get(text) if text.startswith("/") else None
    if fixed is not None:
        return fixed, None
    match = _VERSIONED.match(text)
    if not match:
        return _admin_route(text) if text.startswith("/admin/") else "other", None
    rest = match.group(1)
    fixed = _FIXED_ROUTES.get(rest)
    if fixed is not None:
        return fixed, None
    if rest.startswith("responses/"):  # GET / DELETE /v1/responses/{id}: one label, never the id
        return "responses.item", None
    if not rest.startswith("models/"):
        return "other", None
    try:
        model, action = parse_model_call(rest[len("models/"):])
    except GatewayError:
        return "other", None
    if action is None:
        return "models.get", model
    if action in ("generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"):
        return action, model
    return "other", None


_ROUTES: dict[bytes, tuple[str, str | None]] = {}
_MAX_ROUTES = 4096  # paths are the client's: the cache starts over when full


def _route(path: bytes) -> tuple[str, str | None]:
    """``route_of(path)``, remembered: most requests repeat a handful of paths."""
    found = _ROUTES.get(path)
    if found is None:
        if len(_ROUTES) >= _MAX_ROUTES:
            _ROUTES.clear()
        found = _ROUTES[path] = route_of(path)
    return found


def _rendered(template: str, fields: dict[str, Any]) -> str:
    """``template`` filled in once with ``str.format``, braces escaped: a format with no fields left.

    Every observer formats each event again: twisted.logger's ``Formatter``
    walks a template field by field in Python (about 13 µs for the request
    line, 20 µs when ``twist`` writes JSON), a literal costs it almost
    nothing. The fields stay in the event for structured observers.
    """
    return _escaped(template.format(**fields))


def _escaped(text: str) -> str:
    """``text`` as a twisted.logger format that renders to itself."""
    return text.replace("{", "{{").replace("}", "}}")


def note_usage(observation: "Observation | None", document: Any) -> None:
    """Record the ``usageMetadata`` of an upstream answer (the compat doors, whose clients never see it)."""
    if observation is None or not isinstance(document, dict):
        return
    usage = document.get("usageMetadata")
    if isinstance(usage, dict):
        found = {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}
        if found:
            observation.usage = found


def answer_usage(document: Any) -> None:
    """Record a whole answer's usage from the document the door parsed anyway (Gemini generateContent),
    so the write of that answer is not parsed a second time for it (``response_data``)."""
    obs = _current.get()
    if obs is not None and obs.wants_usage:
        note_usage(obs, document)
        obs.usage_read = True


def add_usage(observation: "Observation | None", document: Any) -> None:
    """Add the ``usageMetadata`` of one of several upstream answers to a request (images ``n``: one call per image)."""
    if observation is None or not isinstance(document, dict):
        return
    usage = document.get("usageMetadata")
    if not isinstance(usage, dict):
        return
    total = dict(observation.usage or {})
    for key, value in usage.items():
        if isinstance(value, int) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
    if total:
        observation.usage = total


def failed_in_stream(observation: "Observation | None", code: int) -> None:
    """Record that an answer committed as HTTP 200 ended with an error event of status ``code``."""
    if observation is not None and code >= 400 and observation.stream_error is None:
        observation.stream_error = code


_DECODER = json.JSONDecoder()  # one for all calls: building one costs more than the small parse


def usage_from(data: bytes) -> dict[str, int] | None:
    """The last ``usageMetadata`` object in a body or a chunk of a stream, parsed alone (cheap)."""
    at = data.rfind(b'"usageMetadata"')
    if at < 0:
        return None
    start = data.find(b"{", at)
    if start < 0:
        return None
    try:
        text = data[start:start + 4096].decode("utf-8", "replace")
        value, _ = _DECODER.raw_decode(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}


@attrs.define
class Observation:
    """One client request as the observer sees it."""

    request_id: str
    method: str
    route: str
    model: str | None
    client: str
    started: float
    mapped_model: str | None = None
    account: str | None = None
    attempts: int = 0
    last_failure: str | None = None
    upstream_seconds: float = 0.0
    usage: dict[str, int] | None = None
    stream: bool = False
    status: int | None = None
    done: bool = False
    key: str | None = None  # the name of the client's key (the ``keys`` strategy), never the key
    #: The error an answer already sent as 200 ended with (an in-stream error event): what usage records.
    stream_error: int | None = None
    #: The usage was read from the parsed answer (``answer_usage``): written data need not be scanned.
    usage_read: bool = False

    @property
    def wants_usage(self) -> bool:
        return self.route in GENERATING_ROUTES


class RequestObserver:
    """Hooks with no effect: what every component uses until assembly injects a real observer."""

    def now(self) -> float:
        return 0.0

    def request_started(self, request_id: str, method: bytes, path: bytes, client: str) -> Observation | None:
        return None

    def request_finished(self, observation: Observation | None, status: int) -> None:
        pass

    def response_data(self, observation: Observation | None, data: bytes) -> None:
        pass

    def rejected(self, status: int, reason: str, request_id: str, client: str) -> None:
        pass

    def attempt(self, account: str, model: str, method: str) -> None:
        pass

    def attempt_failed(self, reason: str) -> None:
        pass

    def upstream_first_byte(self, method: str, host: str, seconds: float) -> None:
        pass

    def upstream_body(self, seconds: float) -> None:
        pass

    def host_fallback(self, host: str, reason: str) -> None:
        pass

    def token_refresh(self, result: str, seconds: float) -> None:
        pass

    def stream_started(self, observation: Observation | None) -> None:
        pass

    def stream_finished(self, observation: Observation | None, upstream_seconds: float) -> None:
        pass

    def reloaded(self, ok: bool) -> None:
        pass


NULL_OBSERVER = RequestObserver()


class GatewayObserver(RequestObserver):
    """Metrics into a per-gateway registry, and one log event per request."""

    def __init__(
        self,
        metrics: Metrics,
        clock: Callable[[], float],
        account_label: str = "email",
        after_flush: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        self.metrics = metrics
        self.clock = clock
        self.account_label = account_label
        #: Runs the log event once the response bytes have gone out (None: at once).
        self.after_flush = after_flush
        #: Called with (observation, status) for every finished request (the usage recorder).
        self.sinks: list[Callable[[Observation, int], None]] = []

    def now(self) -> float:
        return self.clock()

    # -- request lifecycle (site) --

    def request_started(self, request_id: str, method: bytes, path: bytes, client: str) -> Observation:
        route, model = _route(path)
        self.metrics.in_flight_count.change += 1
        return Observation(request_id, method.decode("latin-1", "replace"), route, model, client, self.clock())

    def response_data(self, observation: Observation | None, data: bytes) -> None:
        if observation is not None and observation.wants_usage and not observation.usage_read:
            usage = usage_from(data)
            if usage:
                observation.usage = usage

    def request_finished(self, observation: Observation | None, status: int) -> None:
        if observation is None or observation.done:
            return
        observation.done = True
        observation.status = status
        m = self.metrics
        m.in_flight_count.change -= 1
        latency = max(0.0, self.clock() - observation.started)
        overhead = max(0.0, latency - observation.upstream_seconds)
        route = observation.route
        label = m.model_label(observation.mapped_model or observation.model)
        m.requests_count.add((route, label, status))
        m.request_seconds_count.add((route,), latency)
        if observation.attempts:
            m.overhead_count.add((route,), overhead)
        key = observation.key
        if key is not None:
            m.key_requests_count.add((key, status))
        usage = observation.usage
        if usage:
            for field, kind in _TOKEN_KINDS:
                count = usage.get(field)
                if count:
                    m.tokens_count.add((label, kind), count)
                    if key is not None:
                        m.key_tokens_count.add((key, kind), count)
        for sink in self.sinks:
            try:
                sink(observation, status)
            except Exception:  # accounting must never break answering
                log.failure("usage sink failed")
        if self.after_flush is None:
            self._log(observation, status, latency, overhead)
        else:
            self.after_flush(lambda: self._log(observation, status, latency, overhead))

    def rejected(self, status: int, reason: str, request_id: str, client: str) -> None:
        self.metrics.rejected.labels(str(status)).inc()
        self.metrics.requests.labels("rejected", "", str(status)).inc()
        request_log.info(
            "request refused: {status} {reason} id={request_id} client={client}",
            request_id=request_id, route="rejected", status=status, reason=reason, client=client,
        )

    # -- forwarding (forwarder, client, oauth) --

    def attempt(self, account: str, model: str, method: str) -> None:
        obs = current()
        if obs is None:
            return
        if obs.attempts and obs.last_failure is not None:
            self.metrics.retries.labels(obs.last_failure).inc()
            if account != obs.account:
                self.metrics.rotations.labels(obs.last_failure).inc()
        obs.attempts += 1
        obs.account = account
        obs.last_failure = None
        if model and model != "*":
            obs.mapped_model = model

    def attempt_failed(self, reason: str) -> None:
        self.metrics.attempt_failures.labels(reason).inc()
        obs = current()
        if obs is not None:
            obs.last_failure = reason

    def upstream_first_byte(self, method: str, host: str, seconds: float) -> None:
        self.metrics.upstream_first_byte_count.add((method,), seconds)
        self.upstream_body(seconds)

    def upstream_body(self, seconds: float) -> None:
        upstream_time(seconds)

    def host_fallback(self, host: str, reason: str) -> None:
        self.metrics.host_fallbacks.labels(host, reason).inc()

    def token_refresh(self, result: str, seconds: float) -> None:
        self.metrics.token_refreshes.labels(result).inc()
        self.upstream_body(seconds)

    # -- streams (relay) --

    def stream_started(self, observation: Observation | None) -> None:
        self.metrics.active_streams.inc()
        if observation is not None:
            observation.stream = True

    def stream_finished(self, observation: Observation | None, upstream_seconds: float) -> None:
        self.metrics.active_streams.dec()
        if observation is not None:
            observation.upstream_seconds += max(0.0, upstream_seconds)

    def reloaded(self, ok: bool) -> None:
        self.metrics.reloads.labels("ok" if ok else "refused").inc()

    # -- the log event --

    def label(self, account: str | None) -> str | None:
        if account is None or self.account_label == "email":
            return account
        if self.account_label == "hash":
            return "sha256:" + hashlib.sha256(account.encode()).hexdigest()[:16]
        return None

    def _log(self, obs: Observation, status: int, latency: float, overhead: float) -> None:
        usage = obs.usage or {}
        fields: dict[str, Any] = {  # the order of the JSON line's fields
            "prompt_tokens": usage.get("promptTokenCount"),
            "candidates_tokens": usage.get("candidatesTokenCount"),
            "thoughts_tokens": usage.get("thoughtsTokenCount"),
            "cached_tokens": usage.get("cachedContentTokenCount"),
            "total_tokens": usage.get("totalTokenCount"),
            "request_id": obs.request_id,
            "method": obs.method,
            "route": obs.route,
            "model": obs.model,
            "mapped_model": obs.mapped_model,
            "account": self.label(obs.account),
            "attempts": obs.attempts,
            "retries": max(0, obs.attempts - 1),
            "status": status,
            "latency_ms": round(latency * 1000, 1),
            "upstream_ms": round(obs.upstream_seconds * 1000, 1),
            "overhead_ms": round(overhead * 1000, 2),
            "stream": obs.stream,
            "client": obs.client,
            "key": obs.key,
        }
        text = REQUEST_FORMAT.format_map(fields)
        # ``log_text``: the line already written out, so the gateway's own observers (``gateway.logs``)
        # need not run twisted.logger's formatter over the escaped template again.
        fields["log_text"] = text
        _emit(request_log, LogLevel.warn if status >= 500 else LogLevel.info, _escaped(text), fields)


def _emit(logger: Logger, level: LogLevel, format: str, event: dict[str, Any]) -> None:
    """``logger.emit(level, format, **event)`` for a level known to be valid: the same event to the
    same observers, without ``Logger.emit``'s check of the level (it sorts ``LogLevel``'s
    constants on every call) and without copying the fields once more."""
    event.update(
        log_logger=logger, log_level=level, log_namespace=logger.namespace, log_source=logger.source,
        log_format=format, log_time=time.time(),
    )
    logger.observer(event)
