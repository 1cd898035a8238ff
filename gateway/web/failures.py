"""Logging a gateway bug without logging a secret.

A traceback's exception message can carry whatever the failing code held —
a header value, a URL with ``?key=``, a token. Unhandled errors are therefore
logged as scrubbed text (``classify.scrub``: tokens, keys, URL queries,
emails), never as a raw Failure the log observers would render verbatim.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.protocol.classify import scrub


def log_unhandled(log: Logger, failure: Failure, path: bytes | None, what: str = "unhandled error") -> None:
    """Log ``failure`` as a scrubbed traceback (level critical, like ``log.failure``)."""
    shown = (path or b"").split(b"?", 1)[0].decode("latin-1", "replace")[:200]
    try:
        trace = failure.getTraceback(detail="brief") if failure.tb is None else failure.getTraceback()
    except Exception:  # a traceback that cannot even be rendered still gets a line
        trace = f"{failure.type!r}"
    log.critical("{what} in {path}:\n{trace}", what=what, path=scrub(shown), trace=scrub(trace))


def unhandled(log: Logger) -> Any:
    """An errback that logs (scrubbed) and swallows."""

    def errback(failure: Failure) -> None:
        log_unhandled(log, failure, None, "unhandled error writing the response")

    return errback
