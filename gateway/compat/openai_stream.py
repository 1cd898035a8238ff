"""Gemini stream events -> OpenAI ``chat.completion.chunk`` SSE. Pure, one object per stream.

``data: <chunk>\\n\\n`` for every chunk, the same ``id`` and ``created``
throughout; the first delta of each choice is ``{role, content: ""}``; tool
calls are ``delta.tool_calls`` with an ``index`` counted per choice; the last
chunk of a choice is ``delta: {}`` with its ``finish_reason``; with
``stream_options.include_usage`` every chunk has ``usage: null`` and one more
chunk with ``choices: []`` carries the usage; ``data: [DONE]`` ends it all. An
error after the start is ``data: {"error": …}`` then ``data: [DONE]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.compat.common import read_stream_event, candidates_of, dumps, new_id, parts_of
from gateway.compat.openai_request import OpenAIContext
from gateway.compat.openai_response import error_dict, finish_reason, tool_call, usage
from gateway.compat.signatures import SignatureMemory
from gateway.protocol import framing

DONE = b"data: [DONE]\n\n"


def sse(obj: Any) -> bytes:
    return b"data: " + framing.dumps(obj) + b"\n\n"  # valid UTF-8 even for a lone surrogate


@dataclass
class _Choice:
    started: bool = False
    tool_calls: int = 0
    reason: str | None = None


@dataclass
class OpenAIStream:
    ctx: OpenAIContext
    memory: SignatureMemory
    now: float
    id: str = field(default_factory=lambda: new_id("chatcmpl-"))
    started: bool = False
    finished: bool = False
    _choices: dict[int, _Choice] = field(default_factory=dict)
    _usage: Any = None

    def _chunk(self, index: int, delta: dict[str, Any], reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": int(self.now),
            "model": self.ctx.requested_model,
            "choices": [{"index": index, "delta": delta, "finish_reason": reason, "logprobs": None}],
        }
        if self.ctx.include_usage:
            chunk["usage"] = None
        return sse(chunk)

    def _choice(self, index: int, out: list[bytes]) -> _Choice:
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = _Choice()
        if not choice.started:
            choice.started = True
            out.append(self._chunk(index, {"role": "assistant", "content": ""}))
        return choice

    def event(self, payload: bytes) -> bytes:
        """One upstream event (its JSON, already unwrapped or not) -> zero or more chunks."""
        document, error = read_stream_event(payload)
        return self.error(*error) if error is not None else self.response(document)

    def response(self, document: Any) -> bytes:
        if self.finished:
            return b""
        self.started = True
        out: list[bytes] = []
        if isinstance(document, dict) and document.get("usageMetadata"):
            self._usage = document["usageMetadata"]
        for position, candidate in enumerate(candidates_of(document)):
            index = candidate.get("index") if isinstance(candidate.get("index"), int) else position
            choice = self._choice(index, out)
            for part in parts_of(candidate):
                if "functionCall" in part:
                    call = tool_call(part, self.ctx, self.memory, self.now)
                    out.append(self._chunk(index, {"tool_calls": [{"index": choice.tool_calls, **call}]}))
                    choice.tool_calls += 1
                    continue
                if isinstance(part.get("thoughtSignature"), str) and part["thoughtSignature"]:
                    self.memory.remember(part["thoughtSignature"], self.ctx.upstream_model, self.now)
                text = part.get("text")
                if isinstance(text, str) and text:
                    key = "reasoning_content" if part.get("thought") else "content"
                    out.append(self._chunk(index, {key: text}))
                elif isinstance(part.get("inlineData"), dict):
                    blob = part["inlineData"]
                    image = f"![image](data:{blob.get('mimeType', 'image/png')};base64,{blob.get('data', '')})"
                    out.append(self._chunk(index, {"content": image}))
            if isinstance(candidate.get("finishReason"), str):
                choice.reason = candidate["finishReason"]
        return b"".join(out)

    def end(self) -> bytes:
        """The closing chunks (finish reasons, usage) and ``[DONE]``; nothing after an error."""
        if self.finished:
            return b""
        self.finished = True
        out: list[bytes] = []
        if not self._choices:
            self._choice(0, out)
        for index in sorted(self._choices):
            choice = self._choices[index]
            out.append(self._chunk(index, {}, finish_reason(choice.reason, choice.tool_calls > 0)))
        if self.ctx.include_usage:
            out.append(sse({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": int(self.now),
                "model": self.ctx.requested_model,
                "choices": [],
                "usage": usage(self._usage),
            }))
        out.append(DONE)
        return b"".join(out)

    def error(self, code: int, message: str) -> bytes:
        """An error chunk and ``[DONE]``; the stream is over."""
        if self.finished:
            return b""
        self.finished = True
        body = error_dict(code, message)
        body["error"]["code"] = body["error"]["code"] or code
        return sse(body) + DONE
