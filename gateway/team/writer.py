"""Usage rows into the store off the reactor thread, in batches.

``add`` (reactor thread) only appends to a list. A batch goes to the
writer's own thread when it is full or when ``tick`` runs (every
``flush_seconds``); the thread writes each batch in one transaction. A crash
therefore loses at most the rows not yet committed (the last batch) and
never leaves a half-written batch. ``flush`` fires once everything added so
far is committed (tests, ``/admin/usage``, shutdown).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from twisted.logger import Logger

log = Logger(namespace="antigravity_gateway.usage")

_STOP = object()


class UsageWriter:
    def __init__(self, store: Any, batch_size: int = 200, call_from_thread: Callable[..., Any] | None = None) -> None:
        self.store = store
        self.batch_size = max(1, batch_size)
        #: Runs a callable on the reactor thread (``reactor.callFromThread``); None: in the writer thread.
        self.call_from_thread = call_from_thread
        self._pending: list[Any] = []
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
        self._thread.start()
        self.written = 0
        self.failures = 0

    def add(self, row: Any) -> None:
        self._pending.append(row)
        if len(self._pending) >= self.batch_size:
            self.tick()

    def tick(self) -> None:
        """Hand what is pending to the writer thread as one batch."""
        if self._pending:
            batch, self._pending = self._pending, []
            self._queue.put(batch)

    def run_in_thread(self, work: Callable[[], Any], done: Callable[[Any], None] | None = None) -> None:
        """Queue other store work (pruning) behind the batches; ``done(result)`` on the reactor thread."""
        self._queue.put((work, done))

    def flush(self, done: Callable[[Any], None]) -> None:
        """``done(None)`` once every row added so far is committed."""
        self.tick()
        self.run_in_thread(lambda: None, done)

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is pending and end the thread (blocks up to ``timeout``: call from a thread or at exit)."""
        self.tick()
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self.store.close()
                return
            if isinstance(item, tuple):
                work, done = item
                try:
                    result = work()
                except Exception as e:  # a failed prune must not stop the writer
                    log.warn("usage store work failed: {why}", why=str(e))
                    result = None
                if done is not None:
                    self._back(done, result)
                continue
            try:
                self.store.insert(item)
                self.written += len(item)
            except Exception as e:  # a locked or full disk: count, log, keep serving
                self.failures += 1
                log.warn("could not record {n} usage rows: {why}", n=len(item), why=str(e))

    def _back(self, done: Callable[[Any], None], result: Any) -> None:
        if self.call_from_thread is None:
            done(result)
        else:
            self.call_from_thread(done, result)
