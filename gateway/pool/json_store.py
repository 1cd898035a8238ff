"""The built-in account store: one JSON file, never half-written.

Writes go to a temporary file in the same directory (mode 0600), are fsynced
and renamed over the store, so a crash at any moment leaves the old or the new
file. An exclusive ``flock`` on a side lock file serialises writers, including
a second gateway process; each ``put`` re-reads under the lock so no writer's
update is lost (``update`` applies a change to the record as it is on disk
now). A store that cannot be parsed is an error, never overwritten.
``changed`` is a cheap stat telling a running gateway that someone else
(the CLI, another gateway) wrote the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import glob
import tempfile
from typing import Callable, Iterator

from zope.interface import implementer

from gateway.interfaces import IAccountBackend
from gateway.pool.account import Account, AccountFormatError


class StoreError(Exception):
    """The store cannot be read or written; the message says which file and why."""


@implementer(IAccountBackend)
class JSONAccountStore:
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self._seen: tuple[int, int, int] | None = None
        self._tmp_prefix = "." + os.path.basename(self.path) + "-"

    def describe(self) -> str:
        return f"JSON store {self.path}"

    # -- reading --

    def load(self) -> list[Account]:
        with self._locked(shared=True):
            self._seen = self._signature()
            return self._read()

    def mtime(self) -> float | None:
        """The store's modification time, for cheap change detection."""
        try:
            return os.stat(self.path).st_mtime_ns / 1e9
        except FileNotFoundError:
            return None

    def changed(self) -> bool:
        """Whether the file differs from what this object last read or wrote (one ``stat``).

        Every write replaces the file with a new inode, so (inode, mtime,
        size) changes on any other writer's save, even within one clock tick.
        """
        return self._signature() != self._seen

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

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

    def update(self, email: str, change: Callable[[Account], Account]) -> list[Account]:
        """Apply ``change`` to ``email``'s record as stored now; every record after it.

        Nothing is written when the account is not there (removed meanwhile)
        or ``change`` returns the record unchanged.
        """
        with self._locked(shared=False):
            current = self._read()
            updated = []
            dirty = False
            for account in current:
                if account.email == email:
                    new = change(account)
                    dirty = dirty or new != account or new.extra != account.extra
                    account = new
                updated.append(account)
            if dirty:
                self._write(updated)
            else:
                self._seen = self._signature()
            return updated

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
        self._remove_leftovers(directory)
        fd, tmp = tempfile.mkstemp(prefix=self._tmp_prefix, suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                st = os.fstat(f.fileno())
            os.replace(tmp, self.path)
            self._seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _remove_leftovers(self, directory: str) -> None:
        """Temporary files of a writer killed mid-save (we hold the lock: no live writer owns one)."""
        pattern = os.path.join(glob.escape(directory), glob.escape(self._tmp_prefix) + "*.tmp")
        for leftover in glob.glob(pattern):
            with contextlib.suppress(OSError):
                os.unlink(leftover)

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
