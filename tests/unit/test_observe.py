"""The observer's pure parts: route labels from paths, usageMetadata from bytes, account labels, metric bounds."""

from __future__ import annotations

import json

import pytest

from gateway.metrics import MAX_MODEL_LABELS, Metrics
from gateway.observe import GatewayObserver, Observation, bind, route_of, usage_from


@pytest.mark.parametrize(
    "path, route, model",
    [
        (b"/healthz", "healthz", None),
        (b"/metrics", "metrics", None),
        (b"/v1beta/models", "models.list", None),
        (b"/v1/models/", "models.list", None),
        (b"/v1beta/models/gemini-2.5-pro", "models.get", "gemini-2.5-pro"),
        (b"/v1beta/models/gemini-2.5-flash:generateContent", "generateContent", "gemini-2.5-flash"),
        (b"/v1/models/models/gemini-2.5-flash:streamGenerateContent", "streamGenerateContent", "gemini-2.5-flash"),
        (b"/v1alpha/models/x:countTokens", "countTokens", "x"),
        (b"/v1beta/models/x:embedContent", "embedContent", "x"),
        (b"/v1beta/models/x:bogus", "other", None),
        (b"/v1/chat/completions", "chat.completions", None),
        (b"/v1/messages", "messages", None),
        (b"/admin", "admin.dashboard", None),
        (b"/admin/", "admin.dashboard", None),
        (b"/admin/static/app.js", "admin.dashboard", None),
        (b"/admin/usage", "admin.usage", None),
        (b"/admin/overview", "admin.overview", None),
        (b"/admin/keys", "admin.keys", None),
        (b"/admin/keys/alice/revoke", "admin.keys.action", None),
        (b"/admin/accounts/a@b.c/enable", "admin.accounts.action", None),
        (b"/admin/accounts", "admin.accounts", None),
        (b"/admin/bogus", "other", None),
        (b"/v2/models", "other", None),
    ],
)
def test_route_of(path: bytes, route: str, model: str | None) -> None:
    assert route_of(path) == (route, model)


def test_usage_is_read_from_a_whole_body_and_from_a_stream_event() -> None:
    body = json.dumps({"candidates": [{"content": {"parts": [{"text": "hi \"usageMetadata\""}]}}],
                       "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}}).encode()
    assert usage_from(body) == {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}
    event = b'data: {"candidates":[],"usageMetadata":{"promptTokenCount":1,"thoughtsTokenCount":2}}\r\n\r\n'
    assert usage_from(event) == {"promptTokenCount": 1, "thoughtsTokenCount": 2}
    assert usage_from(b'{"candidates":[]}') is None
    assert usage_from(b'{"usageMetadata": {"promptTokenCount": 1') is None  # cut off: ignored, never raised


def test_retries_and_rotations_follow_the_attempt_sequence() -> None:
    metrics = Metrics()
    observer = GatewayObserver(metrics, lambda: 0.0)
    obs = Observation("id", "POST", "generateContent", "m", "127.0.0.1", 0.0)
    import contextvars

    def run() -> None:
        bind(obs)
        observer.attempt("a@example.com", "gemini-2.5-pro", "generateContent")
        observer.attempt_failed("rate_limited")
        observer.attempt("a@example.com", "gemini-2.5-pro", "generateContent")  # same account: a retry
        observer.attempt_failed("quota")
        observer.attempt("b@example.com", "gemini-2.5-pro", "generateContent")  # another: a rotation too

    contextvars.copy_context().run(run)
    assert (obs.attempts, obs.account, obs.mapped_model) == (3, "b@example.com", "gemini-2.5-pro")
    text = metrics.exposition().decode()
    assert 'antigravity_gateway_retries_total{reason="rate_limited"} 1.0' in text
    assert 'antigravity_gateway_retries_total{reason="quota"} 1.0' in text
    assert 'antigravity_gateway_account_rotations_total{reason="quota"} 1.0' in text
    assert 'antigravity_gateway_account_rotations_total{reason="rate_limited"}' not in text


def test_hooks_outside_a_request_only_count() -> None:
    metrics = Metrics()
    observer = GatewayObserver(metrics, lambda: 0.0)
    observer.attempt("a@example.com", "m", "generateContent")
    observer.attempt_failed("transient")
    observer.token_refresh("ok", 0.2)
    assert 'antigravity_gateway_token_refreshes_total{result="ok"} 1.0' in metrics.exposition().decode()


def test_account_labels() -> None:
    observer = GatewayObserver(Metrics(), lambda: 0.0, "hash")
    hashed = observer.label("alice@example.com")
    assert hashed.startswith("sha256:") and "alice" not in hashed and hashed == observer.label("alice@example.com")
    assert GatewayObserver(Metrics(), lambda: 0.0, "none").label("alice@example.com") is None
    assert GatewayObserver(Metrics(), lambda: 0.0).label("alice@example.com") == "alice@example.com"


def test_model_labels_are_bounded() -> None:
    metrics = Metrics()
    labels = {metrics.model_label(f"model-{i}") for i in range(MAX_MODEL_LABELS + 50)}
    assert len(labels) == MAX_MODEL_LABELS + 1 and "other" in labels
    assert metrics.model_label("model-3") == "model-3"


def test_each_gateway_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.requests.labels("healthz", "", "200").inc()
    assert b"antigravity_gateway_requests_total{" in one.exposition()
    assert b"antigravity_gateway_requests_total{" not in two.exposition()


class Rounds:
    """A reactor's timed calls, run round by round like ``runUntilCurrent``."""

    def __init__(self) -> None:
        self.pending: list = []

    def callLater(self, delay: float, f, *args) -> None:  # type: ignore[no-untyped-def]
        self.pending.append((f, args))

    def run_round(self) -> None:
        due, self.pending = self.pending, []
        for f, args in due:
            f(*args)


def test_the_request_log_waits_for_the_flush_but_metrics_do_not() -> None:
    from twisted.logger import globalLogPublisher

    from gateway.operations import after_flush

    rounds = Rounds()
    metrics = Metrics()
    observer = GatewayObserver(metrics, lambda: 0.0, after_flush=after_flush(rounds))
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        observer.request_finished(Observation("rid-1", "POST", "generateContent", "m", "127.0.0.1", 0.0), 200)
        assert 'route="generateContent"' in metrics.exposition().decode()  # counted at once
        assert not [e for e in events if e.get("request_id") == "rid-1"]
        rounds.run_round()  # timed calls before the I/O pass that writes the response
        assert not [e for e in events if e.get("request_id") == "rid-1"]
        rounds.run_round()  # the round after that pass
        assert [e for e in events if e.get("request_id") == "rid-1"]
    finally:
        globalLogPublisher.removeObserver(events.append)


def test_work_after_the_flush_is_batched_but_never_runs_before_its_own_flush() -> None:
    from gateway.operations import after_flush

    rounds = Rounds()
    later = after_flush(rounds)
    ran: list[str] = []
    later(lambda: ran.append("a"))
    later(lambda: ran.append("b"))
    assert len(rounds.pending) == 1  # one timer for both
    rounds.run_round()
    later(lambda: ran.append("c"))  # finished during the I/O pass after the first round
    rounds.run_round()
    assert ran == ["a", "b"]  # c's own flush has not happened yet
    rounds.run_round()
    assert ran == ["a", "b", "c"]


def test_the_pre_rendered_request_line_reads_as_twisted_would_format_it() -> None:
    """``log_text`` spares the observers the formatter; the text and JSON lines do not change."""
    from twisted.logger import formatEvent, globalLogPublisher

    from gateway.logs import json_line, text_line

    observer = GatewayObserver(Metrics(), lambda: 0.0)
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        obs = Observation("rid-{2}", "POST", "generateContent", "m{x}", "127.0.0.1", 0.0)
        observer.request_finished(obs, 200)
    finally:
        globalLogPublisher.removeObserver(events.append)
    (event,) = [e for e in events if e.get("request_id") == "rid-{2}"]
    assert event["log_text"] == formatEvent(event) and "id=rid-{2}" in event["log_text"]
    without = {k: v for k, v in event.items() if k != "log_text"}
    assert text_line(event, timestamps=False) == text_line(without, timestamps=False)
    assert json_line(event) == json_line(without)


def test_remembered_routes_are_route_of_and_bounded() -> None:
    from gateway import observe

    paths = [b"/v1beta/models/gemini-3-flash:generateContent", b"/healthz", b"/v1beta/models/x:bogus"]
    assert [observe._route(p) for p in paths * 2] == [route_of(p) for p in paths * 2]
    for i in range(observe._MAX_ROUTES + 10):  # a client inventing paths cannot grow it without end
        observe._route(b"/v1beta/models/m%d:generateContent" % i)
    assert len(observe._ROUTES) <= observe._MAX_ROUTES
    assert observe._route(b"/v1beta/models/m1:generateContent") == ("generateContent", "m1")


def test_a_parsed_answer_gives_its_usage_once_and_its_write_is_not_scanned_again() -> None:
    import contextvars

    from gateway.observe import answer_usage

    observer = GatewayObserver(Metrics(), lambda: 0.0)
    answer = {"candidates": [], "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 9, "x": True}}
    written = json.dumps(answer).encode()
    generated = Observation("id", "POST", "generateContent", "m", "127.0.0.1", 0.0)
    counted = Observation("id", "POST", "countTokens", "m", "127.0.0.1", 0.0)

    def run(obs: Observation) -> None:
        bind(obs)
        answer_usage(answer)
        observer.response_data(obs, b'{"usageMetadata":{"promptTokenCount":999}}')  # not parsed again

    contextvars.copy_context().run(run, generated)
    assert generated.usage == usage_from(written) == {"promptTokenCount": 4, "totalTokenCount": 9}
    contextvars.copy_context().run(run, counted)  # a route without usage: nothing noted, as before
    assert counted.usage is None and not counted.usage_read
    answer_usage(answer)  # outside a request: nothing to note, no error
