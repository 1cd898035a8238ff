"""Faults in the *body* of an answer, after its headers: what a flaky Google or network does.

``stall_body``  headers and part of the body, then nothing (the connection stays open)
``cut_body``    a Content-Length larger than what is sent, then the connection closes
``huge``        a valid answer of about ``size`` bytes of text
``trickle``     headers, then one byte every ``seconds`` (never a whole event or document)

They apply to any method, including the token endpoint (``method: "token"``);
``status`` defaults to 200, ``body`` (a string) replaces the default partial body.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.iweb import IRequest

BODY_KINDS = ("stall_body", "cut_body", "huge", "trickle")

_PARTIAL = b'{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"the answer was'


def huge_answer(size: int) -> bytes:
    """A well-formed v1internal generateContent answer with about ``size`` bytes of text."""
    text = "x" * max(0, size)
    return json.dumps({"response": {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                                    "finishReason": "STOP", "index": 0}],
                                    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}}}
                      ).encode()


def _transport(request: IRequest) -> Any:
    return getattr(getattr(request, "channel", None), "transport", None)


async def answer(request: IRequest, fault: Any, clock: Any, method: str) -> bytes | None:
    """Play ``fault`` on ``request``: the whole body to send (``huge``), or it never returns
    (Klein cancels it when the gateway hangs up)."""
    status = fault.status or 200
    partial = fault.body.encode() if isinstance(fault.body, str) else _PARTIAL
    stream = method == "streamGenerateContent"
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"text/event-stream" if stream else b"application/json; charset=UTF-8")
    if fault.kind == "huge":
        body = huge_answer(fault.size)
        return body
    if fault.kind == "cut_body":
        request.setHeader(b"Content-Length", b"%d" % (len(partial) + 1000))
        request.write(partial)
        transport = _transport(request)
        if transport is not None:
            transport.loseConnection()
        await Deferred()
        return None
    if fault.kind == "stall_body":
        request.setHeader(b"Content-Length", b"%d" % (len(partial) + 1000))
        request.write(partial)
        await Deferred()  # until the gateway gives up and closes
        return None
    # trickle: one byte at a time, forever
    request.write(b"")
    interval = fault.seconds if fault.seconds > 0 else 0.1
    source = b": " if stream else b" "
    while True:
        await deferLater(clock, interval, lambda: None)
        request.write(source[:1])
