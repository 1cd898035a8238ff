"""The dashboard in a real headless Chromium (Debian's package): sign in, see the pool and a chart,
create a key, use it through the API, see its usage appear, revoke it.

The gateway and emulator run as processes (``twist``), the browser over the
DevTools pipe (``tests/integration/cdp.py``); the keys CLI is exercised on
the same store. Skips only when no chromium is installed (CI installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration import processes
from tests.integration.cdp import Browser, chromium_binary

ADMIN_KEY = "admin-test-key-0123456789"
TEAM_TOML = (
    "[auth]\nstrategy = \"keys\"\n"
    f"[team]\nadmin_key = \"{ADMIN_KEY}\"\nkeys_poll_seconds = 0.2\nflush_seconds = 0.2\n"
)

pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="no chromium: apt-get install chromium (Debian) to run the browser test")


def cli(config: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--config", str(config)], capture_output=True, text=True,
                          env=processes.child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def chat(url: str, key: str, model: str = "gemini-3-flash") -> tuple[int, dict]:
    status, _, body = processes.call("POST", url + "/v1/chat/completions",
                                     {"model": model, "messages": [{"role": "user", "content": "hello from the browser test"}]},
                                     headers={"Authorization": "Bearer " + key})
    return status, json.loads(body)


def test_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    stack = processes.start(tmp_path, store_accounts=2, extra_toml=TEAM_TOML)
    browser = None
    try:
        # a key made with the CLI, used once, so there is usage to chart
        added = cli(stack.config, "keys", "add", "seed", "--rpm", "100", "--note", "from the CLI")
        seed_key = next(word for word in added.split() if word.startswith("agw_"))
        assert seed_key not in cli(stack.config, "keys", "list")
        assert chat(stack.gateway_url, seed_key)[0] == 200

        browser = Browser(chromium_binary())  # type: ignore[arg-type]
        browser.goto(stack.gateway_url + "/admin/?poll=500")
        browser.wait_for("document.querySelector('#login-key') !== null", what="the sign-in form")
        browser.type_into("#login-key", ADMIN_KEY)
        browser.click("#login-button")

        # the pool
        browser.wait_for("document.querySelectorAll('#accounts-table tr[data-email]').length === 2", what="both accounts")
        shown = browser.js("[...document.querySelectorAll('#accounts-table tr[data-email]')].map(r => r.dataset.email)")
        assert sorted(shown) == ["user0@example.com", "user1@example.com"]
        # a usage chart with a bar for the seed request
        browser.wait_for("document.querySelector('#chart-requests svg rect.seg') !== null", what="a bar in the requests chart")
        assert browser.js("document.querySelector('#usage-keys tr[data-group=\"seed\"]') !== null")

        # create a key; it is shown once
        browser.type_into("#key-name", "erin")
        browser.type_into("#key-rpm", "30")
        browser.click("#key-create")
        secret = browser.wait_for("(document.querySelector('#new-key').textContent || '').startsWith('agw_') && document.querySelector('#new-key').textContent",
                                  what="the new key")
        browser.wait_for("document.querySelector('#keys-table tr[data-key=\"erin\"]') !== null", what="erin in the keys table")

        # use it through the API, and see its usage appear
        status, body = chat(stack.gateway_url, secret)
        assert status == 200, body
        browser.wait_for("document.querySelector('#usage-keys tr[data-group=\"erin\"]') !== null", what="erin's usage")
        requests = browser.js("document.querySelector('#usage-keys tr[data-group=\"erin\"] td:nth-child(2)').textContent")
        assert requests == "1"
        browser.wait_for("document.querySelector('#chart-keys svg rect.seg[data-group=\"erin\"]') !== null", what="erin in the per-key chart")
        target = os.environ.get("AGW_DASHBOARD_SCREENSHOT")
        browser.screenshot(target or str(tmp_path / "dashboard.png"))
        assert (Path(target) if target else tmp_path / "dashboard.png").stat().st_size > 10_000

        # revoke it (two clicks: no dialog)
        browser.click("#keys-table tr[data-key=\"erin\"] button[data-action=\"revoke\"]")
        browser.click("#keys-table tr[data-key=\"erin\"] button[data-action=\"revoke\"]")
        browser.wait_for("(document.querySelector('#keys-table tr[data-key=\"erin\"] .state') || {}).textContent === 'revoked'",
                         what="erin revoked")
        status, body = chat(stack.gateway_url, secret)
        assert status == 401, body
        assert chat(stack.gateway_url, seed_key)[0] == 200  # the others keep working

        # the CLI sees the same usage
        table = cli(stack.config, "usage", "--by", "key")
        assert "erin" in table and "seed" in table
        usage = json.loads(cli(stack.config, "usage", "--by", "key", "--json"))
        assert {r["group"]: r["requests"] for r in usage["rows"]}["erin"] == 1
    finally:
        if browser is not None:
            browser.close()
        stack.close()
