"""Cooldowns, disabling and quota on one record: what "usable for model M at T" means, and what is stored."""

from __future__ import annotations

import json
import math

import pytest

from gateway.pool import health
from gateway.pool.account import Account, AccountFormatError, Cooldown, ModelQuota

NOW = 1_000_000.0


def fresh() -> Account:
    return Account("a@x.com", "rt")


def test_a_fresh_account_is_usable_for_every_model() -> None:
    assert health.blocked_until(fresh(), "m", NOW) == 0.0
    assert health.status(fresh(), NOW).state == "active"


def test_an_account_cooldown_blocks_every_model_until_it_ends() -> None:
    cooled = health.cool_account(fresh(), NOW + 30, "rate limited", NOW)
    assert health.blocked_until(cooled, "m", NOW) == NOW + 30
    assert health.blocked_until(cooled, None, NOW) == NOW + 30
    assert health.usable(cooled, "m", NOW + 30.001)
    assert health.status(cooled, NOW) == health.Status("cooling", NOW + 30, "rate limited")


def test_a_longer_cooldown_is_never_shortened() -> None:
    cooled = health.cool_account(fresh(), NOW + 300, "long", NOW)
    assert health.cool_account(cooled, NOW + 10, "short", NOW) is cooled


def test_a_model_cooldown_leaves_other_models_served() -> None:
    cooled = health.cool_model(fresh(), "gemini-2.5-pro", NOW + 3600, "quota exhausted", NOW)
    assert health.blocked_until(cooled, "gemini-2.5-pro", NOW) == NOW + 3600
    assert health.usable(cooled, "gemini-2.5-flash", NOW)
    assert health.usable(cooled, None, NOW)  # countTokens: model cooldowns do not matter
    assert health.model_blocks(cooled, NOW) == {"gemini-2.5-pro": Cooldown(NOW + 3600, "quota exhausted")}


def test_disabled_is_blocked_forever_and_enable_clears_everything() -> None:
    account = health.cool_model(health.cool_account(fresh(), NOW + 5, "x", NOW), "m", NOW + 5, "y", NOW)
    disabled = health.disable(account, "VALIDATION_REQUIRED", "https://accounts.google.com/signin/continue?x=1")
    assert health.blocked_until(disabled, "m", NOW) == math.inf
    assert disabled.validation_url == "https://accounts.google.com/signin/continue?x=1"
    enabled = health.enable(disabled)
    assert not enabled.disabled and enabled.disabled_reason is None and enabled.validation_url is None
    assert enabled.cooldown_until == 0 and not enabled.model_cooldowns


def test_an_empty_quota_blocks_the_model_until_its_reset() -> None:
    account = health.with_quota(fresh(), {"m": ModelQuota(0.0, NOW + 100), "n": ModelQuota(0.5, NOW + 100)}, NOW)
    assert health.blocked_until(account, "m", NOW) == NOW + 100
    assert health.usable(account, "n", NOW)
    assert health.remaining(account, "m", NOW + 101) == 1.0  # the reset passed: full again
    assert health.remaining(account, "n", NOW) == 0.5
    assert health.remaining(account, "never-seen", NOW) is None


def test_prune_drops_ended_cooldowns() -> None:
    account = health.cool_model(health.cool_account(fresh(), NOW + 5, "x", NOW), "m", NOW + 5, "y", NOW)
    pruned = health.prune(account, NOW + 6)
    assert pruned.cooldown_until == 0 and pruned.cooldown_reason is None and not pruned.model_cooldowns


def test_a_quota_snapshot_does_not_end_a_cooldown_from_a_quota_error() -> None:
    cooled = health.cool_model(fresh(), "m", NOW + 3600, "quota exhausted (QUOTA_EXHAUSTED)", NOW)
    polled = health.with_quota(cooled, {"m": ModelQuota(0.9, NOW + 86400)}, NOW + 10)
    assert health.blocked_until(polled, "m", NOW + 10) == NOW + 3600 and polled.quota_updated == NOW + 10


def test_quota_from_a_real_shaped_fetch_available_models_answer() -> None:
    answer = {
        "models": {
            "gemini-2.5-pro": {"displayName": "Gemini 2.5 Pro", "quotaInfo": {"remainingFraction": 0.25, "resetTime": "2025-01-01T00:00:00Z"}},
            "gemini-2.5-flash": {"quotaInfo": {"resetTime": "2025-01-01T00:00:00Z"}},  # proto3 omits a zero fraction
            "chat_20706": {"displayName": "no quota info"},
            "models/claude-sonnet-4-5": {"quotaInfo": {"remainingFraction": "1"}},
        }
    }
    snapshot = health.quota_from_upstream(answer)
    assert snapshot["gemini-2.5-pro"] == ModelQuota(0.25, 1735689600.0)
    assert snapshot["gemini-2.5-flash"] == ModelQuota(0.0, 1735689600.0)
    assert snapshot["claude-sonnet-4-5"] == ModelQuota(1.0, None)
    assert "chat_20706" not in snapshot


def test_learned_state_round_trips_through_json_and_stays_out_of_a_plain_record() -> None:
    assert set(fresh().to_json()) == {"email", "refresh_token", "access_token", "expiry", "project_id", "disabled", "disabled_reason"}
    account = health.with_quota(
        health.cool_model(health.cool_account(fresh(), NOW + 5, "r", NOW), "m", NOW + 9, "q", NOW),
        {"m": ModelQuota(0.0, NOW + 9)},
        NOW,
    )
    account = health.disable(account, "why", "https://x.example/verify")
    record = json.loads(json.dumps(account.to_json()))
    again = Account.from_json(record, "accounts[0]")
    assert again == account
    assert record["model_cooldowns"] == {"m": {"until": NOW + 9, "reason": "q"}}


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("cooldown_until", "soon", "'cooldown_until'"),
        ("model_cooldowns", [], "model_cooldowns"),
        ("model_cooldowns", {"m": {"until": "x"}}, "model_cooldowns\\['m'\\]"),
        ("quota", {"m": {"remaining": None}}, "quota\\['m'\\]"),
        ("quota", {"m": {"remaining": 1, "reset": "tomorrow"}}, "reset"),
        ("tier", 3, "'tier'"),
    ],
)
def test_bad_learned_state_says_which_field(field: str, value: object, problem: str) -> None:
    with pytest.raises(AccountFormatError, match=problem):
        Account.from_json({"email": "a@x.com", "refresh_token": "r", field: value}, "accounts[0]")


def test_a_days_long_model_cooldown_is_released_when_a_poll_shows_quota_again() -> None:
    week = health.cool_model(fresh(), "m", NOW + 7 * 86400, "weekly quota", NOW)
    minute = health.cool_model(week, "n", NOW + 60, "quota", NOW)
    polled = health.with_quota(minute, {"m": ModelQuota(0.4, NOW + 7 * 86400), "n": ModelQuota(1.0, None)}, NOW + 10)
    assert "m" not in polled.model_cooldowns  # quota is back: the week-long rest was too pessimistic
    assert "n" in polled.model_cooldowns  # a short rest outlives a lagging fraction
    empty = health.with_quota(week, {"m": ModelQuota(0.0, NOW + 7 * 86400)}, NOW + 10)
    assert "m" in empty.model_cooldowns


def test_a_validation_rest_keeps_the_account_enabled_and_its_link_until_it_ends() -> None:
    url = "https://accounts.google.com/signin/continue"
    rested = health.cool_account(fresh(), NOW + 600, "VALIDATION_REQUIRED", NOW, url)
    assert not rested.disabled and rested.validation_url == url
    assert health.status(rested, NOW).state == "cooling"
    assert health.prune(rested, NOW + 601).validation_url is None


def test_an_exhausted_quota_snapshot_does_not_block_an_account_that_may_spend_credits() -> None:
    rich = Account.from_json({"email": "r@x.com", "refresh_token": "rt", "credits": [{"type": "GOOGLE_ONE_AI", "amount": 500, "minimum": 50}]}, "t")
    empty = health.with_quota(rich, {"m": ModelQuota(0.0, NOW + 3600)}, NOW)
    assert health.blocked_until(empty, "m", NOW) == NOW + 3600
    assert health.blocked_until(empty, "m", NOW, spend_credits=True) == 0.0
    cooled = health.cool_model(empty, "m", NOW + 60, "credits refused", NOW)
    assert health.blocked_until(cooled, "m", NOW, spend_credits=True) == NOW + 60  # a refusal still rests it
