"""The JSON account store: hand-written files load, writes are atomic, 0600, and lossless."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import attrs
import pytest

from gateway.pool.account import Account
from gateway.pool.json_store import JSONAccountStore, StoreError


def test_a_hand_written_store_with_email_and_refresh_token_loads(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": [{"email": "a@x.com", "refresh_token": "1//rt"}]}))
    [account] = JSONAccountStore(str(path)).load()
    assert account.email == "a@x.com"
    assert account.refresh_token == "1//rt"
    assert account.access_token is None and account.project_id is None and not account.disabled


def test_missing_store_is_empty_and_first_write_creates_it_0600(tmp_path: Path) -> None:
    store = JSONAccountStore(str(tmp_path / "sub" / "accounts.json"))
    assert store.load() == []
    store.put(Account("a@x.com", "rt"))
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    assert mode == 0o600
    assert [a.email for a in store.load()] == ["a@x.com"]


def test_put_replaces_by_email_and_keeps_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": [
        {"email": "a@x.com", "refresh_token": "rt", "label": "work"},
        {"email": "b@x.com", "refresh_token": "rt2"},
    ]}))
    store = JSONAccountStore(str(path))
    a = store.load()[0]
    store.put(attrs.evolve(a, project_id="p-1", access_token="ya29.x", expiry=123.0))
    document = json.loads(path.read_text())
    assert document["accounts"][0]["project_id"] == "p-1"
    assert document["accounts"][0]["label"] == "work"
    assert document["accounts"][1]["email"] == "b@x.com"


def test_put_does_not_lose_another_writers_update(tmp_path: Path) -> None:
    path = str(tmp_path / "accounts.json")
    one, two = JSONAccountStore(path), JSONAccountStore(path)
    one.put(Account("a@x.com", "rt"))
    two.put(Account("b@x.com", "rt2"))
    one.put(Account("a@x.com", "rt-new"))
    emails = {a.email: a.refresh_token for a in two.load()}
    assert emails == {"a@x.com": "rt-new", "b@x.com": "rt2"}


def test_unparseable_store_is_an_error_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text("{not json")
    store = JSONAccountStore(str(path))
    with pytest.raises(StoreError, match="not valid JSON"):
        store.load()
    with pytest.raises(StoreError):
        store.put(Account("a@x.com", "rt"))
    assert path.read_text() == "{not json"


@pytest.mark.parametrize(
    "document, problem",
    [
        ([], "must be an object"),
        ({"accounts": [{"refresh_token": "x"}]}, "'email'"),
        ({"accounts": [{"email": "a@x.com"}]}, "'refresh_token'"),
        ({"accounts": [{"email": "a@x.com", "refresh_token": "r", "expiry": "soon"}]}, "'expiry'"),
        ({"accounts": [{"email": "a@x.com", "refresh_token": "r"}, {"email": "a@x.com", "refresh_token": "s"}]}, "duplicate"),
    ],
)
def test_bad_records_say_which_and_why(tmp_path: Path, document: object, problem: str) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(document))
    with pytest.raises(StoreError, match=problem):
        JSONAccountStore(str(path)).load()


def test_remove(tmp_path: Path) -> None:
    store = JSONAccountStore(str(tmp_path / "accounts.json"))
    store.save([Account("a@x.com", "rt"), Account("b@x.com", "rt")])
    assert store.remove("a@x.com") is True
    assert store.remove("a@x.com") is False
    assert [a.email for a in store.load()] == ["b@x.com"]


def test_repr_never_shows_tokens() -> None:
    account = Account("a@x.com", "1//secret-refresh", access_token="ya29.secret-access")
    assert "secret" not in repr(account) and "secret" not in str(account)


def test_update_applies_a_change_to_the_record_as_stored_now(tmp_path: Path) -> None:
    path = str(tmp_path / "accounts.json")
    gateway_view, cli = JSONAccountStore(path), JSONAccountStore(path)
    gateway_view.save([Account("a@x.com", "rt"), Account("b@x.com", "rt")])
    stale = gateway_view.load()
    cli.update("a@x.com", lambda a: attrs.evolve(a, disabled=True, disabled_reason="operator"))
    # the gateway learns a new token for a@x.com from its stale copy: the disable survives
    after = gateway_view.update("a@x.com", lambda a: attrs.evolve(a, access_token="ya29.new"))
    [a, b] = after
    assert a.disabled and a.disabled_reason == "operator" and a.access_token == "ya29.new"
    assert stale[0].disabled is False and b.email == "b@x.com"
    assert gateway_view.update("nobody@x.com", lambda a: a) == after


def test_changed_sees_other_writers_not_our_own(tmp_path: Path) -> None:
    path = str(tmp_path / "accounts.json")
    mine, theirs = JSONAccountStore(path), JSONAccountStore(path)
    mine.load()
    assert not mine.changed()
    mine.put(Account("a@x.com", "rt"))
    assert not mine.changed()
    theirs.put(Account("b@x.com", "rt"))
    assert mine.changed()
    mine.load()
    assert not mine.changed()


def test_a_killed_writers_temporary_file_is_cleaned_up_by_the_next_write(tmp_path: Path) -> None:
    store = JSONAccountStore(str(tmp_path / "accounts.json"))
    leftover = tmp_path / ".accounts.json-abc123.tmp"
    leftover.write_text("half")
    other_store = tmp_path / ".other.json-abc123.tmp"
    other_store.write_text("not ours")
    store.put(Account("a@x.com", "rt"))
    assert not leftover.exists() and other_store.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == [other_store.name]
