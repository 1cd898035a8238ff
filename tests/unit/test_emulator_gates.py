"""The emulator's pure rules for clients, versions, credits and quota windows."""

from __future__ import annotations

import pytest

from gateway.emulator import quota_summary, versions
from gateway.emulator.clients import BUILTIN, known_clients, refused
from gateway.emulator.rules_credits import credits_requested
from gateway.emulator.state import Account, EmulatorState, StateError
from gateway.protocol.errors import GatewayError


def test_known_clients_and_which_are_refused() -> None:
    table = known_clients("test-id", "test-secret")
    assert {c.name for c in table.values()} == {"antigravity", "gemini-cli", "emulator"}
    gemini = next(c for c in BUILTIN if c.name == "gemini-cli")
    assert refused(gemini, workspace=False) and not refused(gemini, workspace=True)
    assert not refused(table["test-id"], workspace=False) and not refused(None, workspace=False)


@pytest.mark.parametrize("ua,model,expected", [
    ("antigravity/1.11.9 linux/amd64", "gemini-3-flash", 503),
    ("antigravity/hub/2.8.0 darwin/arm64", "claude-sonnet-4-6", 404),
    ("antigravity/hub/2.8.0 darwin/arm64", "gemini-3-flash", None),
    ("antigravity/hub/2.9.1 darwin/arm64", "claude-sonnet-4-6", None),
    ("python-requests/2.32", "gemini-3-flash", None),
])
def test_version_gate(ua: str, model: str, expected: int | None) -> None:
    refusal = versions.gate(ua, model, "2.0.0")
    assert (refusal.code if refusal is not None else None) == expected


def test_manifest_names_the_version() -> None:
    assert versions.manifest("3.0.1", "2026-08-01T00:00:00Z").startswith(b"version: 3.0.1\n")


def test_settings_refuse_a_version_that_is_not_one() -> None:
    state = EmulatorState()
    with pytest.raises(StateError):
        state.settings.update({"min_client_version": "latest"})


def test_credits_only_from_accounts_that_have_them() -> None:
    rich, poor = Account("r@x", "r", credits=100), Account("p@x", "p")
    assert credits_requested({"enabledCreditTypes": ["GOOGLE_ONE_AI"]}, rich, 50)
    assert not credits_requested({}, poor, 50)
    with pytest.raises(GatewayError) as e:
        credits_requested({"enabledCreditTypes": ["GOOGLE_ONE_AI"]}, poor, 50)
    assert e.value.code == 400
    with pytest.raises(GatewayError):
        credits_requested({"enabledCreditTypes": ["SOMETHING_ELSE"]}, rich, 50)


def test_quota_summary_windows_refill_after_their_reset() -> None:
    answer = quota_summary.summary({"weekly": (0.2, 50.0)}, 100.0, str, [])
    groups = {g["groupId"]: g for g in answer["quotaGroups"]}
    assert groups["weekly"]["remainingFraction"] == 1.0  # reset passed
    answer = quota_summary.summary({"weekly": (0.2, 500.0)}, 100.0, str, [])
    assert {g["groupId"]: g["remainingFraction"] for g in answer["quotaGroups"]} == {"five-hour": 1.0, "weekly": 0.2}
