"""Take docs/dashboard.png: a gateway on the emulator with two weeks of sample usage, shot by headless Chromium.

Run from the checkout: ``.venv/bin/python scripts/dashboard_screenshot.py [OUT.png]``.
The usage rows are made up (seeded into the store before start); the pool,
quota and keys are the emulator's and the gateway's own.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.team import operations  # noqa: E402
from gateway.team.sqlite_store import SQLiteStore  # noqa: E402
from gateway.team.usage import UsageRow  # noqa: E402
from tests.integration import processes  # noqa: E402
from tests.integration.cdp import Browser, chromium_binary  # noqa: E402

ADMIN = "screenshot-admin-key"
PEOPLE = {"alice": 1.0, "bob": 0.6, "carol": 0.35, "dave": 0.2, "erin": 0.1}
MODELS = {"gemini-3-flash": 1.0, "claude-sonnet-4-6": 0.7, "claude-opus-4-6-thinking": 0.25}


def seed(directory: Path) -> None:
    store = SQLiteStore(str(directory / "team.sqlite3"))
    now = time.time()
    operations.create(store, "alice", now, rpm=60, tokens_per_day=5_000_000, note="backend")
    operations.create(store, "bob", now, rpm=30, models=["gemini-*", "claude-sonnet-4-6"], note="frontend")
    operations.create(store, "carol", now, ttl_days=30, note="contractor")
    operations.create(store, "dave", now, tokens_per_day=500_000)
    operations.create(store, "erin", now, models=["gemini-*"])
    rng = random.Random(7)
    rows = []
    for day in range(14, 0, -1):
        for person, weight in PEOPLE.items():
            for _ in range(int(rng.uniform(20, 60) * weight)):
                model = rng.choices(list(MODELS), list(MODELS.values()))[0]
                prompt = rng.randint(800, 9000)
                thought = rng.randint(0, 1500) if "thinking" in model or model.startswith("gemini") else 0
                rows.append(UsageRow(now - day * 86400 + rng.uniform(0, 80000), person, f"user{rng.randint(0, 2)}@example.com",
                                     model, model, rng.choice(["gemini", "openai", "anthropic"]), "generateContent",
                                     429 if rng.random() < 0.02 else 200, prompt, rng.randint(100, 2500), thought, 0,
                                     rng.uniform(400, 6000), 1))
    store.insert(rows)


def main(out: str) -> None:
    directory = Path(tempfile.mkdtemp(prefix="agw-shot-"))
    seed(directory)
    toml = f'[auth]\nstrategy = "keys"\n[team]\nadmin_key = "{ADMIN}"\n'
    stack = processes.start(directory, store_accounts=3, extra_toml=toml)
    browser = None
    try:
        for i in range(3):
            processes.call("POST", f"{stack.gateway_url}/admin/accounts/user{i}@example.com/refresh", {},
                           headers={"Authorization": "Bearer " + ADMIN})
        browser = Browser(chromium_binary() or "chromium", width=1400, height=1000)
        browser.goto(stack.gateway_url + "/admin/?poll=1000")
        browser.wait_for("document.querySelector('#login-key') !== null")
        browser.type_into("#login-key", ADMIN)
        browser.click("#login-button")
        browser.wait_for("document.querySelectorAll('#chart-keys svg rect.seg').length > 10")
        browser.wait_for("document.querySelectorAll('#accounts-table .bar').length > 0")
        browser.js("document.querySelector('#accounts-table details').open = true")
        time.sleep(1.5)
        browser.screenshot(out)
        print(json.dumps({"screenshot": out}))
    finally:
        if browser is not None:
            browser.close()
        stack.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[1] / "docs" / "dashboard.png"))
