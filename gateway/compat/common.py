"""Pieces both front doors share: thinking settings, history repair, model limits, ids. Pure."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import Any, Iterable

from gateway.compat.signatures import SKIP_SIGNATURE, is_gemini, model_family
from gateway.protocol.errors import GatewayError

#: Gemini finish reasons that mean the answer was filtered.
SAFETY_REASONS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"})
#: reasoning_effort / effort -> Gemini 2.5 thinkingBudget.
EFFORT_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576, "max": 24576}
#: effort -> Gemini 3 thinkingLevel, before clamping to what the model accepts.
EFFORT_LEVELS = {"none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH",
                 "xhigh": "HIGH", "max": "HIGH"}
#: What Cloud Code's Claude models accept.
CLAUDE_MAX_OUTPUT = 64000
CLAUDE_MIN_BUDGET = 1024
CLAUDE_DEFAULT_OUTPUT = 16384
GEMINI_MAX_OUTPUT = 65536
CONTINUE_TEXT = "Continue."
MISSING_RESULT = "No result was sent for this tool call."

_DATA_URI = re.compile(r"data:(?P<mime>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.DOTALL)


def bad_request(message: str) -> GatewayError:
    return GatewayError(400, message)


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def parse_data_uri(uri: str, what: str) -> dict[str, str]:
    """``data:<mime>;base64,<data>`` -> Gemini ``inlineData`` (400 when it is not one)."""
    match = _DATA_URI.fullmatch(uri.strip())
    if not match:
        raise bad_request(f"{what}: expected a data: URI (data:<mime type>;base64,<data>) or an http(s) URL.")
    mime = match.group("mime") or "application/octet-stream"
    data = match.group("data")
    if ";base64" in match.group("params").lower():
        data = re.sub(r"\s+", "", data)
        try:
            base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(f"{what}: the data: URI is not valid base64.") from None
    else:
        from urllib.parse import unquote_to_bytes

        data = base64.b64encode(unquote_to_bytes(data)).decode("ascii")
    return {"mimeType": mime, "data": data}


def check_base64(data: Any, what: str) -> str:
    if not isinstance(data, str):
        raise bad_request(f"{what}: base64 data must be a string.")
    text = re.sub(r"\s+", "", data)
    try:
        base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{what}: the data is not valid base64.") from None
    return text


def is_gemini3(model: str) -> bool:
    return model_family(model) == "gemini-3"


def is_claude(model: str) -> bool:
    return model_family(model) == "claude"


def thinking_level(model: str, effort: str) -> str:
    """Gemini 3 ``thinkingLevel`` for an effort, clamped: Pro takes only LOW and HIGH."""
    level = EFFORT_LEVELS.get(effort, "HIGH")
    if "pro" in model.lower():
        return "HIGH" if level in ("MEDIUM", "HIGH") else "LOW"
    return level


def thinking_for_effort(model: str, effort: str | None) -> dict[str, Any] | None:
    """``thinkingConfig`` for a reasoning effort: level for Gemini 3, budget otherwise; never both."""
    if not effort:
        return None
    effort = effort.lower()
    if effort not in EFFORT_BUDGETS:
        raise bad_request(
            f"reasoning effort {effort!r} is not one of {', '.join(k for k in EFFORT_BUDGETS if k not in ('xhigh', 'max'))}."
        )
    if is_gemini3(model):
        return {"includeThoughts": effort != "none", "thinkingLevel": thinking_level(model, effort)}
    budget = EFFORT_BUDGETS[effort]
    if budget == 0:
        if "2.5-pro" in model:  # 2.5 Pro cannot switch thinking off; 128 is its floor
            return {"thinkingBudget": 128}
        return {"thinkingBudget": 0}
    return {"includeThoughts": True, "thinkingBudget": budget}


def thinking_for_budget(model: str, budget: int) -> dict[str, Any]:
    return {"includeThoughts": True, "thinkingBudget": int(budget)}


def fit_for_model(request: dict[str, Any], model: str) -> dict[str, Any]:
    """What the upstream model insists on (COMPAT.md): Claude's limits, Gemini's dropped penalties."""
    config = request.get("generationConfig")
    if isinstance(config, dict):
        if is_gemini3(model) or "gemini-2.5" in model or is_claude(model):  # "Penalty is not enabled"
            config.pop("presencePenalty", None)
            config.pop("frequencyPenalty", None)
        output = config.get("maxOutputTokens")
        if is_gemini(model) and isinstance(output, int) and output > GEMINI_MAX_OUTPUT:
            config["maxOutputTokens"] = GEMINI_MAX_OUTPUT  # Claude clients ask for more than Gemini writes
    if is_claude(model):
        config = request.setdefault("generationConfig", {})
        output = config.get("maxOutputTokens")
        output = CLAUDE_DEFAULT_OUTPUT if not isinstance(output, int) else min(output, CLAUDE_MAX_OUTPUT)
        thinking = config.get("thinkingConfig")
        if isinstance(thinking, dict):
            thinking.pop("thinkingLevel", None)
            budget = thinking.get("thinkingBudget")
            if isinstance(budget, int) and budget > 0:
                budget = max(budget, CLAUDE_MIN_BUDGET)
                if budget >= output:
                    output = min(CLAUDE_MAX_OUTPUT, budget + CLAUDE_MIN_BUDGET)
                    budget = min(budget, output - 1)
                thinking["thinkingBudget"] = budget
            elif thinking.get("includeThoughts") and budget is None:
                thinking["thinkingBudget"] = max(CLAUDE_MIN_BUDGET, min(8192, output // 2))
                if thinking["thinkingBudget"] >= output:
                    output = min(CLAUDE_MAX_OUTPUT, thinking["thinkingBudget"] + CLAUDE_MIN_BUDGET)
            else:
                config.pop("thinkingConfig", None)
        config["maxOutputTokens"] = output
        if request.get("tools"):
            calling = request.setdefault("toolConfig", {}).setdefault("functionCallingConfig", {})
            if calling.get("mode") in (None, "AUTO"):
                calling["mode"] = "VALIDATED"
        claude_thinking_rules(request)
    return request


def claude_thinking_rules(request: dict[str, Any]) -> None:
    """Anthropic's rules while Claude thinks, applied as Claude Code applies them itself.

    ``temperature`` other than 1 and ``top_k`` are dropped, ``top_p`` below
    0.95 is dropped, and a forced tool choice becomes automatic (Claude
    refuses thinking with a forced tool; Claude Code turns ``tool`` into
    ``auto`` while thinking too).
    """
    config = request.get("generationConfig") or {}
    thinking = config.get("thinkingConfig")
    budget = thinking.get("thinkingBudget") if isinstance(thinking, dict) else None
    if not (isinstance(budget, int) and budget > 0):
        return
    if config.get("temperature") not in (None, 1, 1.0):
        config.pop("temperature")
    config.pop("topK", None)
    top_p = config.get("topP")
    if isinstance(top_p, (int, float)) and top_p < 0.95:
        config.pop("topP")
    calling = (request.get("toolConfig") or {}).get("functionCallingConfig")
    if isinstance(calling, dict) and calling.get("mode") == "ANY":
        calling["mode"] = "VALIDATED"
        calling.pop("allowedFunctionNames", None)


def repair_history(contents: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """Turns Gemini accepts: no empty turns, same roles merged, a user turn first,
    one response per call in the turn right after the calls, signatures on Gemini 3 calls.

    ``contents`` holds the translated turns; function responses carry the
    call id in ``functionResponse.id``. A call without a response gets an
    error response, so the counts always match (Gemini answers 400 otherwise).
    """
    turns: list[dict[str, Any]] = []
    for turn in contents:
        parts = [p for p in turn["parts"] if not ("text" in p and p["text"] == "" and "thoughtSignature" not in p)]
        if not parts:
            continue
        if turns and turns[-1]["role"] == turn["role"]:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": turn["role"], "parts": parts})
    out: list[dict[str, Any]] = []
    index = 0
    while index < len(turns):
        turn = turns[index]
        calls = [p["functionCall"] for p in turn["parts"] if "functionCall" in p]
        if turn["role"] == "user" and any("functionResponse" in p for p in turn["parts"]):
            # responses not right after their calls: Gemini refuses them there, so keep them as text
            turn = {"role": "user", "parts": [_as_text(p) for p in turn["parts"]]}
            if turn["parts"]:
                out.append(turn)
            index += 1
            continue
        out.append(turn)
        index += 1
        if turn["role"] != "model" or not calls:
            continue
        following = turns[index] if index < len(turns) and turns[index]["role"] == "user" else None
        given = [p for p in following["parts"] if "functionResponse" in p] if following else []
        others = [p for p in following["parts"] if "functionResponse" not in p] if following else []
        by_id: dict[str, dict[str, Any]] = {}
        unnamed: list[dict[str, Any]] = []
        for part in given:
            call_id = part["functionResponse"].get("id")
            if call_id and call_id not in by_id:
                by_id[call_id] = part
            else:
                unnamed.append(part)
        responses = []
        for call in calls:
            part = by_id.pop(call.get("id"), None) if call.get("id") else None
            if part is None:
                part = next((p for p in unnamed if p["functionResponse"].get("name") == call.get("name")), None)
                if part is not None:
                    unnamed.remove(part)
            if part is None:
                response: dict[str, Any] = {"name": call.get("name"), "response": {"error": MISSING_RESULT}}
                if call.get("id"):
                    response["id"] = call["id"]
                part = {"functionResponse": response}
            responses.append(part)
        out.append({"role": "user", "parts": responses})
        if following is not None:
            index += 1
            if others:
                out.append({"role": "user", "parts": others})
    # same-role neighbours again (a text-only user turn after the responses is fine to merge)
    merged: list[dict[str, Any]] = []
    for turn in out:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1]["parts"].extend(turn["parts"])
        else:
            merged.append(turn)
    if not merged or merged[0]["role"] != "user":
        merged.insert(0, {"role": "user", "parts": [{"text": CONTINUE_TEXT}]})
    if is_gemini(model):
        for turn in merged:
            if turn["role"] != "model":
                continue
            first = next((p for p in turn["parts"] if "functionCall" in p), None)
            if first is not None and not first.get("thoughtSignature") and is_gemini3(model):
                first["thoughtSignature"] = SKIP_SIGNATURE
    return merged


def _as_text(part: dict[str, Any]) -> dict[str, Any]:
    if "functionResponse" not in part:
        return part
    response = part["functionResponse"]
    return {"text": f"Result of {response.get('name')}: {dumps(response.get('response'))}"}


def finish_category(reason: str | None) -> str:
    """``stop``, ``length`` or ``filtered`` for a Gemini finishReason (anything not a string: ``stop``)."""
    if not isinstance(reason, str):
        return "stop"
    if reason == "MAX_TOKENS":
        return "length"
    if reason in SAFETY_REASONS:
        return "filtered"
    return "stop"


def usage_numbers(usage: Any) -> dict[str, int]:
    """prompt / cached / candidates / thoughts token counts from ``usageMetadata`` (0 when absent)."""
    usage = usage if isinstance(usage, dict) else {}

    def number(key: str) -> int:
        value = usage.get(key)
        if isinstance(value, bool):
            return 0
        if isinstance(value, (int, float)):
            return int(value)
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return 0

    return {
        "prompt": number("promptTokenCount"),
        "cached": number("cachedContentTokenCount"),
        "candidates": number("candidatesTokenCount"),
        "thoughts": number("thoughtsTokenCount"),
    }


def candidates_of(response: Any) -> list[dict[str, Any]]:
    candidates = response.get("candidates") if isinstance(response, dict) else None
    return [c for c in candidates if isinstance(c, dict)] if isinstance(candidates, list) else []


def parts_of(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def call_args(call: dict[str, Any]) -> dict[str, Any]:
    args = call.get("args")
    return args if isinstance(args, dict) else {}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def prompt_blocked(response: Any) -> str | None:
    """``promptFeedback.blockReason`` when upstream refused the prompt."""
    feedback = response.get("promptFeedback") if isinstance(response, dict) else None
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    return reason if isinstance(reason, str) and reason else None


def session_key(value: Any) -> str | None:
    """A client-provided session key usable as ``sessionId`` (printable ASCII, ≤128), or None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if 0 < len(text) <= 128 and text.isascii() and text.isprintable():
        return text
    if text:
        import hashlib

        return "u-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return None


def image_urls(urls: Iterable[str]) -> list[str]:
    return [u for u in urls if u.lower().startswith(("http://", "https://"))]


def read_stream_event(payload: bytes) -> tuple[Any, tuple[int, str] | None]:
    """One upstream stream event: its GenerateContentResponse (``response`` unwrapped),
    or, for a mid-stream ``{"error": {...}}`` event, its ``(code, message)``."""
    document = json.loads(payload)
    if isinstance(document, dict) and isinstance(document.get("response"), dict):
        document = document["response"]
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        error = document["error"]
        code = error.get("code") if isinstance(error.get("code"), int) else 502
        message = error.get("message") if isinstance(error.get("message"), str) else "Cloud Code sent an error."
        return document, (code, message)
    return document, None
