"""The accounts command line on a temporary store, offline: main(argv) in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import cli
from gateway.pool import health
from gateway.pool.account import Account, ModelQuota
from gateway.pool.json_store import JSONAccountStore
from tests.unit.test_importers import gemini_creds, manager_dir


@pytest.fixture
def store(tmp_path: Path) -> JSONAccountStore:
    s = JSONAccountStore(str(tmp_path / "accounts.json"))
    now = 1e10  # far future: times below are "later"
    cooled = health.cool_account(Account("cool@x.com", "1//c", project_id="p-c", tier="free-tier"), now + 600, "rate limited for 10m", 0)
    quota = health.with_quota(
        Account("quota@x.com", "1//q", access_token="ya29.secret", expiry=now, project_id="p-q", tier="standard-tier/g1-pro-tier"),
        {"gemini-2.5-pro": ModelQuota(0.25, now + 3600), "gemini-2.5-flash": ModelQuota(0.0, now + 7200)},
        0,
    )
    quota = health.cool_model(quota, "gemini-2.5-flash", now + 7200, "quota exhausted (QUOTA_EXHAUSTED)", 0)
    dead = health.disable(Account("dead@x.com", "1//d"), "VALIDATION_REQUIRED: verify", "https://accounts.google.com/signin/continue?x=1")
    s.save([cooled, quota, dead])
    return s


def run(capsys: pytest.CaptureFixture[str], store: JSONAccountStore, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["accounts", *argv, "--accounts", store.path])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_state_project_tier_and_quota_per_model(capsys: pytest.CaptureFixture[str], store: JSONAccountStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.time, "time", lambda: 1e10)
    code, out, _ = run(capsys, store, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["EMAIL", "STATE", "PROJECT", "TIER", "CLIENT"]
    [cool] = [line for line in lines if line.startswith("cool@x.com")]
    assert "cooling until" in cool and "(in 10m)" in cool and "p-c" in cool and "free-tier" in cool
    assert any(line.startswith("quota@x.com") and " active " in line and "standard-tier/g1-pro-tier" in line for line in lines)
    assert any("gemini-2.5-pro" in line and "25.0% left" in line and "resets" in line for line in lines)
    assert any("gemini-2.5-flash" in line and "0.0% left" in line and "cooling until" in line for line in lines)
    assert any(line.startswith("dead@x.com") and "disabled: VALIDATION_REQUIRED" in line for line in lines)
    assert any("verify at: https://accounts.google.com/signin/continue?x=1" in line for line in lines)
    assert "not polled yet" in out
    assert "ya29" not in out and "1//" not in out


def test_list_and_show_json_carry_no_secrets(capsys: pytest.CaptureFixture[str], store: JSONAccountStore) -> None:
    code, out, _ = run(capsys, store, "list", "--json")
    assert code == 0
    views = json.loads(out)
    assert [v["email"] for v in views] == ["cool@x.com", "quota@x.com", "dead@x.com"]
    assert "ya29" not in out and "1//" not in out and "refresh_token" not in out
    code, out, _ = run(capsys, store, "show", "quota@x.com", "--json")
    assert json.loads(out)["quota"]["gemini-2.5-pro"]["remaining_fraction"] == 0.25


def test_show_in_words(capsys: pytest.CaptureFixture[str], store: JSONAccountStore) -> None:
    code, out, _ = run(capsys, store, "show", "DEAD@x.com")
    assert code == 0 and "disabled: VALIDATION_REQUIRED" in out and "verify at:" in out


def test_disable_enable_remove(capsys: pytest.CaptureFixture[str], store: JSONAccountStore) -> None:
    assert run(capsys, store, "disable", "cool@x.com", "--reason", "leaving the team")[0] == 0
    stored = {a.email: a for a in store.load()}
    assert stored["cool@x.com"].disabled and stored["cool@x.com"].disabled_reason == "leaving the team"
    code, out, _ = run(capsys, store, "enable", "dead@x.com")
    assert code == 0 and "enabled dead@x.com" in out
    revived = {a.email: a for a in store.load()}["dead@x.com"]
    assert not revived.disabled and revived.validation_url is None
    assert run(capsys, store, "enable", "quota@x.com")[0] == 0
    assert not {a.email: a for a in store.load()}["quota@x.com"].model_cooldowns
    assert run(capsys, store, "remove", "cool@x.com")[0] == 0
    assert [a.email for a in store.load()] == ["quota@x.com", "dead@x.com"]


def test_unknown_accounts_and_broken_stores_fail_with_one_line(capsys: pytest.CaptureFixture[str], store: JSONAccountStore) -> None:
    code, _, err = run(capsys, store, "disable", "nobody@x.com")
    assert code == 1 and "no account nobody@x.com" in err and "cool@x.com" in err
    Path(store.path).write_text("{broken")
    code, _, err = run(capsys, store, "list")
    assert code == 1 and "not valid JSON" in err and err.count("\n") == 1
    assert Path(store.path).read_text() == "{broken"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert cli.main(["accounts"]) == 2
    with pytest.raises(SystemExit) as exited:
        cli.main(["accounts", "frobnicate"])
    assert exited.value.code == 2


def test_config_file_names_the_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[accounts]\npath = "state/accounts.json"\n')
    JSONAccountStore(str(tmp_path / "state" / "accounts.json")).put(Account("a@x.com", "1//a"))
    assert cli.main(["accounts", "list", "--config", str(tmp_path / "config.toml")]) == 0
    assert "a@x.com" in capsys.readouterr().out
    (tmp_path / "bad.toml").write_text("[accounts]\nselection = 3\n")
    assert cli.main(["accounts", "list", "--config", str(tmp_path / "bad.toml")]) == 1
    assert "accounts.selection" in capsys.readouterr().err


def test_import_an_antigravity_manager_directory_twice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = JSONAccountStore(str(tmp_path / "store" / "accounts.json"))
    store.put(health.cool_model(Account("one@gmail.com", "1//old"), "m", 1e12, "q", 0))
    code, out, _ = run(capsys, store, "import", str(manager_dir(tmp_path)))
    assert code == 0
    assert "updated one@gmail.com" in out and "added two@gmail.com (disabled:" in out and "[OAuth client antigravity]" in out
    stored = {a.email: a for a in store.load()}
    assert stored["one@gmail.com"].refresh_token == "1//refresh-1" and stored["one@gmail.com"].model_cooldowns  # learned state kept
    assert stored["two@gmail.com"].disabled and stored["two@gmail.com"].project_id == "bright-project-2"
    assert run(capsys, store, "import", str(manager_dir(tmp_path / "again")))[0] == 0
    assert len(store.load()) == 2


def test_import_gemini_cli_creds(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = JSONAccountStore(str(tmp_path / "store" / "accounts.json"))
    code, out, _ = run(capsys, store, "import", str(gemini_creds(tmp_path)))
    assert code == 0 and "added cli@gmail.com" in out
    [account] = store.load()
    assert account.refresh_token == "1//gemini-refresh"


def test_import_of_something_else_says_what_it_expected(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}")
    store = JSONAccountStore(str(tmp_path / "accounts.json"))
    code, _, err = run(capsys, store, "import", str(tmp_path / "x.json"))
    assert code == 1 and "Antigravity-Manager" in err and "oauth_creds.json" in err


def test_list_shows_the_validation_link_of_an_enabled_account_resting_on_validation_required() -> None:
    from gateway.pool import health
    from gateway.pool.account import Account

    url = "https://accounts.google.com/signin/continue?v=1"
    resting = health.cool_account(Account("v@x.com", "rt"), 1e10 + 600, "needs verification by its owner (VALIDATION_REQUIRED)", 1e10, url)
    out = cli.render_list([resting], 1e10)
    assert "cooling until" in out and "VALIDATION_REQUIRED" not in out.splitlines()[0]
    assert f"verify at: {url}" in out and "disabled" not in out
