"""A bare Twisted relay: the floor the gateway is measured against (issue 14).

twisted.web in, one pooled Agent out, the body passed through unparsed and the
answer relayed as it comes: no auth, no pool, no envelope, no JSON. POST
/PATH goes to UPSTREAM/PATH with the client's Authorization header.

    python bench/relay.py --port 8100 --upstream http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import reactor
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer


@implementer(IBodyProducer)
class Bytes:
    def __init__(self, data: bytes) -> None:
        self.body = data
        self.length = len(data)

    def startProducing(self, consumer):  # type: ignore[no-untyped-def]
        consumer.write(self.body)
        from twisted.internet.defer import succeed
        return succeed(None)

    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def stopProducing(self) -> None: ...


class Pass(Protocol):
    def __init__(self, request) -> None:  # type: ignore[no-untyped-def]
        self.request = request

    def dataReceived(self, data: bytes) -> None:
        self.request.write(data)

    def connectionLost(self, reason=None) -> None:  # type: ignore[no-untyped-def]
        if not self.request.finished and not self.request._disconnected:
            self.request.finish()


class Relay(Resource):
    isLeaf = True

    def __init__(self, agent: Agent, upstream: bytes) -> None:
        super().__init__()
        self.agent, self.upstream = agent, upstream

    def render_GET(self, request):  # type: ignore[no-untyped-def]
        return b"ok"  # the benchmark's health check

    def render_POST(self, request):  # type: ignore[no-untyped-def]
        headers = Headers({b"Content-Type": [b"application/json"]})
        auth = request.getHeader(b"authorization")
        if auth:
            headers.setRawHeaders(b"Authorization", [auth])
        d = self.agent.request(b"POST", self.upstream + request.uri, headers, Bytes(request.content.read()))

        def answered(response):  # type: ignore[no-untyped-def]
            request.setResponseCode(response.code)
            request.setHeader(b"Content-Type", response.headers.getRawHeaders(b"content-type", [b"application/json"])[0])
            response.deliverBody(Pass(request))

        def failed(failure):  # type: ignore[no-untyped-def]
            request.setResponseCode(502)
            request.finish()

        d.addCallbacks(answered, failed)
        return NOT_DONE_YET


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    a = p.parse_args(argv)
    pool = HTTPConnectionPool(reactor)
    pool.maxPersistentPerHost = 256
    site = Site(Relay(Agent(reactor, pool=pool), a.upstream.rstrip("/").encode()))
    site.log = lambda request: None  # like the gateway's benchmark runs: no access log line per request
    reactor.listenTCP(a.port, site, backlog=2048, interface="127.0.0.1")
    print(f"relay on {a.port} -> {a.upstream}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
