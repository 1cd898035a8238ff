"""The JSON store under kill -9: writers SIGKILLed mid-save leave an intact, 0600 store
that loses no acknowledged update, even with two processes writing one file."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from gateway.pool.account import Account
from gateway.pool.json_store import JSONAccountStore

ROOT = Path(__file__).resolve().parents[2]

# Updates one account's counter in a loop as fast as it can; prints each
# counter once ``update`` has returned (acknowledged: on disk).
WRITER = r"""
import sys, attrs
from gateway.pool.json_store import JSONAccountStore
store = JSONAccountStore(sys.argv[1])
me = sys.argv[2]
padding = "x" * 20000
i = 0
print("ready", flush=True)
while True:
    i += 1
    store.update(me, lambda a: attrs.evolve(a, expiry=float(i), extra={**a.extra, "counter": i, "padding": padding}))
    print(i, flush=True)
"""


def start_writer(path: Path, email: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path), email], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def kill(process: subprocess.Popen[str]) -> int:
    """SIGKILL, then the last counter the writer acknowledged (0 if none)."""
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate(timeout=10)
    counters = [int(line) for line in out.split("\n")[:-1] if line.strip().isdigit()]  # a cut last line is not an ack
    return counters[-1] if counters else 0


def seed(path: Path, emails: list[str]) -> None:
    JSONAccountStore(str(path)).save([Account(e, f"1//rt-{e}") for e in emails] + [Account(f"other{i}@x.com", "rt") for i in range(20)])


def check_intact(path: Path, expected: int) -> list[Account]:
    accounts = JSONAccountStore(str(path)).load()  # parses, or the test fails
    assert len(accounts) == expected
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    return accounts


def test_sigkill_mid_save_never_leaves_a_broken_store(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    seed(path, ["w@x.com"])
    rng = random.Random(1234)
    acknowledged = 0
    for _ in range(12):
        writer = start_writer(path, "w@x.com")
        time.sleep(rng.uniform(0.0, 0.08))
        acknowledged = kill(writer)
        accounts = check_intact(path, 21)
        [mine] = [a for a in accounts if a.email == "w@x.com"]
        assert mine.extra.get("counter", 0) >= acknowledged
        assert mine.refresh_token == "1//rt-w@x.com"
    assert acknowledged > 0, "the writer never got a save done: the test proved nothing"


def test_two_processes_killed_mid_save_lose_no_acknowledged_update(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    seed(path, ["a@x.com", "b@x.com"])
    rng = random.Random(99)
    for _ in range(5):
        a, b = start_writer(path, "a@x.com"), start_writer(path, "b@x.com")
        time.sleep(rng.uniform(0.05, 0.15))
        acked = {"a@x.com": kill(a), "b@x.com": kill(b)}
        stored = {x.email: x.extra.get("counter", 0) for x in check_intact(path, 22)}
        for email, counter in acked.items():
            assert stored[email] >= counter, (email, stored[email], counter)
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    JSONAccountStore(str(path)).put(Account("z@x.com", "rt"))  # the next write sweeps a killed writer's temp file
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], leftovers
    json.loads(path.read_text())
