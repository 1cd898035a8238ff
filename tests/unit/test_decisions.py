"""The decision table: each classified failure kind -> one action, on real-shaped error bodies."""

from __future__ import annotations

import json

import pytest

from gateway.pool.decisions import (
    EXCLUDING,
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
)
from gateway.protocol.classify import classify

NOW = 1_700_000_000.0
DOMAIN = "cloudcode-pa.googleapis.com"


def error(status: int, message: str, *details: dict, code_status: str = "RESOURCE_EXHAUSTED") -> bytes:
    return json.dumps({"error": {"code": status, "message": message, "status": code_status, "details": list(details)}}).encode()


def info(reason: str, **metadata: str) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": DOMAIN, "metadata": metadata}


def retry(delay: str) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def failure(status: int, body: bytes, headers: dict[str, str] | None = None):
    return classify(status, headers or {}, body, NOW)


def rate_limited(delay: str):
    return failure(429, error(429, "Resource has been exhausted (e.g. check quota).", info("RATE_LIMIT_EXCEEDED", model="gemini-2.5-pro"), retry(delay)))


def test_short_rate_limit_waits_and_retries_once_on_the_same_account() -> None:
    assert decide(rate_limited("0.539s"), model="gemini-2.5-pro", now=NOW) == RetrySame(0.539)
    second = decide(rate_limited("0.539s"), model="gemini-2.5-pro", now=NOW, retried_same=True)
    assert isinstance(second, CoolModel) and second.until == pytest.approx(NOW + 0.539)


def test_a_rate_limit_naming_a_model_cools_that_model_on_that_account() -> None:
    """PROTOCOL.md 2b: < 3 s retry, < 5 min cool the model, longer: as exhausted quota."""
    action = decide(rate_limited("54s"), model="gemini-2.5-pro", now=NOW)
    assert isinstance(action, CoolModel) and action.model == "gemini-2.5-pro"
    assert action.until == NOW + 54 and "RATE_LIMIT_EXCEEDED" in action.reason and not action.poll_quota
    long = decide(rate_limited("3600s"), model="gemini-2.5-pro", now=NOW)
    assert isinstance(long, CoolModel) and long.until == NOW + 3600 and long.poll_quota and "quota" in long.reason


def test_a_rate_limit_without_a_model_cools_the_account() -> None:
    body = error(429, "Resource has been exhausted (e.g. check quota).", info("RATE_LIMIT_EXCEEDED"), retry("54s"))
    action = decide(failure(429, body), model="m", now=NOW)
    assert isinstance(action, CoolAccount) and action.until == NOW + 54


def test_the_short_retry_threshold_is_configurable() -> None:
    assert isinstance(decide(rate_limited("2s"), model="m", now=NOW, tuning=Tuning(short_retry_max=1.0)), CoolModel)
    assert decide(rate_limited("5s"), model="m", now=NOW, tuning=Tuning(short_retry_max=10.0)) == RetrySame(5.0)


def test_rate_limit_without_a_delay_cools_for_the_default() -> None:
    plain = failure(429, error(429, "Too many requests"))
    action = decide(plain, model="m", now=NOW, tuning=Tuning(default_cooldown=90))
    assert isinstance(action, CoolAccount) and action.until == NOW + 90


def test_quota_exhausted_cools_only_that_model_until_its_reset() -> None:
    body = error(
        429,
        "You have exhausted your capacity on this model. Your quota will reset after 2h3m4s.",
        info("QUOTA_EXHAUSTED", model="gemini-2.5-pro", quotaResetDelay="2h3m4s", quotaResetTimeStamp="2023-11-15T00:16:24Z"),
    )
    action = decide(failure(429, body), model="gemini-2.5-pro", now=NOW)
    assert isinstance(action, CoolModel)
    assert action.model == "gemini-2.5-pro" and action.until == NOW + 2 * 3600 + 3 * 60 + 4


def test_quota_exhausted_without_a_delay_uses_the_snapshots_reset_time() -> None:
    body = error(429, "Quota exhausted.", info("QUOTA_EXHAUSTED"))
    action = decide(failure(429, body), model="m", now=NOW, quota_reset=NOW + 500)
    assert isinstance(action, CoolModel) and action.until == NOW + 500
    fallback = decide(failure(429, body), model="m", now=NOW, tuning=Tuning(default_cooldown=77))
    assert isinstance(fallback, CoolModel) and fallback.until == NOW + 77


@pytest.mark.parametrize(
    "status, body",
    [
        (503, error(503, "No capacity available for model gemini-2.5-pro on the server", info("MODEL_CAPACITY_EXHAUSTED"), code_status="UNAVAILABLE")),
        (429, error(429, "No capacity available for model gemini-2.5-pro on the server", info("MODEL_CAPACITY_EXHAUSTED"))),
        (503, error(503, "The service is currently unavailable.", code_status="UNAVAILABLE")),
    ],
)
def test_capacity_backs_off_with_jitter_and_does_not_exclude_the_account(status: int, body: bytes) -> None:
    tuning = Tuning(capacity_backoff=1.0)
    low = decide(failure(status, body), model="m", now=NOW, tuning=tuning, jitter=0.0)
    high = decide(failure(status, body), model="m", now=NOW, tuning=tuning, jitter=1.0)
    assert low == Backoff(0.5) and high == Backoff(1.0)
    later = decide(failure(status, body), model="m", now=NOW, tuning=tuning, backoffs=2, jitter=1.0)
    assert later == Backoff(4.0)
    capped = decide(failure(status, body), model="m", now=NOW, tuning=tuning, backoffs=10, jitter=1.0)
    assert capped == Backoff(8.0)
    assert not isinstance(low, EXCLUDING)


def test_capacity_with_a_delay_past_the_cap_gives_up() -> None:
    body = error(503, "overloaded", info("MODEL_CAPACITY_EXHAUSTED"), retry("120s"), code_status="UNAVAILABLE")
    assert decide(failure(503, body), model="m", now=NOW) == GiveUp()


def test_401_refreshes_once_then_cools() -> None:
    body = error(401, "Request had invalid authentication credentials.", info("ACCESS_TOKEN_EXPIRED"), code_status="UNAUTHENTICATED")
    assert decide(failure(401, body), model="m", now=NOW) == RefreshAndRetrySame()
    again = decide(failure(401, body), model="m", now=NOW, refreshed=True)
    assert isinstance(again, CoolAccount) and again.until == NOW + Tuning().default_cooldown


def test_validation_required_rests_the_account_with_the_reason_and_url() -> None:
    url = "https://accounts.google.com/signin/continue?sarp=1&scc=1"
    body = error(
        403,
        "Verify your account to continue.",
        info("VALIDATION_REQUIRED", validation_url=url),
        {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Verify your account", "url": url}]},
        code_status="PERMISSION_DENIED",
    )
    action = decide(failure(403, body), model="m", now=NOW, tuning=Tuning(validation_rest=900))
    assert isinstance(action, CoolAccount) and action.until == NOW + 900
    assert action.validation_url == url and "VALIDATION_REQUIRED" in action.reason


def test_other_403s_rest_the_model_and_the_reason_carries_no_token() -> None:
    body = error(403, "Bearer ya29.secret denied", code_status="PERMISSION_DENIED")
    action = decide(failure(403, body), model="claude-sonnet-4-6", now=NOW)
    assert isinstance(action, CoolModel) and action.model == "claude-sonnet-4-6" and "ya29.secret" not in action.reason
    assert action.until == NOW + Tuning().forbidden_rest and not action.poll_quota


@pytest.mark.parametrize("reason", ["ACCOUNT_DISABLED", "TOS_VIOLATION"])
def test_only_bans_disable_an_account(reason: str) -> None:
    action = decide(failure(403, error(403, "Account disabled.", info(reason), code_status="PERMISSION_DENIED")), model="m", now=NOW)
    assert isinstance(action, Disable) and reason in action.reason


@pytest.mark.parametrize("status", [500, 502, 504, 408])
def test_other_transient_answers_move_on_without_a_cooldown(status: int) -> None:
    assert isinstance(decide(failure(status, error(status, "oops", code_status="INTERNAL")), model="m", now=NOW), NextAccount)


@pytest.mark.parametrize("status", [400, 404, 413])
def test_client_errors_are_the_answer(status: int) -> None:
    assert decide(failure(status, error(status, "bad", code_status="INVALID_ARGUMENT")), model="m", now=NOW) == GiveUp()
