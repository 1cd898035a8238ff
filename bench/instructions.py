"""Instructions per request, gateway vs the bare relay: a measure the machine's other load cannot move.

Wall-clock and even CPU time swing by 2x on a shared 2-core machine; the
number of instructions a process executes for a fixed request loop does not.
The gateway (``twist antigravity-gateway``) and ``bench/relay.py`` are started
under ``valgrind --tool=callgrind`` with instrumentation off, warmed up, then
instrumentation is switched on (``callgrind_control -i on``) for ``--requests``
sequential keep-alive requests (the small generateContent body), and the
instructions (Ir) of that window are divided by the request count.

    bench/run-instructions [--requests 300] [--ref REF] [--door gemini|openai|anthropic|responses]

Prints one JSON object; the ratio gateway/relay is what the decisions use.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import stack  # noqa: E402

VALGRIND = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
PROMPT = "Say hello in one short sentence."
#: The gateway's request for each door: (path, or "" for the Gemini generateContent path; body).
DOORS = {
    "gemini": lambda public: ("", public),
    "openai": lambda public: ("/v1/chat/completions",
                              {"model": stack.MODEL, "messages": [{"role": "user", "content": PROMPT}]}),
    "anthropic": lambda public: ("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 256,
                                                  "messages": [{"role": "user", "content": PROMPT}]}),
    "responses": lambda public: ("/v1/responses", {"model": stack.MODEL, "input": PROMPT, "store": False}),
}


def post_loop(base: str, path: str, body: bytes, token: str, count: int) -> None:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for _ in range(count):
        conn.request("POST", path, body, headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{base}{path}: HTTP {answer.status}")
    conn.close()


def total_ir(out_file: str) -> int:
    for line in open(out_file):
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out_file}")


def measure(service: stack.Service, target: stack.Target, body: bytes, requests: int, work: Path) -> dict[str, Any]:
    out = work / f"callgrind.{service.name}.%p"
    service.argv = [*VALGRIND, f"--callgrind-out-file={out}", *service.argv]
    service.start(timeout=300)
    try:
        post_loop(target.base, target.generate_path, body, target.token, 30)  # warm-up, uninstrumented
        subprocess.run(["callgrind_control", "-i", "on", str(service.pid)], check=True, capture_output=True)
        post_loop(target.base, target.generate_path, body, target.token, 5)  # instrumented warm-up (code caches)
        subprocess.run(["callgrind_control", "-z", str(service.pid)], check=True, capture_output=True)
        started = time.monotonic()
        post_loop(target.base, target.generate_path, body, target.token, requests)
        seconds = time.monotonic() - started
        subprocess.run(["callgrind_control", "-d", str(service.pid)], check=True, capture_output=True)
        time.sleep(0.5)
        dumps = sorted(glob.glob(str(work / f"callgrind.{service.name}.*")), key=lambda p: Path(p).stat().st_mtime)
        ir = total_ir(dumps[-1])
    finally:
        service.stop()
    return {"requests": requests, "instructions": ir, "per_request": round(ir / requests), "seconds_under_valgrind": round(seconds, 1),
            "dump": dumps[-1]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--ref", default=None, help="measure the gateway code of this git ref (git archive)")
    p.add_argument("--keep", action="store_true", help="keep the callgrind dumps (for callgrind_annotate)")
    p.add_argument("--door", choices=sorted(DOORS), default="gemini",
                   help="the gateway route measured: gemini (generateContent, default), openai (chat completions), "
                        "anthropic (messages) or responses (the Responses API); the relay always relays the same envelope")
    a = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="agw-instr."))
    stack.use_source(a.ref, work)
    emu = stack.emulator(work, None).start()
    results: dict[str, Any] = {}
    try:
        direct = stack.direct_target(emu.url)
        public = stack.public_body("Say hello in one short sentence.")
        port = stack.free_port()
        relay = stack.Service("relay", [sys.executable, str(BENCH / "relay.py"), "--port", str(port), "--upstream", emu.url],
                              f"http://127.0.0.1:{port}", "/", work / "relay.log")
        relay_target = stack.Target("relay", relay.url, direct.generate_path, direct.stream_path, token=direct.token, wrap=True)
        results["relay"] = measure(relay, relay_target, relay_target.body(public), a.requests, work)
        gw = stack.gateway(work, emu.url, None, "-instr")
        target = stack.gateway_target(gw.url)
        path, body = DOORS[a.door](public)
        if path:
            target = stack.Target(a.door, gw.url, path, path)
        results["gateway"] = measure(gw, target, json.dumps(body, separators=(",", ":")).encode(), a.requests, work)
        results["door"] = a.door
    finally:
        emu.stop()
    results["ratio"] = round(results["gateway"]["per_request"] / results["relay"]["per_request"], 3)
    results["ref"] = a.ref or "work tree"
    print(json.dumps(results, indent=1))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
