"""Gemini stream events -> OpenAI Responses SSE events. Pure, one object per stream.

Every event is ``event: <type>`` + ``data: <json with the same type>`` and a
``sequence_number`` counted from 0; there is no ``[DONE]``. The stream opens
with ``response.created`` and ``response.in_progress``, carries the item
events of :class:`~gateway.compat.responses_response.OutputBuilder`, and ends
with ``response.completed`` (or ``response.incomplete``) holding the whole
response and its usage. An error after the start ends it with
``response.failed`` whose ``response.error`` has ``code`` and ``message``:
Codex ignores ``type: error`` events and reads only that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from gateway.compat.common import candidates_of, dumps, new_id, parts_of, prompt_blocked
from gateway.compat.responses_request import ResponsesContext
from gateway.compat.responses_response import (
    OutputBuilder,
    error_code,
    has_calls,
    public_item,
    response_object,
    status_of,
    stored_items,
    usage,
)
from gateway.compat.signatures import SignatureMemory


def sse(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + dumps(event).encode("utf-8", "surrogatepass") + b"\n\n"


@dataclass
class ResponsesStream:
    ctx: ResponsesContext
    memory: SignatureMemory
    now: float
    id: str = field(default_factory=lambda: new_id("resp_"))
    #: called with (response object, items for the store) when the stream completes
    on_complete: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None
    #: answer even an error before the first upstream event as a 200 stream ending in
    #: ``response.failed`` (Codex reads errors only that way)
    commit_errors: bool = False
    started: bool = False
    finished: bool = False
    _sequence: int = 0
    _out: list[bytes] = field(default_factory=list)
    _builder: OutputBuilder | None = None
    _reason: str | None = None
    _blocked: str | None = None
    _usage: Any = None

    def _emit(self, event: dict[str, Any]) -> None:
        event = dict(event, sequence_number=self._sequence)
        if "item" in event:
            event["item"] = public_item(event["item"])
        self._sequence += 1
        self._out.append(sse(event))

    def _flush(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data

    def _object(self, status: str, **extra: Any) -> dict[str, Any]:
        output = [public_item(i) for i in self._builder.items] if self._builder else []
        return response_object(self.ctx, self.id, self.now, status=status, output=output, usage_block=extra.pop("usage", None), **extra)

    def _start(self) -> None:
        if self.started:
            return
        self.started = True
        self._builder = OutputBuilder(self.ctx, self.memory, self.now, self._emit)
        self._emit({"type": "response.created", "response": self._object("in_progress")})
        self._emit({"type": "response.in_progress", "response": self._object("in_progress")})

    def response(self, document: Any) -> bytes:
        """One upstream GenerateContentResponse -> the events it adds."""
        if self.finished:
            return b""
        self._start()
        assert self._builder is not None
        if isinstance(document, dict) and document.get("usageMetadata"):
            self._usage = document["usageMetadata"]
        self._blocked = self._blocked or prompt_blocked(document)
        for candidate in candidates_of(document)[:1]:
            for part in parts_of(candidate):
                self._builder.part(part)
            self._builder.ground(candidate.get("groundingMetadata"))
            if isinstance(candidate.get("finishReason"), str):
                self._reason = candidate["finishReason"]
        return self._flush()

    def end(self) -> bytes:
        """Close the open item and send ``response.completed`` / ``response.incomplete``."""
        if self.finished:
            return b""
        self._start()
        self.finished = True
        assert self._builder is not None
        self._builder.finish()
        status, incomplete = status_of(self._reason, self._blocked)
        if status == "incomplete" and has_calls(self._builder.items) and incomplete == {"reason": "max_output_tokens"}:
            status, incomplete = "completed", None
        final = self._object(status, usage=usage(self._usage), incomplete=incomplete)
        self._emit({"type": "response.completed" if status == "completed" else "response.incomplete", "response": final})
        if self.on_complete is not None:
            self.on_complete(final, stored_items(self._builder.items, self.ctx.upstream_model))
        return self._flush()

    def error(self, code: int, message: str) -> bytes:
        """``response.failed`` with the error; the stream is over."""
        if self.finished:
            return b""
        self._start()
        self.finished = True
        assert self._builder is not None
        self._builder.close()
        failed = self._object("failed", usage=usage(self._usage), error={"code": error_code(code, message), "message": message})
        self._emit({"type": "response.failed", "response": failed})
        return self._flush()


__all__ = ["ResponsesStream", "sse"]
