"""Send a finished message now, instead of after the reactor's whole I/O pass.

Twisted's TCP transports only buffer in ``write``; the reactor sends when it
next polls, after it has handled every socket that was ready in the current
pass. At 64 connections one pass handles dozens of requests, so the first
upstream request and the first answer waited for all of them: the gateway
and Cloud Code took turns instead of working at the same time, and both sat
partly idle (bench/PROFILE.md "Round 4": 0.70x the bare relay's throughput at
1.15x its CPU per request, ~70 % CPU on each side). Asking the transport to
write what it holds as soon as a whole message is in it (the reactor's own
``IWriteDescriptor.doWrite``) lets each side start on it at once.
"""

from __future__ import annotations

from typing import Any


def send_now(transport: Any) -> None:
    """Write what ``transport`` holds now, as the reactor would on its next pass.

    A transport that is closing is left to the reactor (its ``doWrite`` then
    ends the connection, which only the reactor may do). A send error leaves
    the socket registered for writing, so the reactor's next pass meets the
    same error and closes the connection as usual. A wrapping transport (TLS)
    is written through to the socket transport under it.
    """
    for _ in range(3):  # TLS over TCP: the socket transport is one level down
        if getattr(transport, "doWrite", None) is not None:
            break
        transport = getattr(transport, "transport", None)
        if transport is None:
            return
    else:
        return
    if not getattr(transport, "connected", False) or getattr(transport, "disconnecting", True):
        return
    transport.doWrite()


def send_pending(reactor: Any) -> None:
    """``send_now`` for every transport the reactor would write on its next pass
    (``IReactorFDSet.getWriters``): an upstream request the Agent just wrote."""
    writers = getattr(reactor, "getWriters", None)
    if writers is None:  # a test clock without file descriptors
        return
    for writer in writers():
        send_now(writer)
