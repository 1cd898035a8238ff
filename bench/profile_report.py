"""Turn py-spy's collapsed stacks of the gateway into µs per request.

``bench/run --profile 1,64`` records ``bench/results/profile/gateway-cN.collapsed.txt``
while wrk drives case 1 and keeps, from an unprofiled run just before, the
gateway's CPU µs per request. Each function's share of the (non-idle) samples
times that figure is its cost per request:

    python bench/profile_report.py bench/results/latest-profile.json [--top 40]

prints, per concurrency, the top functions by inclusive and by self time and
the cost by layer (twisted.web server, Klein/Werkzeug, treq/Agent client, JSON,
gateway code, logging, reactor and sockets).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*?)(?::(?P<line>\d+))?\)$")

LAYERS = [
    ("gateway: routes, forwarder, envelope, relay", ("gateway/",)),
    ("klein + werkzeug routing", ("klein/", "werkzeug/")),
    ("treq + twisted.web.client (Agent, pool, HTTP/1.1 client)", ("treq/", "twisted/web/client.py", "twisted/web/_newclient.py")),
    ("twisted.web server (HTTPChannel, Request, Site)", ("twisted/web/http.py", "twisted/web/server.py", "twisted/web/resource.py", "twisted/web/http_headers.py", "twisted/web/_responses.py")),
    ("json", ("json/",)),
    ("logging (twisted.logger)", ("twisted/logger/",)),
    ("Deferred / coroutine machinery", ("twisted/internet/defer.py", "twisted/python/failure.py")),
    ("reactor, TCP transport, sockets", ("twisted/internet/",)),
]


def frame_parts(frame: str) -> tuple[str, str]:
    m = FRAME.match(frame)
    if not m:
        return frame, ""
    path = m.group("file")
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return m.group("func"), path


def layer_of(path: str) -> str:
    for name, prefixes in LAYERS:
        if any(p in path for p in prefixes):
            return name
    if not path:
        return "native / interpreter"
    return "other python"


#: Subtrees worth a number of their own in PROFILE.md: (label, substring of "file:function").
FOCUS = [
    ("treq HTTPClient.request (whole upstream request set-up)", "treq/client.py:HTTPClient.request"),
    ("  treq URL handling (hyperlink + idna)", "hyperlink/"),
    ("  idna encoding of the upstream host", "idna/"),
    ("  CookieAgent (cookie jar per request)", "twisted/web/client.py:CookieAgent.request"),
    ("  cookie jar: extract_cookies on the answer", "http/cookiejar.py:CookieJar.extract_cookies"),
    ("  RedirectAgent", "twisted/web/client.py:RedirectAgent.request"),
    ("  ContentDecoderAgent", "twisted/web/client.py:ContentDecoderAgent.request"),
    ("  Agent.request", "twisted/web/client.py:Agent.request"),
    ("  new upstream connections (pool miss)", "twisted/web/client.py:HTTPConnectionPool._newConnection"),
    ("  HostnameEndpoint.connect", "twisted/internet/endpoints.py:HostnameEndpoint.connect"),
    ("upstream response parsing (HTTP11ClientProtocol.dataReceived)", "twisted/web/_newclient.py:HTTP11ClientProtocol.dataReceived"),
    ("  HTTPParser.connectionMade", "twisted/web/_newclient.py:HTTPParser.connectionMade"),
    ("read upstream body (treq.content / collect)", "treq/content.py:"),
    ("email.* header parsing (content-type charset)", "email/"),
    ("server: HTTPChannel.lineReceived (request line + headers)", "twisted/web/http.py:HTTPChannel.lineReceived"),
    ("server: Request.requestReceived (args, urlparse)", "twisted/web/http.py:Request.requestReceived"),
    ("server: GatewayRequest.process (request id)", "gateway/web/site.py:GatewayRequest.process"),
    ("server: Request.write / finish (response out)", "twisted/web/server.py:Request.write"),
    ("server: Request.finish", "twisted/web/http.py:Request.finish"),
    ("wrapper resources (compat, admin, auth) render", "gateway/web/compat_routes.py:CompatDispatch.render"),
    ("auth wrapper render", "gateway/web/auth.py:AuthWrapper.render"),
    ("KleinResource.render", "klein/_resource.py:KleinResource.render"),
    ("  werkzeug route match", "werkzeug/routing/"),
    ("  GatewayApp.model_action", "gateway/web/app.py:GatewayApp.model_action"),
    ("    read_json (body -> dict)", "gateway/web/app.py:read_json"),
    ("    validate + enum_names", "gateway/protocol/enums.py:enum_names"),
    ("    validate_generate_request", "gateway/protocol/envelope.py:validate_generate_request"),
    ("    Forwarder.generate", "gateway/forward.py:Forwarder.generate"),
    ("      session_id_for", "gateway/protocol/envelope.py:session_id_for"),
    ("      envelope.wrap", "gateway/protocol/envelope.py:wrap"),
    ("      pool choose/acquire", "gateway/pool/pool.py:AccountPool._pick"),
    ("      token_for", "gateway/upstream/oauth.py:AccessTokens.token_for"),
    ("      project_for", "gateway/upstream/onboarding.py:ProjectResolver.project_for"),
    ("      UpstreamClient.call", "gateway/upstream/client.py:UpstreamClient.call"),
    ("    _unwrapped (json.loads + json.dumps of the answer)", "gateway/web/app.py:_unwrapped"),
    ("json.dumps (all)", "json/__init__.py:dumps"),
    ("json.loads (all)", "json/__init__.py:loads"),
    ("uuid4 (all)", "uuid.py:uuid4"),
    ("twisted.logger (all)", "twisted/logger/"),
    ("Deferred._runCallbacks (all, inclusive)", "twisted/internet/defer.py:Deferred._runCallbacks"),
    ("reactor timers (runUntilCurrent)", "twisted/internet/base.py:ReactorBase.runUntilCurrent"),
    ("socket writes (doWrite)", "twisted/internet/abstract.py:FileDescriptor.doWrite"),
    ("garbage collection", "<gc>"),
]


def load(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    import gzip

    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread "))
        stacks[frames] += int(count)
    return stacks


def analyse(path: Path, us_per_req: float, top: int) -> dict[str, object]:
    stacks = load(path)
    total = sum(stacks.values())
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for frames, n in stacks.items():
        seen = set()
        for f in frames:
            func, file = frame_parts(f)
            key = f"{file}:{func}"
            if key not in seen:
                inclusive[key] += n
                seen.add(key)
        if frames:
            func, file = frame_parts(frames[-1])
            self_time[f"{file}:{func}"] += n
            # The layer a sample is charged to: the innermost Python frame that belongs to a layer.
            charged = "native / interpreter"
            for f in reversed(frames):
                _, file = frame_parts(f)
                name = layer_of(file)
                if name not in ("native / interpreter", "other python"):
                    charged = name
                    break
                if name == "other python" and charged == "native / interpreter":
                    charged = name
            layers[charged] += n

    def us(n: int) -> float:
        return round(n / total * us_per_req, 1) if total else 0.0

    focus = []
    for label, needle in FOCUS:
        n = sum(c for frames, c in stacks.items()
                if any(needle in "{1}:{0}".format(*frame_parts(f)) for f in frames))
        focus.append((label, us(n), round(100 * n / total, 1) if total else 0.0))
    return {
        "samples": total,
        "focus": focus,
        "us_per_req": us_per_req,
        "layers": [(k, us(v), round(100 * v / total, 1)) for k, v in layers.most_common()],
        "inclusive": [(k, us(v), round(100 * v / total, 1)) for k, v in inclusive.most_common(top)],
        "self": [(k, us(v), round(100 * v / total, 1)) for k, v in self_time.most_common(top)],
    }


def render(name: str, a: dict[str, object]) -> str:
    out = [f"## {name}: {a['us_per_req']} µs of gateway CPU per request, {a['samples']} samples", ""]
    for title, key in (("Named subtrees (inclusive)", "focus"),
                       ("By layer (self time charged to the innermost layer frame)", "layers"),
                       ("Top inclusive", "inclusive"), ("Top self", "self")):
        out += [f"### {title}", "", "| µs/req | % | where |", "|---:|---:|---|"]
        for where, us, pct in a[key]:  # type: ignore[union-attr]
            out.append(f"| {us} | {pct} | `{where}` |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("results", type=Path, help="the -profile.json bench/run --profile wrote")
    p.add_argument("--top", type=int, default=35)
    a = p.parse_args()
    doc = json.loads(a.results.read_text())
    for name, prof in doc.get("profiles", {}).items():
        if not prof.get("collapsed"):
            continue
        path = a.results.parent / prof["collapsed"]
        us = prof["unprofiled"]["gateway_cpu_us_per_req"]
        print(render(f"{name} ({prof['unprofiled']['rps']} req/s unprofiled)", analyse(path, us, a.top)))


if __name__ == "__main__":
    main()
