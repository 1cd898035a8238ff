"""Scaling benchmark (issue 14): direct, a bare Twisted relay, the gateway with 1 and N workers, and
two gateway instances sharing one Redis, all against one emulator in the same run.

    bench/run-scaling [--duration 5] [--workers 2] [--concurrency 1,64]

Writes bench/results/scaling-latest.json and prints a markdown table. Nothing
is pinned: workers need the cores. Read docs/benchmarks-scaling.md for the method.
"""

from __future__ import annotations

import argparse
import json
import os
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

LUA = BENCH / "post.lua"


def wrk(target: stack.Target, body: Path, connections: int, duration: float, work: Path, tag: str) -> subprocess.Popen[str]:
    out = work / f"wrk-{tag}.json"
    env = dict(os.environ, BENCH_BODY=str(body), BENCH_PATH=target.generate_path, BENCH_AUTH=target.token, BENCH_OUT=str(out))
    argv = [shutil.which("wrk") or "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
            "-s", str(LUA), target.base]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.out_path = out  # type: ignore[attr-defined]
    return proc


def collect(procs: list[subprocess.Popen[str]]) -> dict[str, Any]:
    """Sum of requests over parallel wrk runs; latency of the first (they are alike)."""
    raws = []
    for p in procs:
        p.wait()
        raws.append(json.loads(p.out_path.read_text()))  # type: ignore[attr-defined]
    seconds = max(r["duration_us"] for r in raws) / 1e6
    requests = sum(r["requests"] for r in raws)
    return {"requests": requests, "errors": sum(sum(r["errors"].values()) for r in raws),
            "rps": round(requests / seconds, 1), "latency_ms": {k: round(v / 1000, 3) for k, v in raws[0]["latency_us"].items()}}


def measure(name: str, targets: list[stack.Target], body: dict[str, Path], concurrency: int, duration: float, work: Path,
            process: stack.Service | None = None) -> dict[str, Any]:
    """wrk against every target at once, ``concurrency`` split evenly (one warm-up second first).

    ``process``: the one process serving (relay, one worker), whose CPU time per
    request is reported (``/proc``): less moved by the machine's other load than req/s.
    """
    targets = targets[:concurrency]  # c1 means one connection in all, to one instance
    share = max(1, concurrency // len(targets))
    collect([wrk(t, body[t.name], share, 1, work, f"{name}-{i}-c{concurrency}-warm") for i, t in enumerate(targets)])
    before = process.stat() if process is not None else None
    result = collect([wrk(t, body[t.name], share, duration, work, f"{name}-{i}-c{concurrency}") for i, t in enumerate(targets)])
    if process is not None and before is not None and result["requests"]:
        result["cpu_us_per_req"] = round((process.stat().cpu_s - before.cpu_s) * 1e6 / result["requests"], 1)
    print(f"[scaling] {name} c{concurrency}: {result['rps']} req/s p50 {result['latency_ms']['p50']} ms "
          f"p99 {result['latency_ms']['p99']} ms errors {result['errors']} cpu {result.get('cpu_us_per_req', '-')} µs/req",
          file=sys.stderr, flush=True)
    return result


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median req/s (its other numbers with it), plus every run's req/s, p50 and CPU."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        chosen["runs"] = [{"rps": r["rps"], "p50_ms": r["latency_ms"]["p50"], "cpu_us_per_req": r.get("cpu_us_per_req")} for r in runs]
        cpus = sorted(r["cpu_us_per_req"] for r in runs if r.get("cpu_us_per_req") is not None)
        if cpus:
            chosen["cpu_us_per_req"] = cpus[(len(cpus) - 1) // 2]
    return chosen


def redis_server(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = stack.free_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(work)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


def shared_gateway(work: Path, emulator_url: str, redis_url: str, index: int) -> stack.Service:
    home = work / f"instance{index}"
    home.mkdir()
    service = stack.gateway(home, emulator_url, None, f"-redis{index}")
    conf = home / "gateway.toml"
    conf.write_text(conf.read_text() + f'[shared]\nbackend = "redis"\nurl = "{redis_url}"\n')
    return service


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", default="1,64")
    p.add_argument("--out", default=str(BENCH / "results" / "scaling-latest.json"))
    p.add_argument("--ref", default=None, help="the gateway code of this git ref (git archive) instead of the work tree")
    p.add_argument("--repeat", type=int, default=1,
                   help="points per case; direct, relay and 1 worker alternate point by point, the median req/s is kept")
    p.add_argument("--cases", default="all", help="comma list: direct,relay,gateway_1_worker,workers,redis (default all)")
    a = p.parse_args(argv)
    levels = [int(c) for c in a.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="agw-scaling."))
    stack.use_source(a.ref, work)
    wanted = set(a.cases.split(",")) if a.cases != "all" else {"direct", "relay", "gateway_1_worker", "workers", "redis"}
    services: list[stack.Service] = []
    redis = None
    results: dict[str, Any] = {"cores": os.cpu_count(), "duration_s": a.duration, "workers": a.workers, "cases": {}}
    try:
        emu = stack.emulator(work, None).start()
        services.append(emu)
        direct = stack.direct_target(emu.url)
        public = stack.public_body("Say hello in one short sentence.")
        relay_port = stack.free_port()
        relay = stack.Service("relay", [sys.executable, str(BENCH / "relay.py"), "--port", str(relay_port), "--upstream", emu.url],
                              f"http://127.0.0.1:{relay_port}", "/", work / "relay.log").start()
        services.append(relay)
        relay_target = stack.Target("relay", relay.url, direct.generate_path, direct.stream_path, token=direct.token, wrap=True)

        one = stack.gateway(work, emu.url, None, "-1").start()
        services.append(one)
        body = {t.name: work / f"body-{t.name}.json" for t in (direct, relay_target, stack.gateway_target(one.url))}
        for t in (direct, relay_target, stack.gateway_target(one.url)):
            body[t.name].write_bytes(t.body(public))

        def run(name: str, targets: list[stack.Target]) -> None:
            results["cases"][name] = {f"c{c}": measure(name, targets, body, c, a.duration, work) for c in levels}

        # The single-process cases alternate point by point, so relay and gateway see the same machine.
        single = [(n, t, svc) for n, t, svc in (("direct", [direct], emu), ("relay", [relay_target], relay),
                                               ("gateway_1_worker", [stack.gateway_target(one.url)], one)) if n in wanted]
        for c in levels:
            runs: dict[str, list[dict[str, Any]]] = {n: [] for n, _, _ in single}
            for _ in range(max(1, a.repeat)):
                for n, t, svc in single:
                    runs[n].append(measure(n, t, body, c, a.duration, work, process=svc))
            for n, _, _ in single:
                results["cases"].setdefault(n, {})[f"c{c}"] = median_of(runs[n])
        results["ratios"] = ratios(results["cases"], levels)
        one.stop()
        if "workers" in wanted:
            many = stack.gateway(work, emu.url, None, f"-{a.workers}")
            many.argv += ["--workers", str(a.workers)]
            many.start()
            services.append(many)
            run(f"gateway_{a.workers}_workers", [stack.gateway_target(many.url)])
            many.stop()
        if "redis" not in wanted:
            pass
        elif shutil.which("redis-server"):
            redis, redis_url = redis_server(work)
            instances = [shared_gateway(work, emu.url, redis_url, i).start() for i in range(2)]
            services += instances
            run("gateway_2_instances_redis", [stack.gateway_target(s.url) for s in instances])
        else:
            results["cases"]["gateway_2_instances_redis"] = "skipped: redis-server is not installed"
    finally:
        for s in reversed(services):
            s.stop()
        if redis is not None:
            redis.terminate()
            redis.wait(10)
    results["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    Path(a.out).write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def ratios(cases: dict[str, Any], levels: list[int]) -> dict[str, Any]:
    """Gateway (1 worker) against the bare relay: throughput, added p50 over direct, CPU per request."""
    out: dict[str, Any] = {}
    relay, gw, direct = cases.get("relay"), cases.get("gateway_1_worker"), cases.get("direct")
    if not relay or not gw:
        return out
    for c in levels:
        k = f"c{c}"
        # Paired: the ratio within each round (relay, gateway and direct ran one after the other), then the median.
        rs = relay[k].get("runs") or [{"rps": relay[k]["rps"], "p50_ms": relay[k]["latency_ms"]["p50"], "cpu_us_per_req": relay[k].get("cpu_us_per_req")}]
        gs = gw[k].get("runs") or [{"rps": gw[k]["rps"], "p50_ms": gw[k]["latency_ms"]["p50"], "cpu_us_per_req": gw[k].get("cpu_us_per_req")}]
        entry: dict[str, Any] = {"throughput": _median([g["rps"] / r["rps"] for r, g in zip(rs, gs)])}
        if all(r.get("cpu_us_per_req") and g.get("cpu_us_per_req") for r, g in zip(rs, gs)):
            entry["cpu_per_request"] = _median([g["cpu_us_per_req"] / r["cpu_us_per_req"] for r, g in zip(rs, gs)])
        if direct:
            ds = direct[k].get("runs") or [{"p50_ms": direct[k]["latency_ms"]["p50"]}]
            added = [(r["p50_ms"] - d["p50_ms"], g["p50_ms"] - d["p50_ms"]) for r, g, d in zip(rs, gs, ds)]
            entry["added_p50_ms"] = {"relay": _median([a for a, _ in added]), "gateway": _median([b for _, b in added])}
            ratios_ = [b / a for a, b in added if a > 0]
            if ratios_:
                entry["added_latency"] = _median(ratios_)
        out[k] = entry
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return round(ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2, 3)


def table(results: dict[str, Any]) -> str:
    levels = sorted({k for case in results["cases"].values() if isinstance(case, dict) for k in case}, key=lambda k: int(k[1:]))
    head = "| case | " + " | ".join(f"{c} req/s | {c} p50 ms | {c} CPU µs/req" for c in levels) + " |"
    lines = [head, "|---" * (1 + 3 * len(levels)) + "|"]
    for name, case in results["cases"].items():
        if not isinstance(case, dict):
            lines.append(f"| {name} | {case} |")
            continue
        cells = " | ".join(f"{case[c]['rps']} | {case[c]['latency_ms']['p50']} | {case[c].get('cpu_us_per_req', '-')}"
                           for c in levels)
        lines.append(f"| {name} | {cells} |")
    for level, entry in results.get("ratios", {}).items():
        lines.append(f"\ngateway / relay at {level}: " + ", ".join(f"{k} {v}" for k, v in entry.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
