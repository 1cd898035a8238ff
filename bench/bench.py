"""The gateway benchmark: every case direct to the emulator and through the gateway, same run.

Run it with ``bench/run`` (which sets up the venv and wrk); ``bench/run --help``
lists the options, ``bench/run --quick`` is a few-second smoke run.

Layout on the machine (``--no-pin`` turns it off): the gateway alone on CPU
0, the emulator and every load generator on CPU 1. The gateway is one
CPython process and so uses one core at most; giving it its own core shows
its own cost, and the emulator shares its core with the load generator in
both the direct and the gateway runs, so its ceiling is the same on both
sides of each comparison. CPU time per request is read from /proc for both
processes, so the gateway's cost is known even where the emulator, not the
gateway, is what limits throughput.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack  # noqa: E402
from stack import Service, Target, cpu_percent, open_fds  # noqa: E402

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "post.lua"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Run:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.a = args
        self.work = workdir
        self.emu: Service | None = None
        self.gw: Service | None = None
        self.results: dict[str, Any] = {}

    # -- plumbing --

    def cpu(self, role: str) -> str | None:
        if self.a.no_pin:
            return None
        return {"gateway": self.a.gateway_cpu, "emulator": self.a.emulator_cpu, "load": self.a.load_cpu}[role]

    def body_file(self, name: str, data: bytes) -> Path:
        path = self.work / name
        path.write_bytes(data)
        return path

    def start(self) -> None:
        self.emu = stack.emulator(self.work, self.cpu("emulator")).start()
        self.start_gateway()
        self.direct = stack.direct_target(self.emu.url)

    def start_gateway(self, tag: str = "") -> None:
        assert self.emu is not None
        if self.gw is not None:
            self.gw.stop()
        self.gw = stack.gateway(self.work, self.emu.url, self.cpu("gateway"), tag).start()
        self.through = stack.gateway_target(self.gw.url)
        # The first call resolves nothing (token and project are stored) but warms imports and the pool.
        for _ in range(3):
            stack.http_json("POST", self.gw.url + self.through.generate_path, stack.public_body("warm up"))

    def stop(self) -> None:
        for s in (self.gw, self.emu):
            if s is not None:
                s.stop()

    def wrk(self, target: Target, body: Path, connections: int, duration: float, tag: str) -> dict[str, Any]:
        out = self.work / f"wrk-{tag}.json"
        env = dict(os.environ, BENCH_BODY=str(body), BENCH_PATH=target.generate_path, BENCH_AUTH=target.token,
                   BENCH_OUT=str(out))
        argv = stack.pinned(self.cpu("load"), [self.a.wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
                                               "--timeout", "10s", "-s", str(LUA), target.base])
        assert self.emu is not None and self.gw is not None
        procs = {"emulator": self.emu, "gateway": self.gw}
        before = {k: p.stat() for k, p in procs.items()}
        machine0, children0, wall0 = stack.machine_busy_s(), stack.children_cpu_s(), time.monotonic()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        machine1, children1, wall1 = stack.machine_busy_s(), stack.children_cpu_s(), time.monotonic()
        after = {k: p.stat() for k, p in procs.items()}
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        raw = json.loads(out.read_text())
        requests = raw["requests"]
        errors = sum(raw["errors"].values())
        seconds = raw["duration_us"] / 1e6
        point: dict[str, Any] = {
            "target": target.name,
            "concurrency": connections,
            "requests": requests,
            "errors": errors,
            "error_kinds": {k: v for k, v in raw["errors"].items() if v},
            "rps": round(requests / seconds, 1) if seconds else 0.0,
            "latency_ms": {k: round(v / 1000, 3) for k, v in raw["latency_us"].items()},
        }
        ours = sum(after[k].cpu_s - before[k].cpu_s for k in procs) + (children1 - children0)
        # CPU used by anything but the gateway, the emulator and wrk: other work on the machine
        # disturbs the numbers; --repeat keeps the least disturbed repetition of each point.
        point["load_generator_cpu_pct"] = round(100 * (children1 - children0) / (wall1 - wall0), 1)
        point["foreign_cpu_pct"] = round(max(0.0, 100 * (machine1 - machine0 - ours) / (wall1 - wall0)), 1)
        for name in procs:
            busy = after[name].cpu_s - before[name].cpu_s
            point[f"{name}_cpu_pct"] = round(cpu_percent(before[name], after[name]), 1)
            point[f"{name}_cpu_us_per_req"] = round(busy / requests * 1e6, 1) if requests else None
        return point

    # -- cases --

    def case_generate(self, key: str, body_size: int, concurrencies: list[int]) -> None:
        public = stack.public_body("Say hello in one short sentence.", pad_to=body_size)
        files = {t.name: self.body_file(f"{key}-{t.name}.json", t.body(public)) for t in (self.direct, self.through)}
        points = []
        for c in concurrencies:
            pair = {}
            for t in (self.direct, self.through):
                # A short warm-up at this concurrency opens the connections (and the gateway's pool).
                self.wrk(t, files[t.name], c, min(1.0, self.a.duration), f"{key}-{t.name}-c{c}-warm")
                tries = [self.wrk(t, files[t.name], c, self.a.duration, f"{key}-{t.name}-c{c}-{i}")
                         for i in range(self.a.repeat)]
                best = min(tries, key=lambda p: (p["foreign_cpu_pct"] > 5, -p["rps"]))
                if len(tries) > 1:
                    best["repeats"] = [{"rps": p["rps"], "p50": p["latency_ms"]["p50"], "p99": p["latency_ms"]["p99"],
                                        "foreign_cpu_pct": p["foreign_cpu_pct"]} for p in tries]
                pair[t.name] = best
                log(f"{key} c{c} {t.name}: {pair[t.name]['rps']} req/s p50 {pair[t.name]['latency_ms']['p50']} ms "
                    f"p99 {pair[t.name]['latency_ms']['p99']} ms errors {pair[t.name]['errors']}")
            d, g = pair["direct"], pair["gateway"]
            points.append({
                "concurrency": c,
                "direct": d,
                "gateway": g,
                "added_ms": {p: round(g["latency_ms"][p] - d["latency_ms"][p], 3) for p in ("p50", "p90", "p99")},
                "rps_ratio": round(g["rps"] / d["rps"], 3) if d["rps"] else None,
            })
        self.results[key] = {
            "body_bytes": {t.name: files[t.name].stat().st_size for t in (self.direct, self.through)},
            "duration_s": self.a.duration,
            "points": points,
        }

    def stream_latency(self, target: Target, body: Path) -> dict[str, Any]:
        argv = stack.pinned(self.cpu("load"), [sys.executable, str(BENCH / "streamclient.py"), "latency",
                                               "--url", target.base, "--path", target.stream_path, "--body", str(body),
                                               "--token", target.token, "--count", str(self.a.stream_count),
                                               "--warmup", str(max(2, self.a.stream_count // 10))])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"stream client failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def case_stream(self) -> None:
        """Streams of 1 and of N events, back to back, no delay between events.

        With no delay the emulator writes all N events at once, so a client's
        first event waits for the gateway to relay the whole burst: the realistic
        time to first event (events from a model are tens of ms apart) is the
        1-event stream's. Per event, the added whole-stream time grows linearly
        in N: (added(N) - added(1)) / (N - 1).
        """
        n = self.a.stream_events
        res: dict[str, Any] = {}
        for events in (1, n):
            public = stack.public_body(f"Please stream {events} events about the sea.")
            for t in (self.direct, self.through):
                body = self.body_file(f"stream{events}-{t.name}.json", t.body(public))
                r = res[f"{t.name}_{events}"] = self.stream_latency(t, body)
                log(f"case3 {events} events {t.name}: first event p50 {r['first_event_us']['p50']} µs, "
                    f"whole stream p50 {r['total_us']['p50']} µs, {r['events']} events")
        d1, g1, dn, gn = res["direct_1"], res["gateway_1"], res[f"direct_{n}"], res[f"gateway_{n}"]
        pcts = ("p50", "p90", "p99")
        added_first = {p: round(g1["first_event_us"][p] - d1["first_event_us"][p], 1) for p in pcts}
        added_1 = {p: round(g1["total_us"][p] - d1["total_us"][p], 1) for p in pcts}
        added_n = {p: round(gn["total_us"][p] - dn["total_us"][p], 1) for p in pcts}
        per_event = {p: round((added_n[p] - added_1[p]) / (n - 1), 1) for p in pcts} if n > 1 else {}
        self.results["case3_stream"] = {
            "events_requested": n,
            "event_delay_s": 0.0,
            "direct": dn,
            "gateway": gn,
            "direct_1_event": d1,
            "gateway_1_event": g1,
            "added_first_event_us": added_first,
            "added_total_us": added_n,
            "added_total_1_event_us": added_1,
            "added_per_event_us": per_event,
            "method": "sequential streams on one keep-alive connection, emulator with no delay between events; "
                      "first event: the 1-event stream's; per event: (added whole-stream time at N events - "
                      "at 1 event) / (N - 1)",
        }

    def hold_streams(self, target: Target, body: Path, watch: dict[str, Service]) -> dict[str, Any]:
        argv = stack.pinned(self.cpu("load"), [sys.executable, str(BENCH / "streamclient.py"), "hold",
                                               "--url", target.base, "--path", target.stream_path, "--body", str(body),
                                               "--token", target.token, "--streams", str(self.a.streams),
                                               "--hold", str(self.a.hold)])
        before_open = {k: s.stat() for k, s in watch.items()}
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        ready_line = proc.stdout.readline()
        if not ready_line.startswith("READY "):
            proc.kill()
            raise RuntimeError(f"hold client failed: {ready_line}{proc.stderr.read() if proc.stderr else ''}")
        ready = json.loads(ready_line[6:])
        time.sleep(min(1.0, self.a.hold / 4))  # let the opening burst settle
        start = {k: s.stat() for k, s in watch.items()}
        fds = {k: open_fds(s.pid) for k, s in watch.items()}
        done_line = proc.stdout.readline()
        end = {k: s.stat() for k, s in watch.items()}
        proc.wait(timeout=60)
        if not done_line.startswith("DONE "):
            raise RuntimeError(f"hold client failed: {done_line}{proc.stderr.read() if proc.stderr else ''}")
        done = json.loads(done_line[5:])
        out: dict[str, Any] = {"opened": ready["open"], "open_errors": ready["errors"],
                               "seconds_to_open": ready["seconds_to_open"], "events_per_s": done["events_per_s"],
                               "still_open_at_end": done["still_open"], "errors": done["errors"]}
        if ready.get("error_sample") or done.get("error_sample"):
            out["error_sample"] = (ready.get("error_sample") or []) + (done.get("error_sample") or [])
        for k in watch:
            out[k] = {
                "rss_mib_before": round(before_open[k].rss_bytes / 2**20, 1),
                "rss_mib": round(max(start[k].rss_bytes, end[k].rss_bytes) / 2**20, 1),
                "cpu_pct": round(cpu_percent(start[k], end[k]), 1),
                "open_fds": fds[k],
            }
        return out

    def case_streams(self) -> None:
        assert self.emu is not None
        # A fresh gateway: RSS with the streams open, not what earlier 1 MiB bodies left behind.
        self.start_gateway("-case4")
        assert self.gw is not None
        res: dict[str, Any] = {"streams": self.a.streams, "hold_s": self.a.hold, "flow_event_delay_s": self.a.flow_delay,
                               "gateway_rss_mib_fresh": round(self.gw.stat().rss_bytes / 2**20, 1)}
        for phase, delay in (("idle", 3600.0), ("flowing", self.a.flow_delay)):
            # Idle: the first event at once, the next an hour later. Flowing: enough events to outlast
            # opening all the streams and the measured window (the emulator plans every event up front).
            events = 5 if phase == "idle" else int((self.a.hold + 15) / delay) + 10
            long = stack.public_body(f"Please stream {events} events about rivers.")
            stack.set_emulator(self.emu.url, event_delay=delay)
            for t in (self.direct, self.through):
                body = self.body_file(f"hold-{t.name}.json", t.body(long))
                watch = {"emulator": self.emu} if t is self.direct else {"gateway": self.gw, "emulator": self.emu}
                r = self.hold_streams(t, body, watch)
                res[f"{phase}_{t.name}"] = r
                g = r.get("gateway", r["emulator"])
                log(f"case4 {phase} {t.name}: {r['opened']} open, {r['events_per_s']} events/s, "
                    f"{'gateway' if 'gateway' in r else 'emulator'} RSS {g['rss_mib']} MiB CPU {g['cpu_pct']}%")
                time.sleep(0.5)
        stack.set_emulator(self.emu.url, event_delay=0.0)
        self.results["case4_open_streams"] = res

    def case_pool(self, worktree_too: bool) -> None:
        argv = stack.pinned(self.cpu("gateway"), [sys.executable, str(BENCH / "pool_select.py"),
                                                  "--iterations", str(self.a.pool_iterations)])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"pool benchmark failed: {done.stderr[-2000:]}")
        self.results["case5_pool"] = json.loads(done.stdout)
        if worktree_too:
            env = dict(os.environ, PYTHONPATH=str(stack.ROOT))
            wt = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
            self.results["case5_pool"]["work_tree"] = (
                json.loads(wt.stdout) if wt.returncode == 0 else {"error": wt.stderr.strip().splitlines()[-1:]}
            )
        for name, r in self.results["case5_pool"]["policies"].items():
            log(f"case5 {name}: {r['us_per_choose']} µs per choose")

    # -- profiling --

    def profile(self, concurrency: int) -> None:
        """py-spy on the gateway while wrk drives case 1 at ``concurrency`` (no numbers kept from that run)."""
        assert self.gw is not None
        public = stack.public_body("Say hello in one short sentence.")
        body = self.body_file(f"profile-c{concurrency}.json", self.through.body(public))
        self.wrk(self.through, body, concurrency, 1.0, f"profile-warm-c{concurrency}")
        clean = self.wrk(self.through, body, concurrency, self.a.duration, f"profile-clean-c{concurrency}")
        outdir = Path(self.a.out) / "profile"
        outdir.mkdir(parents=True, exist_ok=True)
        raw = outdir / f"gateway-c{concurrency}.collapsed.txt"
        spy = [self.a.py_spy, "record", "--pid", str(self.gw.pid), "--rate", "997", "--format", "raw", "--gil", "--nonblocking",
               "--output", str(raw), "--duration", str(int(self.a.duration) + 2)]
        if self.a.native:
            spy.append("--native")
        sampler = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
        profiled = self.wrk(self.through, body, concurrency, self.a.duration, f"profile-c{concurrency}")
        sampler.wait(timeout=120)
        packed = None
        if raw.exists():
            import gzip

            packed = raw.with_name(raw.name + ".gz")
            packed.write_bytes(gzip.compress(raw.read_bytes(), 9))
            raw.unlink()
        self.results.setdefault("profiles", {})[f"c{concurrency}"] = {
            "collapsed": str(packed.relative_to(Path(self.a.out))) if packed else None,
            "py_spy": " ".join(spy[:1] + ["record", "--pid", "<gateway>"] + spy[4:]),
            "unprofiled": clean,
            "while_profiled": profiled,
        }
        log(f"profile c{concurrency}: {clean['gateway_cpu_us_per_req']} µs gateway CPU per request -> {packed}")


def environment(source: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    def first_line(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    cpu_model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import twisted

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **source,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "twisted": twisted.__version__,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "wrk": first_line([args.wrk, "--version"]),
        "pinning": None if args.no_pin else {"gateway": args.gateway_cpu, "emulator": args.emulator_cpu,
                                             "load generators": args.load_cpu},
        "emulator": "twist antigravity-emulator --event-delay 0 --max-recorded 0 (1 account, token and project stored)",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description="Gateway benchmark: direct to the emulator vs through the gateway.")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds): short points, 50 streams, few iterations")
    p.add_argument("--duration", type=float, help="seconds per wrk point (default 10; quick: 1)")
    p.add_argument("--concurrency", default="1,16,64", help="case 1 concurrencies (default 1,16,64)")
    p.add_argument("--large-concurrency", default="1,16", help="case 2 (1 MiB body) concurrencies")
    p.add_argument("--repeat", type=int, default=1,
                   help="repetitions of each case 1/2 point; the one least disturbed by other work on the machine "
                        "(foreign CPU), then the fastest, is kept (default 1)")
    p.add_argument("--stream-events", type=int, default=50)
    p.add_argument("--stream-count", type=int, help="streams per side in case 3 (default 300; quick: 20)")
    p.add_argument("--streams", type=int, help="open streams in case 4 (default 1000; quick: 50)")
    p.add_argument("--hold", type=float, help="seconds each case 4 phase is measured (default 10; quick: 1)")
    p.add_argument("--flow-delay", type=float, default=0.1, help="seconds between events while case 4 streams flow")
    p.add_argument("--pool-iterations", type=int, help="choose() calls per policy in case 5 (default 20000)")
    p.add_argument("--cases", default="1,2,3,4,5", help="which cases to run (default all)")
    p.add_argument("--ref", default=None, help="benchmark the gateway code of this git ref (git archive) instead of the work tree")
    p.add_argument("--out", default=str(BENCH / "results"), help="results directory (default bench/results)")
    p.add_argument("--name", default="latest", help="results file name stem (default latest)")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs with taskset")
    p.add_argument("--gateway-cpu", default="0")
    p.add_argument("--emulator-cpu", default="1")
    p.add_argument("--load-cpu", default="1")
    p.add_argument("--profile", default="", help="instead of the cases: py-spy the gateway under case 1 at these concurrencies (e.g. 1,64)")
    p.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    p.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    p.add_argument("--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"))
    a = p.parse_args(argv)
    q = a.quick
    a.duration = a.duration if a.duration is not None else (1.0 if q else 10.0)
    a.stream_count = a.stream_count if a.stream_count is not None else (20 if q else 300)
    a.streams = a.streams if a.streams is not None else (50 if q else 1000)
    a.hold = a.hold if a.hold is not None else (1.0 if q else 10.0)
    a.pool_iterations = a.pool_iterations if a.pool_iterations is not None else (2000 if q else 20000)
    a.concurrency_list = [int(c) for c in a.concurrency.split(",") if c]
    a.large_list = [int(c) for c in a.large_concurrency.split(",") if c]
    a.case_set = {int(c) for c in a.cases.split(",") if c}
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if shutil.which(a.wrk) is None and not Path(a.wrk).exists():
        print("bench: wrk is not installed (bench/run installs it: apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        work = Path(tmp)
        source = stack.use_source(a.ref, work)
        run = Run(a, work)
        started = time.monotonic()
        try:
            log(f"starting emulator and gateway ({source['source']} {source['commit'][:10]})")
            run.start()
            if a.profile:
                for c in (int(x) for x in a.profile.split(",")):
                    run.profile(c)
            else:
                if 1 in a.case_set:
                    run.case_generate("case1_generate", 0, a.concurrency_list)
                if 2 in a.case_set:
                    run.case_generate("case2_generate_1mib", 1 << 20, a.large_list)
                if 3 in a.case_set:
                    run.case_stream()
                if 5 in a.case_set:
                    run.case_pool(worktree_too=bool(a.ref))
                if 4 in a.case_set:
                    run.case_streams()
        finally:
            run.stop()
        document = {"environment": environment(source, a), "quick": a.quick,
                    "elapsed_s": round(time.monotonic() - started, 1), **run.results}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = a.name + ("-profile" if a.profile else "")
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    import report

    table = report.table(document)
    if not a.profile:
        (out / f"{stem}.md").write_text(table + "\n")
    print(table)
    if not a.profile:
        png = report.chart(document, out / f"{stem}.png")
        why = "case 1 was not run" if "case1_generate" not in document else "matplotlib is not installed"
        print(f"\nresults: {json_path}" + (f", {png}" if png else f" (no chart: {why})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
