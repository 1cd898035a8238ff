"""Recent Responses conversations by response id, for ``previous_response_id``. Pure, in memory.

Cloud Code keeps no conversation state, so a client continuing from a
previous response needs the gateway to remember what was said: each stored
response keeps its whole conversation as Responses items (the input so far
plus its output, thought signatures carried in reasoning items). Bounded by a
number of entries, their size (the JSON bytes of the items each entry added,
images included) and a time to live (``[responses] store_entries``,
``store_max_bytes``, ``store_ttl``); the oldest go first. Lost on restart, and
per gateway process.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from gateway.protocol.errors import GatewayError

DEFAULT_ENTRIES = 1000
DEFAULT_TTL = 3600.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def _size(items: list[dict[str, Any]]) -> int:
    return len(json.dumps(items, ensure_ascii=False, separators=(",", ":"), default=str))


class ResponseStore:
    def __init__(self, max_entries: int = DEFAULT_ENTRIES, ttl: float = DEFAULT_TTL,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.bytes = 0
        #: id -> (expires, conversation, bytes this entry added)
        self._items: OrderedDict[str, tuple[float, list[dict[str, Any]], int]] = OrderedDict()

    def put(self, response_id: str, conversation: list[dict[str, Any]], now: float, shared: int = 0) -> None:
        """Remember the conversation that ``response_id`` ended (its input items and its output).

        ``shared``: how many leading items are the stored previous conversation's (counted
        there already: the lists share those items, so only the new ones cost memory)."""
        if self.max_entries <= 0:
            return
        self._drop(response_id)
        size = _size(conversation[shared:])
        if size > self.max_bytes:
            return  # alone bigger than the whole store: previous_response_id will say it is gone
        self._items[response_id] = (now + self.ttl, list(conversation), size)
        self.bytes += size
        while self._items:
            key, (expires, _, _) = next(iter(self._items.items()))
            if now < expires and len(self._items) <= self.max_entries and self.bytes <= self.max_bytes:
                break
            self._drop(key)

    def _drop(self, response_id: str) -> None:
        entry = self._items.pop(response_id, None)
        if entry is not None:
            self.bytes -= entry[2]

    def get(self, response_id: str, now: float) -> list[dict[str, Any]] | None:
        entry = self._items.get(response_id)
        if entry is None:
            return None
        expires, conversation, _ = entry
        if now >= expires:
            self._drop(response_id)
            return None
        return list(conversation)

    def history(self, response_id: Any, now: float) -> list[dict[str, Any]]:
        """The items before a request naming ``previous_response_id``; a 400 that says why when gone."""
        if not isinstance(response_id, str) or not response_id:
            raise GatewayError(400, "previous_response_id must be a response id string.")
        found = self.get(response_id, now)
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
