"""google.rpc.Status bodies and their detail builders."""

from __future__ import annotations

import json

import pytest

from gateway.protocol.errors import (
    STATUS_BY_CODE,
    TYPE_PREFIX,
    GatewayError,
    error_body,
    error_dict,
    error_info,
    format_duration,
    help_links,
    retry_info,
    status_for,
)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (413, "INVALID_ARGUMENT"),
        (429, "RESOURCE_EXHAUSTED"),
        (499, "CANCELLED"),
        (500, "INTERNAL"),
        (501, "UNIMPLEMENTED"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ],
)
def test_status_for_protocol_pairs(code: int, status: str) -> None:
    assert status_for(code) == status
    assert STATUS_BY_CODE[code] == status


def test_status_for_unlisted_codes() -> None:
    assert status_for(418) == "FAILED_PRECONDITION"
    assert status_for(599) == "UNKNOWN"


def test_error_dict_shape_and_default_status() -> None:
    assert error_dict(429, "slow down") == {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}


def test_error_dict_explicit_status_and_details() -> None:
    detail = retry_info(3)
    body = error_dict(400, "bad", "FAILED_PRECONDITION", [detail])
    assert body["error"]["status"] == "FAILED_PRECONDITION"
    assert body["error"]["details"] == [detail]


def test_error_dict_omits_empty_details() -> None:
    assert "details" not in error_dict(500, "x", details=[])["error"]


def test_error_body_is_compact_json() -> None:
    body = error_body(404, "nope")
    assert body == b'{"error":{"code":404,"message":"nope","status":"NOT_FOUND"}}'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(54, "54s"), (0.539, "0.539s"), (1.5, "1.5s"), (0, "0s"), (10, "10s"), (100.0, "100s"), (-3, "0s"), (0.0004, "0s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_retry_info_detail() -> None:
    assert retry_info(54) == {"@type": TYPE_PREFIX + "RetryInfo", "retryDelay": "54s"}
    assert TYPE_PREFIX == "type.googleapis.com/google.rpc."


def test_error_info_detail() -> None:
    info = error_info("QUOTA_EXHAUSTED", metadata={"model": "m"})
    assert info == {
        "@type": TYPE_PREFIX + "ErrorInfo",
        "reason": "QUOTA_EXHAUSTED",
        "domain": "cloudcode-pa.googleapis.com",
        "metadata": {"model": "m"},
    }
    assert "metadata" not in error_info("X")


def test_help_links_detail() -> None:
    assert help_links(("Docs", "https://x")) == {
        "@type": TYPE_PREFIX + "Help",
        "links": [{"description": "Docs", "url": "https://x"}],
    }


def test_gateway_error_carries_everything() -> None:
    error = GatewayError(429, "later", details=[retry_info(2)], headers={"Retry-After": "2"})
    assert str(error) == "later"
    assert error.status == "RESOURCE_EXHAUSTED"
    assert error.headers == {"Retry-After": "2"}
    assert json.loads(error.to_body()) == error.to_dict()
    assert error.to_dict()["error"]["details"][0]["retryDelay"] == "2s"


def test_gateway_error_copies_its_inputs() -> None:
    details = [retry_info(1)]
    headers = {"A": "b"}
    error = GatewayError(400, "x", details=details, headers=headers)
    details.append({})
    headers["C"] = "d"
    assert len(error.details) == 1
    assert error.headers == {"A": "b"}
