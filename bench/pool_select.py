"""Case 5: the cost of choosing an account, in-process, through the pool's public API.

A pool of ``--accounts`` accounts in the real JSON backend, ``--cooling``
of them cooling down, every selection policy the plugin system knows; for
each, µs per ``AccountPool(backend, policy, clock).choose(model, exclude)``
with no exclusions (a first attempt) and with two (a third attempt).

Cooling uses whatever the pool offers when this runs: ``cool_model`` /
``cool_account`` (per-model and per-account cooldowns) when present, else
``disable`` — which hides an account from selection the same way — and the
JSON says which was used. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import inspect
import json
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL = "gemini-3-flash"


def build_pool(path: Path, n: int, policy_name: str) -> Any:
    from gateway import config
    from gateway.interfaces import IAccountBackendFactory, ISelectionPolicyFactory
    from gateway.plugin_loading import build
    from gateway.pool.pool import AccountPool

    far = time.time() + 86_400
    path.write_text(json.dumps({"accounts": [
        {"email": f"user{i:03d}@example.com", "refresh_token": f"1//r-{i}", "access_token": f"ya29.t-{i}",
         "expiry": far, "project_id": f"project-{i}"}
        for i in range(n)
    ]}))
    settings = config.override(config.load(None), "accounts", path=str(path), selection=policy_name)
    backend = build(IAccountBackendFactory, "json", "accounts.backend", settings)
    policy = build(ISelectionPolicyFactory, policy_name, "accounts.selection", settings)
    return AccountPool(backend, policy, time.time)


def cool(pool: Any, emails: list[str]) -> str:
    until = time.time() + 3600
    if hasattr(pool, "cool_model"):
        for e in emails:
            pool.cool_model(e, MODEL, until, "RATE_LIMIT_EXCEEDED")
        return "cool_model (per-model cooldown)"
    if hasattr(pool, "cool_account"):
        for e in emails:
            pool.cool_account(e, until, "rate_limited")
        return "cool_account"
    for e in emails:
        pool.disable(e, "bench: stands in for a cooldown")
    return "disable (this pool has no cooldown API)"


def time_choose(pool: Any, exclude: list[str], iterations: int) -> float:
    choose = pool.choose
    for _ in range(min(2000, iterations)):
        choose(MODEL, exclude)
    start = time.perf_counter_ns()
    for _ in range(iterations):
        choose(MODEL, exclude)
    return (time.perf_counter_ns() - start) / iterations / 1000.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--accounts", type=int, default=100)
    p.add_argument("--cooling", type=float, default=0.2)
    p.add_argument("--iterations", type=int, default=20000)
    a = p.parse_args()

    from gateway.interfaces import ISelectionPolicyFactory
    from gateway.plugin_loading import available

    policies = sorted(available(ISelectionPolicyFactory))
    results: dict[str, Any] = {}
    method = ""
    with tempfile.TemporaryDirectory() as tmp:
        for name in policies:
            pool = build_pool(Path(tmp) / f"{name}.json", a.accounts, name)
            emails = sorted(s.email for s in pool.states())
            uncooled = time_choose(pool, [], a.iterations)
            cooling = emails[:: max(1, round(1 / a.cooling))][: int(len(emails) * a.cooling)] if a.cooling else []
            method = cool(pool, cooling)
            first = time_choose(pool, [], a.iterations)
            picked = {pool.choose(MODEL, []).email for _ in range(len(emails))}
            third = time_choose(pool, emails[1:3], a.iterations)
            results[name] = {
                "us_per_choose": round(first, 2),
                "us_per_choose_2_excluded": round(third, 2),
                "us_per_choose_none_cooling": round(uncooled, 2),
                "distinct_accounts_chosen": len(picked),
                "cooling_chosen": len(picked & set(cooling)),
            }
    from gateway.pool.pool import AccountPool

    print(json.dumps({
        "accounts": a.accounts,
        "cooling": a.cooling,
        "cooling_method": method,
        "choose_signature": str(inspect.signature(AccountPool.choose)),
        "iterations": a.iterations,
        "policies": results,
    }))


if __name__ == "__main__":
    main()
