"""RouteAgent: each URL parsed once, requests still go where Agent would send them."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.web.client import HTTPConnectionPool
from twisted.web.error import SchemeNotSupported

from gateway.upstream.proxy import RouteAgent, direct_agent


def _recording(agent: RouteAgent) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    agent._requestWithEndpoint = lambda *a: calls.append(a)  # type: ignore[method-assign]
    return calls


def test_same_target_as_agent_and_parsed_once() -> None:
    reactor = MemoryReactorClock()
    agent = direct_agent(reactor, HTTPConnectionPool(reactor), 5.0)
    assert isinstance(agent, RouteAgent)
    calls = _recording(agent)
    url = b"https://cloudcode.example:8443/v1internal:generateContent?alt=sse"
    agent.request(b"POST", url)
    agent.request(b"POST", url)
    (key, endpoint, method, parsed, headers, body, path), second = calls
    assert key == (b"https", b"cloudcode.example", 8443)
    assert method == b"POST" and headers is None and body is None
    assert path == b"/v1internal:generateContent?alt=sse"
    assert parsed.host == b"cloudcode.example"
    assert second[3] is parsed and second[1] is endpoint  # the memo, not a second parse


def test_memo_is_bounded() -> None:
    reactor = MemoryReactorClock()
    agent = direct_agent(reactor, HTTPConnectionPool(reactor), 5.0)
    _recording(agent)
    for i in range(RouteAgent.MAX_TARGETS + 5):
        agent.request(b"GET", b"http://images.example/%d.png" % i)
    assert len(agent._targets) <= RouteAgent.MAX_TARGETS


def test_bad_url_refused_like_agent() -> None:
    reactor = MemoryReactorClock()
    agent = direct_agent(reactor, HTTPConnectionPool(reactor), 5.0)
    with pytest.raises(ValueError):
        agent.request(b"GET", b"http://bad host/")
    assert not agent._targets


def test_unsupported_scheme_fails_the_deferred() -> None:
    class NoScheme:
        def endpointForURI(self, uri: Any) -> Any:
            raise SchemeNotSupported("Unsupported scheme: " + repr(uri.scheme))

    reactor = MemoryReactorClock()
    agent = RouteAgent.usingEndpointFactory(reactor, NoScheme(), pool=HTTPConnectionPool(reactor))
    failures: list[Any] = []
    agent.request(b"GET", b"ftp://example.com/x").addErrback(failures.append)
    assert failures and failures[0].check(SchemeNotSupported)
