"""The upstream request headers: built once per (host, token, user agent), bounded."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock

from gateway.upstream import client as upstream_client
from gateway.upstream.client import UpstreamClient


def _client(agent: list[str]) -> UpstreamClient:
    return UpstreamClient(routes=None, hosts=("https://cloudcode.example",), user_agent=lambda: agent[0],  # type: ignore[arg-type]
                          response_timeout=10.0, reactor=MemoryReactorClock())


def test_headers_name_host_token_and_agent_and_are_reused_per_token() -> None:
    agent = ["antigravity/1.0"]
    client = _client(agent)
    first = client._headers("https://cloudcode.example", "tok-a")
    assert dict(first.getAllRawHeaders()) == {
        b"Host": [b"cloudcode.example"],
        b"Content-Type": [b"application/json"],
        b"User-Agent": [b"antigravity/1.0"],
        b"Accept-Encoding": [b"identity"],
        b"Authorization": [b"Bearer tok-a"],
    }
    assert client._headers("https://cloudcode.example", "tok-a") is first
    other = client._headers("https://cloudcode.example", "tok-b")
    assert other.getRawHeaders(b"Authorization") == [b"Bearer tok-b"]
    assert client._headers("http://127.0.0.1:8080", "tok-a").getRawHeaders(b"Host") == [b"127.0.0.1:8080"]
    agent[0] = "antigravity/2.0"  # a new client version: new headers
    assert client._headers("https://cloudcode.example", "tok-a").getRawHeaders(b"User-Agent") == [b"antigravity/2.0"]


def test_the_memo_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(upstream_client, "MAX_HEADER_SETS", 4)
    client = _client(["ua"])
    for i in range(10):
        client._headers("https://cloudcode.example", f"tok-{i}")
    assert len(client._prepared) <= 4
