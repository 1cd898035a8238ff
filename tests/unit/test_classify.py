"""Reading real-shaped Cloud Code failures, and what the client finally sees."""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest

from gateway.protocol.classify import (
    KINDS,
    UpstreamFailure,
    classify,
    client_error,
    parse_duration,
    parse_timestamp,
    scrub,
)
from gateway.protocol.errors import TYPE_PREFIX

NOW = 1_764_072_000.0  # 2025-11-25T12:00:00Z


def rpc(code: int, message: str, status: str, *details: dict) -> bytes:
    error: dict = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return json.dumps({"error": error}).encode()


def error_info(reason: str, **metadata: str) -> dict:
    info: dict = {"@type": TYPE_PREFIX + "ErrorInfo", "reason": reason, "domain": "cloudcode-pa.googleapis.com"}
    if metadata:
        info["metadata"] = metadata
    return info


def retry_info(delay: object) -> dict:
    return {"@type": TYPE_PREFIX + "RetryInfo", "retryDelay": delay}


RATE_LIMITED = rpc(
    429,
    "Resource has been exhausted (e.g. check quota).",
    "RESOURCE_EXHAUSTED",
    error_info("RATE_LIMIT_EXCEEDED", model="gemini-2.5-pro"),
    retry_info("0.539s"),
)

QUOTA_EXHAUSTED = rpc(
    429,
    "You have exhausted your capacity on this model. Your quota will reset after 1h2m3s.",
    "RESOURCE_EXHAUSTED",
    error_info(
        "QUOTA_EXHAUSTED",
        model="gemini-2.5-pro",
        quotaResetDelay="1h16m0.667s",
        quotaResetTimeStamp="2025-11-25T13:16:00Z",
    ),
)

CAPACITY = rpc(
    503,
    "No capacity available for model gemini-3-pro-preview on the server",
    "UNAVAILABLE",
    error_info("MODEL_CAPACITY_EXHAUSTED", model="gemini-3-pro-preview"),
)

HTML_502 = (
    b"<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Error 502 (Server Error)!!1</title>"
    b"<p><b>502.</b> <ins>That's an error.</ins><p>The server encountered a temporary error.</p></html>"
)


# -- parse_duration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("54s", 54.0),
        ("0.539s", 0.539),
        ("1.5s", 1.5),
        ("58.217843437s", 58.217843437),
        ("1h2m3.5s", 3723.5),
        ("1h16m0.667s", 4560.667),
        ("2h29m31s", 8971.0),
        ("373.8ms", 0.3738),
        ("500us", 0.0005),
        ("500µs", 0.0005),
        ("100ns", 1e-7),
        ("5m", 300.0),
        ("5min", 300.0),
        ("30", 30.0),
        ("0.5", 0.5),
        (".5s", 0.5),
        ("2 minutes 30 seconds", 150.0),
        ("1 hour, 2 minutes and 3 seconds", 3723.0),
        (" 10s ", 10.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "abc", "-5s", "5x", "5 sec later", "1h2", "ms", "5mss", None, 5])
def test_parse_duration_rejects(text: object) -> None:
    assert parse_duration(text) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2025-11-25T12:00:00Z", NOW),
        ("2025-11-25T12:00:00.5Z", NOW + 0.5),
        ("2025-11-25T12:00:00.123456789Z", NOW + 0.123456789),
        ("2025-11-25T13:00:00+01:00", NOW),
        ("2025-11-25T07:00:00-0500", NOW),
        ("2025-11-25T12:00:00", NOW),
        ("2025-11-25 12:00:00z", NOW),
    ],
)
def test_parse_timestamp(text: str, epoch: float) -> None:
    assert parse_timestamp(text) == pytest.approx(epoch)


@pytest.mark.parametrize("text", ["", "tomorrow", "2025-13-01T00:00:00Z", "2025-11-25", "2025-11-25T25:00:00Z"])
def test_parse_timestamp_rejects(text: str) -> None:
    assert parse_timestamp(text) is None


# -- classify: kinds and reasons -------------------------------------------------------


def test_rate_limit_exceeded_with_retry_info() -> None:
    failure = classify(429, {}, RATE_LIMITED, NOW)
    assert failure.kind == "rate_limited"
    assert failure.reason == "RATE_LIMIT_EXCEEDED"
    assert failure.retry_delay == pytest.approx(0.539)
    assert failure.message == "Resource has been exhausted (e.g. check quota)."
    assert failure.body == json.loads(RATE_LIMITED)
    assert failure.next_account and not failure.next_host
    assert failure.validation_url is None


def test_quota_exhausted_prefers_quota_reset_delay_over_timestamp_and_message() -> None:
    failure = classify(429, {}, QUOTA_EXHAUSTED, NOW)
    assert failure.kind == "quota_exhausted"
    assert failure.reason == "QUOTA_EXHAUSTED"
    assert failure.retry_delay == pytest.approx(4560.667)


def test_quota_reset_timestamp_relative_to_now() -> None:
    body = rpc(429, "quota", "RESOURCE_EXHAUSTED", error_info("QUOTA_EXHAUSTED", quotaResetTimeStamp="2025-11-25T13:16:00Z"))
    assert classify(429, {}, body, NOW).retry_delay == pytest.approx(76 * 60)
    assert classify(429, {}, body, NOW + 60).retry_delay == pytest.approx(75 * 60)


def test_quota_reset_timestamp_in_the_past_is_zero() -> None:
    body = rpc(429, "quota", "RESOURCE_EXHAUSTED", error_info("QUOTA_EXHAUSTED", quotaResetTimeStamp="2025-11-25T11:00:00Z"))
    assert classify(429, {}, body, NOW).retry_delay == 0.0


def test_model_capacity_exhausted_503() -> None:
    failure = classify(503, {}, CAPACITY, NOW)
    assert failure.kind == "capacity"
    assert failure.reason == "MODEL_CAPACITY_EXHAUSTED"
    assert failure.retry_delay is None
    assert failure.next_host and failure.next_account


def test_model_capacity_exhausted_429_list_wrapped() -> None:
    # Seen from the streaming endpoint: the Status arrives inside a JSON array.
    body = b"[" + rpc(
        429,
        "No capacity available for model gemini-3-flash-preview on the server",
        "RESOURCE_EXHAUSTED",
        error_info("MODEL_CAPACITY_EXHAUSTED", model="gemini-3-flash-preview"),
    ) + b"\n]"
    failure = classify(429, {}, body, NOW)
    assert failure.kind == "capacity"
    assert failure.reason == "MODEL_CAPACITY_EXHAUSTED"
    assert failure.body["error"]["code"] == 429
    assert failure.message.startswith("No capacity available")


def test_list_wrapped_rate_limit_keeps_retry_info() -> None:
    failure = classify(429, {}, b"[" + RATE_LIMITED + b"]", NOW)
    assert failure.kind == "rate_limited"
    assert failure.retry_delay == pytest.approx(0.539)


def test_validation_required_url_in_metadata() -> None:
    body = rpc(
        403,
        "Verify your account to continue.",
        "PERMISSION_DENIED",
        error_info("VALIDATION_REQUIRED", validation_url="https://accounts.google.com/signin/continue?sarp=1&plt=SECRET"),
    )
    failure = classify(403, {}, body, NOW)
    assert failure.kind == "validation_required"
    assert failure.reason == "VALIDATION_REQUIRED"
    assert failure.validation_url == "https://accounts.google.com/signin/continue?sarp=1&plt=SECRET"
    assert failure.next_account and not failure.next_host


def test_validation_required_url_in_help_link() -> None:
    body = rpc(
        403,
        "Validation required.",
        "PERMISSION_DENIED",
        error_info("VALIDATION_REQUIRED"),
        {"@type": TYPE_PREFIX + "Help", "links": [{"description": "Verify your account", "url": "https://g.co/verify?t=1"}]},
    )
    failure = classify(403, {}, body, NOW)
    assert failure.kind == "validation_required"
    assert failure.validation_url == "https://g.co/verify?t=1"


def test_validation_url_from_help_link_without_reason() -> None:
    body = rpc(
        403,
        "Permission denied.",
        "PERMISSION_DENIED",
        {"@type": TYPE_PREFIX + "Help", "links": [{"description": "Please verify your account", "url": "https://x/v"}]},
    )
    failure = classify(403, {}, body, NOW)
    assert failure.kind == "validation_required"
    assert failure.validation_url == "https://x/v"


def test_validation_url_from_message_text_when_reason_says_so() -> None:
    body = rpc(403, "Please visit https://accounts.google.com/verify?x=1.", "PERMISSION_DENIED", error_info("VALIDATION_REQUIRED"))
    assert classify(403, {}, body, NOW).validation_url == "https://accounts.google.com/verify?x=1"


def test_api_disabled_help_link_is_not_a_validation_url() -> None:
    body = rpc(
        403,
        "Cloud AI Companion API has not been used in project 123 before or it is disabled.",
        "PERMISSION_DENIED",
        error_info("SERVICE_DISABLED", consumer="projects/123"),
        {
            "@type": TYPE_PREFIX + "Help",
            "links": [{"description": "Google developers console API activation", "url": "https://console.developers.google.com/apis/api/x?project=123"}],
        },
    )
    failure = classify(403, {}, body, NOW)
    assert failure.kind == "forbidden"
    assert failure.reason == "SERVICE_DISABLED"
    assert failure.validation_url is None


def test_401() -> None:
    body = rpc(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.", "UNAUTHENTICATED")
    failure = classify(401, {}, body, NOW)
    assert failure.kind == "unauthorized"
    assert failure.next_account and not failure.next_host


def test_html_502() -> None:
    failure = classify(502, {"content-type": "text/html"}, HTML_502, NOW)
    assert failure.kind == "transient"
    assert failure.reason is None
    assert "502" in failure.message and "Error 502 (Server Error)" in failure.message
    assert "<" not in failure.message
    assert failure.body == {"error": {"code": 502, "message": failure.message, "status": "UNAVAILABLE"}}
    assert failure.next_host and failure.next_account


def test_empty_body() -> None:
    failure = classify(500, {}, b"", NOW)
    assert failure.kind == "transient"
    assert failure.message == "Upstream answered HTTP 500."
    assert failure.body["error"]["status"] == "INTERNAL"


def test_plain_text_body_is_cut_short() -> None:
    failure = classify(500, {}, b"x" * 10_000, NOW)
    assert len(failure.message) < 300


def test_json_that_is_not_a_status() -> None:
    failure = classify(500, {}, b'{"foo": 1}', NOW)
    assert "unrecognised JSON" in failure.message
    assert failure.body["error"]["code"] == 500


def test_oauth_style_error_body() -> None:
    failure = classify(400, {}, b'{"error":"invalid_grant","error_description":"Token has been expired or revoked."}', NOW)
    assert failure.message == "invalid_grant: Token has been expired or revoked."
    assert failure.kind == "client_error"


def test_xssi_prefixed_body() -> None:
    failure = classify(429, {}, b")]}'\n" + RATE_LIMITED, NOW)
    assert failure.reason == "RATE_LIMIT_EXCEEDED"


@pytest.mark.parametrize(
    ("status", "kind", "next_host", "next_account"),
    [
        (400, "client_error", False, False),
        (404, "not_found", True, False),
        (408, "transient", True, False),
        (413, "client_error", False, False),
        (429, "rate_limited", False, True),
        (500, "transient", True, True),
        (503, "transient", True, True),
        (504, "transient", True, True),
    ],
)
def test_status_only_kinds_and_routing(status: int, kind: str, next_host: bool, next_account: bool) -> None:
    failure = classify(status, {}, rpc(status, "m", "X"), NOW)
    assert failure.kind == kind
    assert (failure.next_host, failure.next_account) == (next_host, next_account)


def test_every_kind_is_declared() -> None:
    bodies = [
        (429, RATE_LIMITED),
        (429, QUOTA_EXHAUSTED),
        (503, CAPACITY),
        (401, b""),
        (403, b""),
        (403, rpc(403, "v", "PERMISSION_DENIED", error_info("VALIDATION_REQUIRED"))),
        (403, rpc(403, "d", "PERMISSION_DENIED", error_info("ACCOUNT_DISABLED"))),
        (404, b""),
        (500, b""),
        (400, b""),
    ]
    assert {classify(s, {}, b, NOW).kind for s, b in bodies} == set(KINDS)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("You have exhausted your capacity on this model. Your quota will reset after 2h29m31s.", "quota_exhausted"),
        ("No capacity available for model x on the server", "capacity"),
        ("Resource has been exhausted (e.g. check quota).", "rate_limited"),
    ],
)
def test_429_without_error_info_reads_the_message(message: str, kind: str) -> None:
    assert classify(429, {}, rpc(429, message, "RESOURCE_EXHAUSTED"), NOW).kind == kind


def test_reason_not_first_detail() -> None:
    body = rpc(429, "m", "RESOURCE_EXHAUSTED", retry_info("3s"), {"@type": TYPE_PREFIX + "QuotaFailure"}, error_info("QUOTA_EXHAUSTED"))
    failure = classify(429, {}, body, NOW)
    assert failure.reason == "QUOTA_EXHAUSTED"
    assert failure.retry_delay == 3.0


# -- classify: delays, in PROTOCOL order ----------------------------------------------


def test_retry_after_seconds_wins_over_everything() -> None:
    assert classify(429, {"retry-after": "7"}, QUOTA_EXHAUSTED, NOW).retry_delay == 7.0
    assert classify(429, {"retry-after": "7"}, RATE_LIMITED, NOW).retry_delay == 7.0


def test_retry_after_http_date() -> None:
    headers = {"retry-after": formatdate(NOW + 120, usegmt=True)}
    assert classify(503, headers, CAPACITY, NOW).retry_delay == pytest.approx(120)


def test_retry_after_date_in_the_past_is_zero() -> None:
    headers = {"retry-after": formatdate(NOW - 120, usegmt=True)}
    assert classify(503, headers, b"", NOW).retry_delay == 0.0


def test_bad_retry_after_falls_through_to_body() -> None:
    assert classify(429, {"retry-after": "soon"}, RATE_LIMITED, NOW).retry_delay == pytest.approx(0.539)
    assert classify(429, {"retry-after": ""}, RATE_LIMITED, NOW).retry_delay == pytest.approx(0.539)


def test_retry_info_wins_over_quota_reset_delay() -> None:
    body = rpc(429, "m", "RESOURCE_EXHAUSTED", error_info("QUOTA_EXHAUSTED", quotaResetDelay="1h"), retry_info("54s"))
    assert classify(429, {}, body, NOW).retry_delay == 54.0


def test_retry_info_object_form() -> None:
    body = rpc(429, "m", "RESOURCE_EXHAUSTED", retry_info({"seconds": "1", "nanos": 500000000}))
    assert classify(429, {}, body, NOW).retry_delay == pytest.approx(1.5)


def test_unparseable_retry_info_falls_through() -> None:
    body = rpc(429, "m", "RESOURCE_EXHAUSTED", retry_info("whenever"), error_info("QUOTA_EXHAUSTED", quotaResetDelay="373.8ms"))
    assert classify(429, {}, body, NOW).retry_delay == pytest.approx(0.3738)


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("Your quota will reset after 1h2m3s.", 3723.0),
        ("Too many requests, retry in 54s", 54.0),
        ("Quota exceeded. Please retry in 13.5s.", 13.5),
        ("Please retry in 58.217843437s.", 58.217843437),
        ("Try again in 2 minutes.", 120.0),
        ("Rate limited; retry after 30 seconds and then again", 30.0),
    ],
)
def test_delay_from_message_text(message: str, seconds: float) -> None:
    assert classify(429, {}, rpc(429, message, "RESOURCE_EXHAUSTED"), NOW).retry_delay == pytest.approx(seconds)


def test_no_delay_anywhere() -> None:
    assert classify(429, {}, rpc(429, "Slow down.", "RESOURCE_EXHAUSTED"), NOW).retry_delay is None


def test_failure_is_frozen() -> None:
    failure = classify(429, {}, RATE_LIMITED, NOW)
    with pytest.raises(AttributeError):
        failure.kind = "x"  # type: ignore[misc]


# -- client_error ----------------------------------------------------------------------


def test_client_error_429_keeps_status_details_and_retry_info() -> None:
    error = client_error(classify(429, {}, RATE_LIMITED, NOW))
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    assert error.message == "Resource has been exhausted (e.g. check quota)."
    types = [d["@type"] for d in error.details]
    assert types == [TYPE_PREFIX + "ErrorInfo", TYPE_PREFIX + "RetryInfo"]
    assert error.details[1]["retryDelay"] == "0.539s"
    assert error.headers == {"Retry-After": "1"}


def test_client_error_429_gains_retry_info_when_delay_came_from_elsewhere() -> None:
    error = client_error(classify(429, {}, QUOTA_EXHAUSTED, NOW))
    retry = [d for d in error.details if d["@type"] == TYPE_PREFIX + "RetryInfo"]
    assert retry == [{"@type": TYPE_PREFIX + "RetryInfo", "retryDelay": "4560.667s"}]
    assert error.headers["Retry-After"] == "4561"


def test_client_error_without_delay_has_no_retry_after() -> None:
    error = client_error(classify(400, {}, rpc(400, "bad field", "INVALID_ARGUMENT"), NOW))
    assert (error.code, error.status, error.message) == (400, "INVALID_ARGUMENT", "bad field")
    assert error.headers == {}
    assert error.details == []


def test_client_error_wraps_non_rpc_bodies_google_style() -> None:
    error = client_error(classify(502, {}, HTML_502, NOW))
    body = json.loads(error.to_body())
    assert body["error"]["code"] == 502
    assert body["error"]["status"] == "UNAVAILABLE"
    assert "Error 502" in body["error"]["message"]


def test_client_error_scrubs_secrets() -> None:
    message = (
        "Token ya29.a0AfH6SMBx-secret for alice@example.com in projects/my-proj-123 "
        "rejected (Authorization: Bearer abc.def); see https://x.example/p?key=AIzaSyA48NBQu6n3AzKtmx1pHc5yLhFq8WwiKHA "
        "refresh 1//0gLONGREFRESH"
    )
    body = rpc(403, message, "PERMISSION_DENIED", error_info("SERVICE_DISABLED", consumer="projects/my-proj-123"))
    error = client_error(classify(403, {}, body, NOW))
    text = json.dumps(error.to_dict())
    for secret in ("ya29.", "alice@example.com", "my-proj-123", "abc.def", "AIza", "key=", "1//0g"):
        assert secret not in text, secret
    assert error.code == 403
    assert "projects/[redacted]" in error.details[0]["metadata"]["consumer"]


def test_client_error_validation_required_hides_the_link() -> None:
    body = rpc(
        403,
        "Verify your account.",
        "PERMISSION_DENIED",
        error_info("VALIDATION_REQUIRED", validation_url="https://accounts.google.com/v?plt=SECRET", model="m"),
        {"@type": TYPE_PREFIX + "Help", "links": [{"description": "Verify", "url": "https://accounts.google.com/v?plt=SECRET"}]},
    )
    failure = classify(403, {}, body, NOW)
    error = client_error(failure)
    text = json.dumps(error.to_dict())
    assert "accounts.google.com" not in text
    assert error.code == 403
    assert "operator" in error.message
    assert error.details == [{**error_info("VALIDATION_REQUIRED", model="m")}]
    # The failure itself still has the link, for the operator.
    assert failure.validation_url == "https://accounts.google.com/v?plt=SECRET"


def test_client_error_non_error_status_becomes_502() -> None:
    failure = UpstreamFailure(200, None, "odd", None, "client_error", None, {"error": {"code": 200, "message": "odd"}})
    error = client_error(failure)
    assert (error.code, error.status) == (502, "UNAVAILABLE")


def test_client_error_does_not_mutate_failure_body() -> None:
    failure = classify(403, {}, rpc(403, "x", "PERMISSION_DENIED", error_info("VALIDATION_REQUIRED", validation_url="https://v")), NOW)
    before = json.dumps(failure.body, sort_keys=True)
    client_error(failure)
    assert json.dumps(failure.body, sort_keys=True) == before


def test_scrub_leaves_plain_text_alone() -> None:
    text = "Resource has been exhausted (e.g. check quota). See https://ai.google.dev/gemini-api/docs/rate-limits"
    assert scrub(text) == text


def test_account_bans_and_the_model_a_failure_is_about() -> None:
    banned = classify(403, {}, rpc(403, "This account violated the Terms of Service.", "PERMISSION_DENIED"), NOW)
    assert banned.kind == "account_disabled"
    family = classify(403, {}, rpc(403, "Permission denied on Claude models", "PERMISSION_DENIED"), NOW)
    assert family.kind == "forbidden"
    limited = classify(429, {}, rpc(429, "r", "RESOURCE_EXHAUSTED", error_info("RATE_LIMIT_EXCEEDED", model="models/claude-sonnet-4-6")), NOW)
    assert limited.model == "claude-sonnet-4-6"
