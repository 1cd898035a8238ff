"""Recent Responses conversations by response id, for ``previous_response_id``,
``GET /v1/responses/{id}`` and ``DELETE``. Pure, in memory.

Cloud Code keeps no conversation state, so a client continuing from a
previous response needs the gateway to remember what was said: each stored
response keeps its whole conversation as Responses items (the input so far
plus its output, thought signatures carried in reasoning items) and the
response object the client got. An entry made under a client key's name is
that key's alone: for any other key it does not exist. Bounded by a
number of entries, their size (the JSON bytes of the items each entry added,
images included, and of its response object) and a time to live (``[responses] store_entries``,
``store_max_bytes``, ``store_ttl``); the oldest go first. Lost on restart, and
per gateway process.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import attrs

from gateway.protocol.errors import GatewayError

DEFAULT_ENTRIES = 1000
DEFAULT_TTL = 3600.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def _size(items: Any) -> int:
    return len(json.dumps(items, ensure_ascii=False, separators=(",", ":"), default=str))


@attrs.frozen
class _Entry:
    expires: float
    conversation: list[dict[str, Any]]
    size: int  # the bytes this entry added
    response: dict[str, Any] | None = None  # what the client got (GET /v1/responses/{id})
    owner: str | None = None  # the client key's name it was made with, if any


class ResponseStore:
    def __init__(self, max_entries: int = DEFAULT_ENTRIES, ttl: float = DEFAULT_TTL,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, _Entry] = OrderedDict()

    def put(self, response_id: str, conversation: list[dict[str, Any]], now: float, shared: int = 0,
            response: dict[str, Any] | None = None, owner: str | None = None) -> None:
        """Remember the conversation that ``response_id`` ended (its input items and its output).

        ``shared``: how many leading items are the stored previous conversation's (counted
        there already: the lists share those items, so only the new ones cost memory).
        ``response``: the response object as answered; ``owner``: the client key's name."""
        if self.max_entries <= 0:
            return
        self._drop(response_id)
        size = _size(conversation[shared:]) + (_size(response) if response is not None else 0)
        if size > self.max_bytes:
            return  # alone bigger than the whole store: previous_response_id will say it is gone
        self._items[response_id] = _Entry(now + self.ttl, list(conversation), size, response, owner)
        self.bytes += size
        while self._items:
            key, entry = next(iter(self._items.items()))
            if now < entry.expires and len(self._items) <= self.max_entries and self.bytes <= self.max_bytes:
                break
            self._drop(key)

    def _drop(self, response_id: str) -> None:
        entry = self._items.pop(response_id, None)
        if entry is not None:
            self.bytes -= entry.size

    def _live(self, response_id: str, now: float, owner: str | None) -> _Entry | None:
        entry = self._items.get(response_id)
        if entry is None:
            return None
        if now >= entry.expires:
            self._drop(response_id)
            return None
        if entry.owner is not None and entry.owner != owner:
            return None  # another key's: for this one it does not exist
        return entry

    def get(self, response_id: str, now: float, owner: str | None = None) -> list[dict[str, Any]] | None:
        entry = self._live(response_id, now, owner)
        return None if entry is None else list(entry.conversation)

    def response(self, response_id: str, now: float, owner: str | None = None) -> dict[str, Any] | None:
        """The response object as it was answered, or None when gone (or never kept)."""
        entry = self._live(response_id, now, owner)
        return None if entry is None else entry.response

    def delete(self, response_id: str, now: float, owner: str | None = None) -> bool:
        """Forget a response (``DELETE /v1/responses/{id}``); False when there was none to forget."""
        if self._live(response_id, now, owner) is None:
            return False
        self._drop(response_id)
        return True

    def gone_message(self, response_id: str) -> str:
        """Why a response id is not here, and what to do instead."""
        return (
            f"Response with id '{response_id}' not found. The gateway keeps recent responses in memory only "
            f"({self.max_entries} at most, {self.max_bytes} bytes in all, for {self.ttl:g}s, per process, not across "
            "restarts, not those sent with store: false, and each only for the key that made it)."
        )

    def history(self, response_id: Any, now: float, owner: str | None = None) -> list[dict[str, Any]]:
        """The items before a request naming ``previous_response_id``; a 400 that says why when gone."""
        if not isinstance(response_id, str) or not response_id:
            raise GatewayError(400, "previous_response_id must be a response id string.")
        found = self.get(response_id, now, owner)
        if found is None:
            raise GatewayError(
                400,
                f"Previous response with id '{response_id}' not found. The gateway keeps recent responses in memory "
                f"only ({self.max_entries} at most, {self.max_bytes} bytes in all, for {self.ttl:g}s, not across restarts, "
                "and not those sent with "
                "store: false): send the whole conversation in input instead.",
            )
        return found

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["ResponseStore", "DEFAULT_ENTRIES", "DEFAULT_MAX_BYTES", "DEFAULT_TTL"]
