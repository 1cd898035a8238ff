"""Gemini stream events -> Anthropic's named-event stream. Pure, one object per stream.

``message_start`` first, then per content block (indices 0, 1, 2 …)
``content_block_start`` → deltas (``thinking_delta``, ``signature_delta``
before the stop, ``text_delta``, ``input_json_delta``) →
``content_block_stop``; then ``message_delta`` (stop_reason, usage) and
``message_stop``. Every event has an ``event:`` line (the SDK drops unnamed
ones). An error after the start is ``event: error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.compat import anthropic_search
from gateway.compat.anthropic_request import AnthropicContext
from gateway.compat.anthropic_response import message, shaped_error, stop_reason, tool_id, usage
from gateway.compat.common import read_stream_event, call_args, candidates_of, dumps, new_id, parts_of, usage_numbers
from gateway.compat.signatures import SignatureMemory
from gateway.protocol import framing

PING = b'event: ping\ndata: {"type":"ping"}\n\n'


def named(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + framing.dumps(data) + b"\n\n"


@dataclass
class AnthropicStream:
    ctx: AnthropicContext
    memory: SignatureMemory
    now: float
    id: str = field(default_factory=lambda: new_id("msg_"))
    started: bool = False
    finished: bool = False
    _index: int = -1
    _open: str | None = None  # type of the open block
    _signature: str = ""  # pending signature of an open thinking block
    _reason: str | None = None
    _called: bool = False
    _usage: Any = None
    _thought: str = ""  # text of the open thinking block (kept when display is "omitted")
    _buffered: list[Any] = field(default_factory=list)  # web search answers are sent whole, in Anthropic's order

    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        numbers = usage_numbers(self._usage)
        return [named("message_start", {"type": "message_start", "message": {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.ctx.requested_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": max(0, numbers["prompt"] - numbers["cached"]),
                      "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": numbers["cached"], "output_tokens": 0},
        }})]

    def _close(self, out: list[bytes], signature: str = "") -> None:
        if self._open is None:
            return
        if self._open == "thinking":
            final = self._signature or signature
            if final:
                self.memory.remember(final, self.ctx.upstream_model, self.now)
                if self.ctx.omit_thinking:
                    self.memory.remember_thought(final, self._thought, self.now)
                out.append(named("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                         "delta": {"type": "signature_delta", "signature": final}}))
        out.append(named("content_block_stop", {"type": "content_block_stop", "index": self._index}))
        self._open = None
        self._signature = ""
        self._thought = ""

    def _open_block(self, out: list[bytes], block: dict[str, Any]) -> None:
        self._index += 1
        self._open = block["type"]
        out.append(named("content_block_start", {"type": "content_block_start", "index": self._index,
                                                 "content_block": block}))

    def _delta(self, out: list[bytes], delta: dict[str, Any]) -> None:
        out.append(named("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}))

    def event(self, payload: bytes) -> bytes:
        document, error = read_stream_event(payload)
        return self.error(*error) if error is not None else self.response(document)

    def response(self, document: Any) -> bytes:
        if self.finished:
            return b""
        if isinstance(document, dict) and document.get("usageMetadata"):
            self._usage = document["usageMetadata"]
        if self.ctx.web_search is not None:
            self._buffered.append(document)
            return b""
        out = self._start()
        candidates = candidates_of(document)
        candidate = candidates[0] if candidates else {}
        for part in parts_of(candidate):
            signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else ""
            if part.get("thought") and isinstance(part.get("text"), str):
                if self._open != "thinking":
                    self._close(out)
                    self._open_block(out, {"type": "thinking", "thinking": "", "signature": ""})
                if part["text"]:
                    self._thought += part["text"]
                    if not self.ctx.omit_thinking:
                        self._delta(out, {"type": "thinking_delta", "thinking": part["text"]})
                if signature:
                    self._signature = signature
                continue
            if self._open == "thinking":
                self._close(out, signature)
            if "functionCall" in part:
                call = part["functionCall"] if isinstance(part["functionCall"], dict) else {}
                self._close(out)
                block_id = tool_id(call)
                if signature:
                    self.memory.remember(signature, self.ctx.upstream_model, self.now, block_id)
                name = call.get("name") if isinstance(call.get("name"), str) else ""
                self._open_block(out, {"type": "tool_use", "id": block_id, "name": self.ctx.names.client(name), "input": {}})
                self._delta(out, {"type": "input_json_delta", "partial_json": dumps(call_args(call))})
                self._close(out)
                self._called = True
            elif isinstance(part.get("text"), str):
                if not part["text"]:
                    continue
                if self._open != "text":
                    self._close(out)
                    self._open_block(out, {"type": "text", "text": ""})
                self._delta(out, {"type": "text_delta", "text": part["text"]})
            elif isinstance(part.get("inlineData"), dict):
                blob = part["inlineData"]
                if self._open != "text":
                    self._close(out)
                    self._open_block(out, {"type": "text", "text": ""})
                self._delta(out, {"type": "text_delta",
                                  "text": f"![image](data:{blob.get('mimeType', 'image/png')};base64,{blob.get('data', '')})"})
        if isinstance(candidate.get("finishReason"), str):
            self._reason = candidate["finishReason"]
        return b"".join(out)

    def ping(self) -> bytes:
        return b"" if self.finished or not self.started else PING

    def end(self) -> bytes:
        if self.finished:
            return b""
        if self.ctx.web_search is not None:
            self.finished = True
            return self._whole(message(anthropic_search.merged(self._buffered), self.ctx, self.memory, self.now))
        out = self._start()
        self._close(out)
        self.finished = True
        numbers = usage(self._usage)
        out.append(named("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self._reason, self._called), "stop_sequence": None},
            "usage": numbers,
        }))
        out.append(named("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def _whole(self, answer: dict[str, Any]) -> bytes:
        """A complete message as the event sequence (web search: sources first, then the cited text)."""
        out = self._start()
        for block in answer["content"]:
            kind = block["type"]
            if kind == "text":
                self._open_block(out, {"type": "text", "text": ""})
                self._delta(out, {"type": "text_delta", "text": block["text"]})
                for citation in block.get("citations") or []:
                    self._delta(out, {"type": "citations_delta", "citation": citation})
            elif kind == "thinking":
                self._open_block(out, {"type": "thinking", "thinking": "", "signature": ""})
                if block["thinking"]:
                    self._delta(out, {"type": "thinking_delta", "thinking": block["thinking"]})
                if block["signature"]:
                    self._delta(out, {"type": "signature_delta", "signature": block["signature"]})
            elif kind in ("tool_use", "server_tool_use"):
                self._open_block(out, {**block, "input": {}})
                self._delta(out, {"type": "input_json_delta", "partial_json": dumps(block["input"])})
            else:
                self._open_block(out, block)
            out.append(named("content_block_stop", {"type": "content_block_stop", "index": self._index}))
        self._open = None
        out.append(named("message_delta", {"type": "message_delta", "delta": {"stop_reason": answer["stop_reason"],
                                                                          "stop_sequence": None},
                                           "usage": answer["usage"]}))
        out.append(named("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error(self, code: int, message: str) -> bytes:
        if self.finished:
            return b""
        self.finished = True
        _, body = shaped_error(code, message)
        return named("error", body)
