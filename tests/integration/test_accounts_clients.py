"""Accounts of several OAuth clients in one pool, a retired client, the live client version,
AI credits and quota windows — against the emulator's Google of late 2026 (PROTOCOL.md 2b)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.logger import globalLogPublisher

from gateway import cli
from gateway.emulator.clients import ANTIGRAVITY_ID, GEMINI_CLI_ID
from gateway.emulator.state import Account as EmulatorAccount
from gateway.pool.account import Account
from tests.integration.harness import CLIENT_ID, CLIENT_SECRET, body_json, start_stack

MODEL = "gemini-3-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]}
EMULATOR_CLIENT = {"emu": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}


class Logged:
    """Text of the log events published while the block runs."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        fmt = event.get("log_format")
        if fmt:
            try:
                self.lines.append(fmt.format(**event))
            except (KeyError, IndexError, ValueError):
                self.lines.append(fmt)

    def __enter__(self) -> "Logged":
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        globalLogPublisher.removeObserver(self)


def token_clients(stack: Any) -> dict[str, set[str]]:
    """email -> the client ids its refreshes used."""
    seen: dict[str, set[str]] = {}
    for entry in stack.emulator.state.requests("token"):
        if entry["email"]:
            seen.setdefault(entry["email"], set()).add(entry["body"]["client_id"])
    return seen


@pytest_twisted.ensureDeferred
async def test_a_mixed_client_pool_refreshes_each_account_with_its_own_client(tmp_path: Path) -> None:
    upstream = [
        EmulatorAccount("ag@example.com", "1//ag", "project-ag", client="antigravity"),
        EmulatorAccount("ws@example.com", "1//ws", "project-ws", client="gemini-cli", workspace=True),
        EmulatorAccount("emu@example.com", "1//emu", "project-emu", client="emulator"),
    ]
    store = [
        {"email": "ag@example.com", "refresh_token": "1//ag"},  # no oauth_client: the default (antigravity)
        {"email": "ws@example.com", "refresh_token": "1//ws", "oauth_client": "gemini-cli"},
        {"email": "emu@example.com", "refresh_token": "1//emu", "oauth_client": "emu"},
    ]
    async with start_stack(tmp_path, upstream, store_accounts=store, upstream={"oauth_clients": EMULATOR_CLIENT}) as stack:
        for email in ("ag@example.com", "ws@example.com", "emu@example.com"):
            await stack.gateway.tokens.token_for(email)
        for _ in range(3):
            response = await stack.post(GENERATE, HELLO)
            assert response.code == 200, await treq.content(response)
            await treq.content(response)
        assert token_clients(stack) == {
            "ag@example.com": {ANTIGRAVITY_ID},
            "ws@example.com": {GEMINI_CLI_ID},
            "emu@example.com": {CLIENT_ID},
        }
        assert not any(a["disabled"] for a in stack.stored())
        view = await body_json(await stack.get("/admin/accounts"))
        assert {a["email"]: a["oauth_client"] for a in view["accounts"]} == {
            "ag@example.com": "antigravity", "ws@example.com": "gemini-cli", "emu@example.com": "emu"}


@pytest_twisted.ensureDeferred
async def test_a_retired_client_account_leaves_rotation_saying_how_to_re_add_it(tmp_path: Path) -> None:
    upstream = [
        EmulatorAccount("fresh@example.com", "1//fresh", None, client="gemini-cli"),
        EmulatorAccount("known@example.com", "1//known", "project-known", client="gemini-cli"),
    ]
    store = [
        {"email": "fresh@example.com", "refresh_token": "1//fresh", "oauth_client": "gemini-cli"},
        # a stored project: no loadCodeAssist first, the generate call itself is refused
        {"email": "known@example.com", "refresh_token": "1//known", "oauth_client": "gemini-cli", "project_id": "project-known"},
    ]
    with Logged() as log:
        async with start_stack(tmp_path, upstream, store_accounts=store) as stack:
            response = await stack.post(GENERATE, HELLO)
            error = (await body_json(response))["error"]
            assert response.code == 503 and "UNSUPPORTED_CLIENT" in error["message"]
            assert "@example.com" not in error["message"]  # the pool's accounts are not the client's business
            records = {a["email"]: a for a in stack.stored()}
            for email in ("fresh@example.com", "known@example.com"):
                assert records[email]["disabled"]
                assert f"accounts add --client antigravity --login-hint {email}`" in records[email]["disabled_reason"]
            view = await body_json(await stack.get("/admin/accounts"))
            assert all("accounts add --client antigravity" in a["disabled_reason"] for a in view["accounts"])
            listed = cli.render_list([Account.from_json(r, "store") for r in records.values()], 0.0)
            assert "accounts add --client antigravity --login-hint fresh@example.com" in listed
    assert any("taken out of rotation" in line and "UNSUPPORTED_CLIENT" in line for line in log.lines)


@pytest_twisted.ensureDeferred
async def test_a_version_bump_mid_run_is_followed(tmp_path: Path) -> None:
    upstream = [EmulatorAccount(f"user{i}@example.com", f"1//r{i}", f"project-{i}") for i in range(2)]
    with Logged() as log:
        async with start_stack(tmp_path, upstream) as stack:
            version = stack.gateway.version
            assert await version.settled() == "2.9.4"  # the emulator's manifest, above the 2.9.1 floor
            response = await stack.post(GENERATE, HELLO)
            assert response.code == 200
            await treq.content(response)
            # Google ships 3.0.1 and stops serving older clients the same day.
            stack.emulator.state.settings.update({"min_client_version": "3.0.0", "manifest_version": "3.0.1"})
            before = len(stack.emulator.state.requests("generateContent"))
            response = await stack.post(GENERATE, HELLO)
            error = (await body_json(response))["error"]
            assert response.code == 503 and "no longer supported" in error["message"] and "2.9.4" in error["message"]
            assert "version_floor" in error["message"]
            # not capacity, not the account's fault: no other account tried, nobody cooled or disabled
            assert len(stack.emulator.state.requests("generateContent")) == before + 1
            assert all(not a["disabled"] and not a.get("cooldown_until") for a in stack.stored())
            assert await version.settled() == "3.0.1"
            response = await stack.post(GENERATE, HELLO)
            assert response.code == 200, await treq.content(response)
            await treq.content(response)
            assert stack.emulator.state.requests("generateContent")[-1]["headers"]["user-agent"] == "antigravity/hub/3.0.1 darwin/arm64"
            view = await body_json(await stack.get("/admin/accounts"))
            assert view["client_version"]["version"] == "3.0.1" and view["client_version"]["floor"] == "2.9.1"
    assert any("raise [upstream] version_floor" in line for line in log.lines)


@pytest_twisted.ensureDeferred
async def test_an_unreadable_manifest_keeps_the_last_good_version_and_logs_once(tmp_path: Path) -> None:
    with Logged() as log:
        async with start_stack(tmp_path, [EmulatorAccount("a@example.com", "1//a", "p-a")]) as stack:
            version = stack.gateway.version
            assert await version.settled() == "2.9.4"
            stack.emulator.state.settings.update({"manifest_status": 500})
            assert await version.refresh() == "2.9.4"
            assert await version.refresh() == "2.9.4"
            assert version.view()["last_error"]
    assert len([line for line in log.lines if "could not read the client version manifest" in line]) == 1


@pytest_twisted.ensureDeferred
async def test_quota_exhausted_is_retried_once_with_ai_credits(tmp_path: Path) -> None:
    upstream = [EmulatorAccount("rich@example.com", "1//rich", None, "standard-tier", credits=500)]
    async with start_stack(tmp_path, upstream, upstream={"use_credits": "when_quota_exhausted"}) as stack:
        stack.emulator.state.accounts["rich@example.com"].project_id = "project-rich"
        stack.emulator.state.set_quota({"model": MODEL, "remaining_fraction": 0, "reset_in": 3600})
        response = await stack.post(GENERATE, HELLO)
        assert response.code == 200, await treq.content(response)
        await treq.content(response)
        calls = stack.emulator.state.requests("generateContent")
        assert [c["status"] for c in calls] == [429, 200]
        assert "enabledCreditTypes" not in calls[0]["body"] and calls[1]["body"]["enabledCreditTypes"] == ["GOOGLE_ONE_AI"]
        assert stack.emulator.state.accounts["rich@example.com"].credits == 499
        view = await body_json(await stack.get("/admin/accounts"))
        assert view["accounts"][0]["credits"] == [{"type": "GOOGLE_ONE_AI", "amount": 500.0, "minimum": 50.0, "usable": True}]


@pytest_twisted.ensureDeferred
async def test_credits_are_never_spent_unless_the_operator_asks(tmp_path: Path) -> None:
    upstream = [EmulatorAccount("rich@example.com", "1//rich", "project-rich", "standard-tier", credits=500)]
    async with start_stack(tmp_path, upstream) as stack:
        stack.emulator.state.set_quota({"model": MODEL, "remaining_fraction": 0, "reset_in": 3600})
        response = await stack.post(GENERATE, HELLO)
        assert response.code == 429
        await treq.content(response)
        assert all("enabledCreditTypes" not in c["body"] for c in stack.emulator.state.requests("generateContent"))
        await stack.gateway.quota.poll("rich@example.com")  # the poll the quota error started: let it finish


@pytest_twisted.ensureDeferred
async def test_quota_windows_show_in_the_admin_view(tmp_path: Path) -> None:
    upstream = [EmulatorAccount("a@example.com", "1//a", "project-a")]
    async with start_stack(tmp_path, upstream) as stack:
        stack.emulator.state.set_quota_window({"group": "weekly", "remaining_fraction": 0.25, "reset_in": 86400})
        stack.emulator.state.set_quota_window({"group": "five-hour", "remaining_fraction": 0.5, "reset_in": 600})
        await stack.gateway.quota.poll("a@example.com")
        view = await body_json(await stack.get("/admin/accounts"))
        windows = {w["group"]: w for w in view["accounts"][0]["quota_windows"]}
        assert windows["weekly"]["remaining_fraction"] == 0.25 and windows["weekly"]["reset_time"]
        assert windows["five-hour"]["remaining_fraction"] == 0.5 and windows["five-hour"]["window_seconds"] == 18000
        [record] = stack.stored()
        listed = cli.render_list([Account.from_json(record, "store")], stack.gateway.pool.clock())
        assert "window Weekly limit: 25.0% left" in listed


@pytest_twisted.ensureDeferred
async def test_a_refusal_inside_a_200_stream_is_recognised_too(tmp_path: Path) -> None:
    upstream = [EmulatorAccount("a@example.com", "1//a", "project-a")]
    async with start_stack(tmp_path, upstream) as stack:
        version = stack.gateway.version
        assert await version.settled() == "2.9.4"
        stack.emulator.state.settings.update({"min_client_version": "3.0.0", "manifest_version": "3.0.1", "version_reject_in_stream": True})
        response = await stack.post(f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", HELLO)
        text = (await treq.content(response)).decode()
        assert response.code == 503 and "refused this gateway's client version (2.9.4)" in text
        assert await version.settled() == "3.0.1"
        response = await stack.post("/v1/chat/completions", {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        text = (await treq.content(response)).decode()
        assert response.code == 200 and "[DONE]" in text and "no longer supported" not in text
        assert not any(a["disabled"] or a.get("cooldown_until") for a in stack.stored())


@pytest_twisted.ensureDeferred
async def test_the_command_in_the_reason_brings_a_retired_account_back(tmp_path: Path) -> None:
    import shlex

    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    from gateway.emulator.testing import start_emulator
    from tests.integration.test_cli_accounts import BROWSER, env_for, run_cli, write_config

    emulator = start_emulator(reactor, [EmulatorAccount("me@example.com", "1//me", "project-me", client="gemini-cli")])
    try:
        config = write_config(tmp_path, emulator)
        (tmp_path / "accounts.json").write_text(json.dumps({"accounts": [
            {"email": "me@example.com", "refresh_token": "1//me", "oauth_client": "gemini-cli"}]}))
        result = await deferToThread(run_cli, ["accounts", "refresh", "--config", str(config)], env_for(tmp_path))
        assert result.returncode == 1 and "UNSUPPORTED_CLIENT" in result.stdout, result.stdout + result.stderr
        [record] = json.loads((tmp_path / "accounts.json").read_text())["accounts"]
        command = record["disabled_reason"].split("`")[1]
        assert command.endswith("accounts add --client antigravity --login-hint me@example.com"), command
        browser = tmp_path / "browser"
        browser.write_text(BROWSER)
        browser.chmod(0o755)
        words = shlex.split(command)
        argv = ["accounts", *words[words.index("add"):], "--config", str(config)]
        result = await deferToThread(run_cli, argv, env_for(tmp_path, BROWSER=str(browser)))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "me@example.com: ok" in result.stdout and "OAuth client antigravity" in result.stdout
        [record] = json.loads((tmp_path / "accounts.json").read_text())["accounts"]
        assert record["oauth_client"] == "antigravity" and not record["disabled"]
        [authorize, *_] = emulator.state.requests("authorize")
        assert authorize["query"]["client_id"] == [ANTIGRAVITY_ID]
        assert "auth/cclog" in authorize["query"]["scope"][0]
    finally:
        await emulator.stop()


@pytest_twisted.ensureDeferred
async def test_accounts_list_shows_client_credits_windows_and_version(tmp_path: Path) -> None:
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    from gateway.emulator.testing import start_emulator
    from tests.integration.test_cli_accounts import env_for, run_cli, write_config

    emulator = start_emulator(reactor, [EmulatorAccount("me@example.com", "1//me", "project-me", "standard-tier", credits=120)])
    try:
        config = write_config(tmp_path, emulator)
        (tmp_path / "accounts.json").write_text(json.dumps({"accounts": [{"email": "me@example.com", "refresh_token": "1//me"}]}))
        emulator.state.set_quota_window({"group": "weekly", "remaining_fraction": 0.75, "reset_in": 7200})
        result = await deferToThread(run_cli, ["accounts", "refresh", "--config", str(config)], env_for(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr
        result = await deferToThread(run_cli, ["accounts", "list", "--config", str(config)], env_for(tmp_path))
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "AI credits: GOOGLE_ONE_AI 120" in out and "window Weekly limit: 75.0% left" in out
        assert "client version: 2.9.4 (User-Agent 'antigravity/hub/2.9.4 darwin/arm64'; floor 2.9.1; manifest says 2.9.4)" in out
        assert emulator.state.requests("generateContent") == []
    finally:
        await emulator.stop()


@pytest_twisted.ensureDeferred
async def test_refused_credits_cool_the_model_instead_of_failing_the_client(tmp_path: Path) -> None:
    upstream = [EmulatorAccount("rich@example.com", "1//rich", "project-rich", "standard-tier", credits=500)]
    store = [{"email": "rich@example.com", "refresh_token": "1//rich", "project_id": "project-rich",
              "credits": [{"type": "GOOGLE_ONE_AI", "amount": 500, "minimum": 50}]}]
    async with start_stack(tmp_path, upstream, store_accounts=store, upstream={"use_credits": "when_quota_exhausted"}) as stack:
        await stack.gateway.forwarder.catalogue.snapshot()  # the last poll (models, quota, credits) before the call
        stack.emulator.state.accounts["rich@example.com"].credits = 0  # spent elsewhere since the last poll
        stack.emulator.state.set_quota({"model": MODEL, "remaining_fraction": 0, "reset_in": 3600})
        response = await stack.post(GENERATE, HELLO)
        error = (await body_json(response))["error"]
        assert response.code == 429 and "AI credits could not be used" in error["message"]
        assert [c["status"] for c in stack.emulator.state.requests("generateContent")] == [429, 400]
        [rich] = stack.stored()
        assert MODEL in rich["model_cooldowns"] and not rich["disabled"]
        await stack.gateway.quota.poll("rich@example.com")  # the poll the cooldown started: let it finish
        [rich] = stack.stored()
        assert "credits" not in rich or rich["credits"][0]["amount"] == 0  # the poll re-read loadCodeAssist
