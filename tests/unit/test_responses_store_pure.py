"""The Responses store's retrieve/delete side: response objects, owners, sizes (``gateway.compat.responses_store``)."""

from __future__ import annotations

from gateway.compat.responses_store import ResponseStore, _size
from gateway.observe import route_of


def test_a_response_is_retrieved_as_answered_until_it_expires() -> None:
    store = ResponseStore(max_entries=10, ttl=10.0)
    answer = {"id": "resp_a", "object": "response", "status": "completed", "output": []}
    store.put("resp_a", [{"x": 1}], 0.0, response=answer)
    assert store.response("resp_a", 5.0) == answer
    assert store.response("resp_a", 10.0) is None and len(store) == 0 and store.bytes == 0
    store.put("resp_b", [{"x": 1}], 0.0)  # kept for previous_response_id only (nothing to retrieve)
    assert store.response("resp_b", 1.0) is None and store.get("resp_b", 1.0) == [{"x": 1}]


def test_delete_forgets_for_every_use_and_says_whether_there_was_one() -> None:
    store = ResponseStore()
    store.put("resp_a", [{"x": 1}], 0.0, response={"id": "resp_a"})
    assert store.delete("resp_a", 1.0) is True
    assert store.get("resp_a", 1.0) is None and store.response("resp_a", 1.0) is None and store.bytes == 0
    assert store.delete("resp_a", 1.0) is False and store.delete("resp_never", 1.0) is False


def test_an_entry_made_under_a_key_exists_for_that_key_only() -> None:
    store = ResponseStore()
    store.put("resp_a", [{"x": 1}], 0.0, response={"id": "resp_a"}, owner="alice")
    assert store.response("resp_a", 1.0, "bob") is None and store.get("resp_a", 1.0, "bob") is None
    assert store.response("resp_a", 1.0) is None  # no key (another auth strategy) is not alice either
    assert store.delete("resp_a", 1.0, "bob") is False and len(store) == 1
    assert store.response("resp_a", 1.0, "alice") == {"id": "resp_a"}
    store.put("resp_open", [], 0.0, response={"id": "resp_open"})  # made without a key name: anyone's
    assert store.response("resp_open", 1.0, "bob") == {"id": "resp_open"}
    assert store.delete("resp_a", 1.0, "alice") is True


def test_the_response_object_counts_towards_the_size_bound() -> None:
    answer = {"id": "resp_a", "output": [{"text": "y" * 100}]}
    store = ResponseStore(max_bytes=_size([{"x": 1}]) + _size(answer))
    store.put("resp_a", [{"x": 1}], 0.0, response=answer)
    assert store.bytes == _size([{"x": 1}]) + _size(answer) and len(store) == 1
    store.put("resp_b", [{"x": 2}], 1.0, response=answer)  # the oldest goes to make room
    assert store.response("resp_a", 1.0) is None and store.response("resp_b", 1.0) == answer


def test_gone_message_says_why_and_route_label_never_holds_the_id() -> None:
    message = ResponseStore(max_entries=5, ttl=60.0).gone_message("resp_x")
    assert "'resp_x' not found" in message and "store: false" in message and "per process" in message
    assert route_of(b"/v1/responses/resp_secretish") == ("responses.item", None)
