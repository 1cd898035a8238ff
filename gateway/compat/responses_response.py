"""Gemini answers -> OpenAI Responses output items, response objects and errors. Pure.

:class:`OutputBuilder` is the one place that turns Gemini parts into output
items (``reasoning``, ``message``, ``function_call``, ``custom_tool_call``,
``image_generation_call``); it reports every step as a Responses stream event
through ``emit``, so the streamed and the whole answer are built by the same
code and cannot disagree. Thought signatures travel in ``reasoning`` items'
``encrypted_content`` (see ``responses_request.carry``) and are remembered by
call id, so a client that drops them still gets them restored.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from gateway.compat.common import call_args, candidates_of, dumps, finish_category, new_id, parts_of, prompt_blocked, usage_numbers
from gateway.compat.openai_response import error_dict as chat_error_dict
from gateway.compat.responses_request import ResponsesContext, carry
from gateway.compat.signatures import SignatureMemory

_OVERFLOW = re.compile(r"input token count|exceeds the maximum number of tokens|prompt is too long|context length",
                       re.IGNORECASE)
Emit = Callable[[dict[str, Any]], None]


def usage(metadata: Any) -> dict[str, Any]:
    """Responses ``usage``: output tokens include the thoughts (as OpenAI counts reasoning)."""
    numbers = usage_numbers(metadata)
    output = numbers["candidates"] + numbers["thoughts"]
    return {
        "input_tokens": numbers["prompt"],
        "input_tokens_details": {"cached_tokens": numbers["cached"]},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": numbers["thoughts"]},
        "total_tokens": numbers["prompt"] + output,
    }


def status_of(reason: str | None, blocked: str | None) -> tuple[str, dict[str, Any] | None]:
    """``completed``, or ``incomplete`` with its reason (output limit, filtered answer or prompt)."""
    if blocked:
        return "incomplete", {"reason": "content_filter"}
    category = finish_category(reason)
    if category == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if category == "filtered":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def error_code(code: int, message: str) -> str:
    """The ``error.code`` of a failed response (Codex decides retries on it)."""
    if code == 400 and _OVERFLOW.search(message):
        return "context_length_exceeded"
    if code == 429:
        return "rate_limit_exceeded"
    if code in (400, 404, 413, 422):
        return "invalid_request_error"
    if code in (401, 403):
        return "invalid_api_key" if code == 401 else "permission_denied"
    return "server_error"


def response_object(
    ctx: ResponsesContext,
    response_id: str,
    created_at: float,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage_block: dict[str, Any] | None,
    error: dict[str, Any] | None = None,
    incomplete: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``response`` object with every field the OpenAI SDK types require."""
    answer: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(created_at),
        "status": status,
        "error": error,
        "incomplete_details": incomplete,
        "model": ctx.requested_model,
        "output": output,
        "usage": usage_block,
    }
    answer.update(ctx.echo)
    answer.setdefault("parallel_tool_calls", True)
    answer.setdefault("tool_choice", "auto")
    answer.setdefault("tools", [])
    answer.setdefault("metadata", {})
    if status in ("completed", "incomplete", "failed"):
        answer["completed_at"] = int(created_at) if status == "completed" else None
    return answer


class OutputBuilder:
    """Gemini parts -> output items, one open item at a time, each step reported to ``emit``."""

    def __init__(self, ctx: ResponsesContext, memory: SignatureMemory, now: float, emit: Emit | None = None) -> None:
        self.ctx = ctx
        self.memory = memory
        self.now = now
        self.emit: Emit = emit or (lambda event: None)
        self.items: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._text: list[str] = []
        self._signature: str | None = None
        self._grounding: dict[str, Any] | None = None

    # -- items --

    @property
    def _index(self) -> int:
        return len(self.items)

    def _start(self, item: dict[str, Any]) -> None:
        self._open = item
        self._text = []
        self.emit({"type": "response.output_item.added", "output_index": self._index, "item": dict(item)})

    def _done(self, item: dict[str, Any]) -> None:
        self.emit({"type": "response.output_item.done", "output_index": self._index, "item": item})
        self.items.append(item)
        self._open = None

    def close(self) -> None:
        """Finish the open item (its closing events, then ``output_item.done``)."""
        item = self._open
        if item is None:
            return
        index, text = self._index, "".join(self._text)
        if item["type"] == "reasoning":
            if self._text:
                part = {"type": "summary_text", "text": text}
                self.emit({"type": "response.reasoning_summary_text.done", "item_id": item["id"], "output_index": index,
                           "summary_index": 0, "text": text})
                self.emit({"type": "response.reasoning_summary_part.done", "item_id": item["id"], "output_index": index,
                           "summary_index": 0, "part": part})
                item["summary"] = [part]
            if self._signature:
                self.memory.remember(self._signature, self.ctx.upstream_model, self.now)
                if self.ctx.encrypted:
                    item["encrypted_content"] = carry(self._signature, self.ctx.upstream_model)
                item["_signature"] = self._signature  # kept for the server-side history, stripped for clients
            self._signature = None
        elif item["type"] == "message":
            annotations = url_citations(self._grounding, text) if self._grounding else []
            for n, annotation in enumerate(annotations):
                self.emit({"type": "response.output_text.annotation.added", "item_id": item["id"], "output_index": index,
                           "content_index": 0, "annotation_index": n, "annotation": annotation})
            part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
            self.emit({"type": "response.output_text.done", "item_id": item["id"], "output_index": index,
                       "content_index": 0, "text": text, "logprobs": []})
            self.emit({"type": "response.content_part.done", "item_id": item["id"], "output_index": index,
                       "content_index": 0, "part": part})
            item["content"] = [part]
            item["status"] = "completed"
        self._done(item)

    def ground(self, metadata: Any) -> None:
        """A candidate's ``groundingMetadata``: its sources become the message's ``url_citation``s."""
        if isinstance(metadata, dict) and (metadata.get("groundingChunks") or metadata.get("webSearchQueries")):
            self._grounding = metadata

    def finish(self) -> None:
        """Close the open item; a grounded answer then gets its ``web_search_call`` item."""
        self.close()
        if self._grounding is None:
            return
        queries = [q for q in self._grounding.get("webSearchQueries") or [] if isinstance(q, str)]
        item = {"id": new_id("ws_"), "type": "web_search_call", "status": "completed",
                "action": {"type": "search", "query": queries[0] if queries else "",
                           "sources": [{"type": "url", "url": s["url"]} for s in sources(self._grounding)]}}
        self._start(item)
        self._done(item)
        self._grounding = None

    def _reasoning(self) -> dict[str, Any]:
        if self._open is None or self._open["type"] != "reasoning":
            self.close()
            self._start({"id": new_id("rs_"), "type": "reasoning", "summary": []})
        return self._open  # type: ignore[return-value]

    def _message(self) -> dict[str, Any]:
        if self._open is None or self._open["type"] != "message":
            self.close()
            item = {"id": new_id("msg_"), "type": "message", "status": "in_progress", "role": "assistant", "content": []}
            self._start(item)
            self.emit({"type": "response.content_part.added", "item_id": item["id"], "output_index": self._index,
                       "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
        return self._open  # type: ignore[return-value]

    # -- parts --

    def part(self, part: dict[str, Any]) -> None:
        signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
        if "functionCall" in part:
            self._call(part, signature)
            return
        text = part.get("text")
        if part.get("thought") and isinstance(text, str):
            item = self._reasoning()
            if signature:
                self._signature = signature
            if text:
                if not self._text:
                    self.emit({"type": "response.reasoning_summary_part.added", "item_id": item["id"],
                               "output_index": self._index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})
                self._text.append(text)
                self.emit({"type": "response.reasoning_summary_text.delta", "item_id": item["id"],
                           "output_index": self._index, "summary_index": 0, "delta": text})
            return
        if signature:
            if self._open is not None and self._open["type"] == "reasoning" and not self._signature:
                self._signature = signature  # Gemini signs the first part after its thoughts
            else:
                self.memory.remember(signature, self.ctx.upstream_model, self.now)
        if isinstance(text, str) and text:
            item = self._message()
            self._text.append(text)
            self.emit({"type": "response.output_text.delta", "item_id": item["id"], "output_index": self._index,
                       "content_index": 0, "delta": text, "logprobs": []})
        elif isinstance(part.get("inlineData"), dict):
            self.close()
            blob = part["inlineData"]
            if part.get("thought"):
                return  # a thinking model's draft image
            item = {"id": new_id("ig_"), "type": "image_generation_call", "status": "completed",
                    "result": blob.get("data", ""), "output_format": str(blob.get("mimeType", "image/png")).split("/")[-1]}
            self._start(item)
            self._done(item)

    def _call(self, part: dict[str, Any], signature: str | None) -> None:
        call = part["functionCall"] if isinstance(part.get("functionCall"), dict) else {}
        if signature:
            if self._open is not None and self._open["type"] == "reasoning" and not self._signature:
                self._signature = signature
            elif self.ctx.encrypted:
                self.close()
                self._start({"id": new_id("rs_"), "type": "reasoning", "summary": []})
                self._signature = signature
        self.close()
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else new_id("call_")
        client = self.ctx.names.client(call.get("name") if isinstance(call.get("name"), str) else "")
        index = self._index
        if client in self.ctx.custom:
            value = call_args(call).get("input")
            value = value if isinstance(value, str) else dumps(call_args(call))
            item: dict[str, Any] = {"id": new_id("ctc_"), "type": "custom_tool_call", "status": "in_progress",
                                    "call_id": call_id, "name": client, "input": ""}
            self._name(item, client)
            self._start(item)
            self.emit({"type": "response.custom_tool_call_input.delta", "item_id": item["id"], "output_index": index, "delta": value})
            self.emit({"type": "response.custom_tool_call_input.done", "item_id": item["id"], "output_index": index, "input": value})
            item = dict(item, input=value, status="completed")
            if signature:
                self.memory.remember(signature, self.ctx.upstream_model, self.now, call_id)
                item["_signature"] = signature
        else:
            arguments = dumps(call_args(call))
            item = {"id": new_id("fc_"), "type": "function_call", "status": "in_progress", "call_id": call_id,
                    "name": client, "arguments": ""}
            self._name(item, client)
            self._start(item)
            self.emit({"type": "response.function_call_arguments.delta", "item_id": item["id"], "output_index": index,
                       "delta": arguments})
            self.emit({"type": "response.function_call_arguments.done", "item_id": item["id"], "output_index": index,
                       "name": item["name"], "arguments": arguments})
            item = dict(item, arguments=arguments, status="completed")
        if signature:
            self.memory.remember(signature, self.ctx.upstream_model, self.now, call_id)
            item["_signature"] = signature
        self._done(item)

    def _name(self, item: dict[str, Any], client: str) -> None:
        found = self.ctx.namespaces.get(client)
        if found is not None:
            item["namespace"], item["name"] = found


def sources(metadata: dict[str, Any]) -> list[dict[str, str]]:
    """``{url, title}`` of each web source in ``groundingMetadata.groundingChunks``."""
    out = []
    for chunk in metadata.get("groundingChunks") or []:
        web = chunk.get("web") if isinstance(chunk, dict) else None
        if isinstance(web, dict) and isinstance(web.get("uri"), str):
            out.append({"url": web["uri"], "title": web["title"] if isinstance(web.get("title"), str) else web["uri"]})
    return out


def url_citations(metadata: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """OpenAI ``url_citation`` annotations from grounding supports (Gemini's byte offsets -> characters);
    a source no support names is cited over the whole text."""
    found = sources(metadata)
    encoded = text.encode("utf-8")

    def chars(offset: Any) -> int:
        offset = offset if isinstance(offset, int) and offset >= 0 else 0
        return len(encoded[:offset].decode("utf-8", "ignore"))

    out: list[dict[str, Any]] = []
    cited: set[int] = set()
    for support in metadata.get("groundingSupports") or []:
        segment = support.get("segment") if isinstance(support, dict) and isinstance(support.get("segment"), dict) else {}
        start, end = chars(segment.get("startIndex")), chars(segment.get("endIndex", len(encoded)))
        for index in support.get("groundingChunkIndices") or [] if isinstance(support, dict) else []:
            if isinstance(index, int) and 0 <= index < len(found):
                cited.add(index)
                out.append({"type": "url_citation", "url": found[index]["url"], "title": found[index]["title"],
                            "start_index": start, "end_index": max(start, end)})
    for index, source in enumerate(found):
        if index not in cited:
            out.append({"type": "url_citation", "url": source["url"], "title": source["title"],
                        "start_index": 0, "end_index": len(text)})
    return out


def public_item(item: dict[str, Any]) -> dict[str, Any]:
    """An output item as clients see it (without the gateway's private keys)."""
    return {k: v for k, v in item.items() if not k.startswith("_")}


def stored_items(items: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """Output items as the history store keeps them: every signature carried by a reasoning item."""
    out: list[dict[str, Any]] = []
    for item in items:
        signature = item.get("_signature")
        public = public_item(item)
        if item["type"] == "reasoning":
            if signature:
                public["encrypted_content"] = carry(signature, model)
        elif signature and not (out and out[-1]["type"] == "reasoning" and out[-1].get("encrypted_content")):
            out.append({"id": new_id("rs_"), "type": "reasoning", "summary": [], "encrypted_content": carry(signature, model)})
        out.append(public)
    return out


def has_calls(items: list[dict[str, Any]]) -> bool:
    return any(i["type"] in ("function_call", "custom_tool_call") for i in items)


def build(document: Any, ctx: ResponsesContext, memory: SignatureMemory, now: float, emit: Emit | None = None) -> OutputBuilder:
    """An :class:`OutputBuilder` fed the first candidate of ``document`` and closed."""
    builder = OutputBuilder(ctx, memory, now, emit)
    for candidate in candidates_of(document)[:1]:
        for part in parts_of(candidate):
            builder.part(part)
        builder.ground(candidate.get("groundingMetadata"))
    builder.finish()
    return builder


def response(
    document: Any,
    ctx: ResponsesContext,
    memory: SignatureMemory,
    now: float,
    response_id: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The whole ``response`` object for one GenerateContentResponse, and its items for the store."""
    builder = build(document, ctx, memory, now)
    candidates = candidates_of(document)
    reason = candidates[0].get("finishReason") if candidates else None
    status, incomplete = status_of(reason if isinstance(reason, str) else None, prompt_blocked(document))
    if has_calls(builder.items) and status == "incomplete" and incomplete == {"reason": "max_output_tokens"}:
        status, incomplete = "completed", None
    answer = response_object(
        ctx, response_id or new_id("resp_"), now, status=status,
        output=[public_item(i) for i in builder.items],
        usage_block=usage(document.get("usageMetadata") if isinstance(document, dict) else None),
        incomplete=incomplete,
    )
    return answer, stored_items(builder.items, ctx.upstream_model)


def error_dict(code: int, message: str) -> dict[str, Any]:
    """The HTTP error body on the Responses and Images paths (the Chat door's shape)."""
    return chat_error_dict(code, message)


__all__ = ["OutputBuilder", "build", "error_code", "response", "response_object", "status_of", "usage"]
