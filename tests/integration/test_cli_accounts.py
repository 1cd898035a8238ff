"""The accounts command line end to end against the emulator's OAuth and Cloud Code:
``add`` in both modes (loopback redirect through a scripted browser, and a pasted
address), ``refresh``, an import that must ask Google for the email, and a running
gateway picking up what the CLI changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from gateway import cli
from gateway.emulator.testing import RunningEmulator, start_emulator
from gateway.pool.json_store import JSONAccountStore
from tests.integration.harness import CLIENT_ID, CLIENT_SECRET, accounts, start_stack

ROOT = Path(__file__).resolve().parents[2]
GENERATE = "/v1beta/models/gemini-3-flash:generateContent"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]}

# Plays the user's browser: opens the consent URL and follows the redirect to the CLI's loopback server.
BROWSER = f"""#!{sys.executable}
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=20) as answer:
    sys.exit(0 if b"Signed in" in answer.read() else 1)
"""


def write_config(tmp_path: Path, emulator: RunningEmulator) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        "[upstream]\n"
        f'hosts = ["{emulator.url}"]\n'
        f'token_url = "{emulator.token_url}"\n'
        f'auth_url = "{emulator.auth_url}"\n'
        f'userinfo_url = "{emulator.userinfo_url}"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        f'version_url = "{emulator.url}/manifest/latest-arm64-mac.yml"\n'
        "[accounts]\n"
        'path = "accounts.json"\n'
    )
    return path


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "ANTIGRAVITY_GATEWAY_CONFIG")}
    env.update(PYTHONPATH=str(ROOT), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"), **extra)
    return env


def run_cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def stored(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {a["email"]: a for a in json.loads((tmp_path / "accounts.json").read_text())["accounts"]}


@pytest_twisted.ensureDeferred
async def test_add_with_a_loopback_redirect_and_a_browser(tmp_path: Path) -> None:
    emulator = start_emulator(reactor, accounts(2))
    try:
        config = write_config(tmp_path, emulator)
        browser = tmp_path / "browser"
        browser.write_text(BROWSER)
        browser.chmod(0o755)
        result = await deferToThread(run_cli, ["accounts", "add", "--config", str(config), "--login-hint", "user1@example.com"],
                                     env_for(tmp_path, BROWSER=str(browser)))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "added user1@example.com" in result.stdout
        assert "user1@example.com: ok, project project-1, tier standard-tier" in result.stdout
        record = stored(tmp_path)["user1@example.com"]
        assert record["refresh_token"] == "1//refresh-1" and record["project_id"] == "project-1"
        assert record["tier"] == "standard-tier/g1-pro-tier"  # the current tier, then the paid tier
        assert record["quota"]["gemini-3.1-pro-low"]["remaining"] == 1.0
        assert os.stat(tmp_path / "accounts.json").st_mode & 0o777 == 0o600
        [authorize] = emulator.state.requests("authorize")
        query = {k: v[0] for k, v in authorize["query"].items()}
        assert query["access_type"] == "offline" and query["prompt"] == "consent"
        assert query["code_challenge_method"] == "S256" and query["redirect_uri"].startswith("http://127.0.0.1:")
        assert "ya29" not in result.stdout + result.stderr and "1//" not in result.stdout + result.stderr
    finally:
        await emulator.stop()


def paste_session(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Runs ``add --no-browser`` as an operator on a headless box would: copy the URL, sign in elsewhere, paste."""
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdin is not None
    seen = []
    url = None
    while url is None:
        line = process.stdout.readline()
        assert line, "the CLI ended before printing a URL: " + "".join(seen)
        seen.append(line)
        if line.strip().startswith("http"):
            url = line.strip()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a: Any, **k: Any) -> None:
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(url, timeout=20)
        raise AssertionError("the consent screen did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 302
        location = e.headers["Location"]
    out, err = process.communicate(location + "\n", timeout=60)
    return process.returncode, "".join(seen) + out, err


@pytest_twisted.ensureDeferred
async def test_add_headless_by_pasting_the_redirected_address(tmp_path: Path) -> None:
    emulator = start_emulator(reactor, accounts(2, projects=False), onboard_polls=0)
    try:
        config = write_config(tmp_path, emulator)
        code, out, err = await deferToThread(paste_session, ["accounts", "add", "--no-browser", "--config", str(config)], env_for(tmp_path))
        assert code == 0, out + err
        assert "added user0@example.com" in out
        record = stored(tmp_path)["user0@example.com"]
        assert record["project_id"].startswith("emu-onboarded-")  # onboarded by the check after adding
        assert len(emulator.state.requests("onboardUser")) == 1
    finally:
        await emulator.stop()


@pytest_twisted.ensureDeferred
async def test_refresh_reports_each_account_and_disables_a_dead_grant(tmp_path: Path) -> None:
    emulator = start_emulator(reactor, accounts(2))
    try:
        config = write_config(tmp_path, emulator)
        (tmp_path / "accounts.json").write_text(json.dumps({"accounts": [
            {"email": "user0@example.com", "refresh_token": "1//refresh-0"},
            {"email": "user1@example.com", "refresh_token": "1//refresh-1"},
        ]}))
        emulator.state.revoke("user1@example.com", refresh=True)
        emulator.state.set_quota({"email": "user0@example.com", "model": "gemini-3.1-pro-low", "remaining_fraction": 0.0, "reset_in": 600})
        result = await deferToThread(run_cli, ["accounts", "refresh", "--config", str(config)], env_for(tmp_path))
        assert result.returncode == 1, result.stdout + result.stderr
        assert "user0@example.com: ok, project project-0" in result.stdout and "exhausted: gemini-3.1-pro-low" in result.stdout
        assert "user1@example.com: disabled: refresh token rejected (invalid_grant" in result.stdout
        records = stored(tmp_path)
        assert records["user1@example.com"]["disabled"] is True
        listed = await deferToThread(run_cli, ["accounts", "list", "--config", str(config)], env_for(tmp_path))
        assert "0.0% left" in listed.stdout and "disabled: refresh token rejected" in listed.stdout
    finally:
        await emulator.stop()


@pytest_twisted.ensureDeferred
async def test_import_asks_google_for_the_email_when_the_credentials_do_not_say(tmp_path: Path) -> None:
    emulator = start_emulator(reactor, accounts(1))
    try:
        config = write_config(tmp_path, emulator)
        creds = tmp_path / "oauth_creds.json"
        creds.write_text(json.dumps({"refresh_token": "1//refresh-0", "token_type": "Bearer", "expiry_date": 1}))
        result = await deferToThread(run_cli, ["accounts", "import", str(creds), "--config", str(config)], env_for(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "added user0@example.com" in result.stdout
        assert stored(tmp_path)["user0@example.com"]["refresh_token"] == "1//refresh-0"
    finally:
        await emulator.stop()


@pytest_twisted.ensureDeferred
async def test_a_running_gateway_follows_the_cli_without_a_restart(tmp_path: Path, capsys: Any) -> None:
    async with start_stack(tmp_path, accounts(2)) as stack:
        assert cli.main(["accounts", "disable", "user0@example.com", "--reason", "maintenance", "--accounts", str(stack.store)]) == 0
        for i in range(3):
            response = await stack.post(GENERATE, {"contents": [{"role": "user", "parts": [{"text": f"conversation {i}"}]}]})
            assert response.code == 200
            await treq.content(response)
        assert {r["email"] for r in stack.emulator.state.requests("generateContent")} == {"user1@example.com"}
        assert cli.main(["accounts", "enable", "user0@example.com", "--accounts", str(stack.store)]) == 0
        assert cli.main(["accounts", "disable", "user1@example.com", "--accounts", str(stack.store)]) == 0
        response = await stack.post(GENERATE, HELLO)
        await treq.content(response)
        assert stack.emulator.state.requests("generateContent")[-1]["email"] == "user0@example.com"
        # the gateway's own writes (a refreshed token for user0) kept the CLI's disable of user1
        assert {a.email: a.disabled for a in JSONAccountStore(str(stack.store)).load()} == {"user0@example.com": False, "user1@example.com": True}
