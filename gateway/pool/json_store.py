"""The built-in account store: one JSON file, never half-written.

Writes go to a temporary file in the same directory (mode 0600), are fsynced
and renamed over the store, so a crash at any moment leaves the old or the new
file. An exclusive ``flock`` on a side lock file serialises writers, including
a second gateway process; each ``put`` re-reads under the lock so no writer's
update is lost. A store that cannot be parsed is an error, never overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from typing import Iterator

from zope.interface import implementer

from gateway.interfaces import IAccountBackend
from gateway.pool.account import Account, AccountFormatError


class StoreError(Exception):
    """The store cannot be read or written; the message says which file and why."""


@implementer(IAccountBackend)
class JSONAccountStore:
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))

    def describe(self) -> str:
        return f"JSON store {self.path}"

    # -- reading --

    def load(self) -> list[Account]:
        with self._locked(shared=True):
            return self._read()

    def mtime(self) -> float | None:
        """The store's modification time, for cheap change detection."""
        try:
            return os.stat(self.path).st_mtime_ns / 1e9
        except FileNotFoundError:
            return None

    def _read(self) -> list[Account]:
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StoreError(f"{self.path}: cannot read: {e.strerror}") from None
        if not raw.strip():
            return []
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise StoreError(f"{self.path}: not valid JSON ({e}); fix or move the file, it will not be overwritten") from None
        if not isinstance(document, dict) or not isinstance(document.get("accounts"), list):
            raise StoreError(f'{self.path}: must be an object {{"accounts": [...]}}')
        accounts = []
        seen: set[str] = set()
        for i, record in enumerate(document["accounts"]):
            try:
                account = Account.from_json(record, f"{self.path}: accounts[{i}]")
            except AccountFormatError as e:
                raise StoreError(str(e)) from None
            if account.email in seen:
                raise StoreError(f"{self.path}: accounts[{i}]: duplicate email {account.email}")
            seen.add(account.email)
            accounts.append(account)
        return accounts

    # -- writing --

    def save(self, accounts: list[Account]) -> None:
        with self._locked(shared=False):
            self._read()  # refuse to replace a store we cannot parse
            self._write(accounts)

    def put(self, account: Account) -> None:
        with self._locked(shared=False):
            current = self._read()
            replaced = [account if a.email == account.email else a for a in current]
            if not any(a.email == account.email for a in current):
                replaced.append(account)
            self._write(replaced)

    def remove(self, email: str) -> bool:
        with self._locked(shared=False):
            current = self._read()
            kept = [a for a in current if a.email != email]
            if len(kept) == len(current):
                return False
            self._write(kept)
            return True

    def _write(self, accounts: list[Account]) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        data = json.dumps({"accounts": [a.to_json() for a in accounts]}, indent=2).encode() + b"\n"
        fd, tmp = tempfile.mkstemp(prefix=".accounts-", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self, shared: bool) -> Iterator[None]:
        directory = os.path.dirname(self.path)
        if shared and not os.path.isdir(directory):
            yield
            return
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
