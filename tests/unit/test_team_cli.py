"""``antigravity-gateway keys …`` and ``usage`` on a store named by the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import cli
from gateway.team.sqlite_store import SQLiteStore
from gateway.team.usage import UsageRow


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f'[accounts]\npath = "{tmp_path / "accounts.json"}"\n[team]\nstore = "team.db"\n')
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_lifecycle(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, _ = run(capsys, config, "keys", "add", "alice", "--rpm", "5", "--tokens-per-day", "1000",
                       "--models", "gemini-*", "claude-sonnet-4-6", "--ttl", "30", "--note", "team a")
    assert code == 0
    secret = next(w for w in out.split() if w.startswith("agw_"))
    store = SQLiteStore(str(config.parent / "team.db"))  # relative to the config file
    record = store.keys()[0]
    assert record.hash != secret and secret not in (config.parent / "team.db").read_bytes().decode("latin-1")
    assert record.models == ("gemini-*", "claude-sonnet-4-6") and record.rpm == 5 and record.expires is not None

    code, out, _ = run(capsys, config, "keys", "list")
    assert code == 0 and "alice" in out and "active" in out and secret not in out
    code, _, err = run(capsys, config, "keys", "add", "alice")
    assert code == 1 and "exists already" in err

    code, out, _ = run(capsys, config, "keys", "edit", "alice", "--rpm", "0", "--expires", "never", "--models", "*")
    assert code == 0
    shown = json.loads(run(capsys, config, "keys", "show", "alice", "--json")[1])
    assert shown["rpm"] == 0 and shown["expires"] is None and shown["models"] == ["*"] and shown["note"] == "team a"

    assert run(capsys, config, "keys", "revoke", "alice")[0] == 0
    assert json.loads(run(capsys, config, "keys", "list", "--json")[1])[0]["state"] == "revoked"
    code, _, err = run(capsys, config, "keys", "revoke", "nobody")
    assert code == 1 and "no key named 'nobody'" in err
    code, _, err = run(capsys, config, "keys", "add", "bad name!")
    assert code == 1 and "invalid key name" in err


def test_usage_table_and_json(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    import time

    store = SQLiteStore(str(config.parent / "team.db"))
    now = time.time()
    store.insert([UsageRow(now - 60, "alice", "a@example.com", "gpt-4o", "gemini-3-flash", "openai", "chat.completions", 200, 10, 20, 5, 0, 100.0, 1),
                  UsageRow(now - 30, "bob", "a@example.com", "gemini-3-flash", "gemini-3-flash", "gemini", "generateContent", 429, 0, 0, 0, 0, 1.0, 0)])
    code, out, _ = run(capsys, config, "usage", "--by", "key", "--since", "1h")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["key", "requests", "errors"] and "alice" in out and "bob" in out
    rows = json.loads(run(capsys, config, "usage", "--by", "model", "--json")[1])["rows"]
    assert rows == [{"group": "gemini-3-flash", "requests": 2, "errors": 1, "prompt_tokens": 10, "output_tokens": 20,
                     "thought_tokens": 5, "cached_tokens": 0, "total_tokens": 35, "avg_latency_ms": 50.5}]
    code, _, err = run(capsys, config, "usage", "--since", "yesterday-ish")
    assert code == 1 and "--since" in err
